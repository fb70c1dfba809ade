# client.bats - select_client on its own: it says where it connected from
# (the kernel's ephemeral port), keeps stdout for the server's bytes alone so
# it can sit in a pipeline, narrates its select() calls on request, fails
# with a precise message and exit 2 when it cannot connect (refused, unknown
# host, no answer within -w, no UDP server), and leaves stdin and stdout
# blocking - they belong to the shell - while it waits on all three at once.

load test_helper

# closed_port - a port nothing listens on, TCP or UDP: let a server take one
# from the kernel, then quit it.  Sets FREE_PORT.
closed_port() {
    start_server
    FREE_PORT=$PORT
    console quit
    wait_exit 5 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
}

# connected_line NAME - the "connected to" line the client NAME printed.
connected_line() {
    grep -m 1 '^connected to ' "$BATS_TEST_TMPDIR/$1.err"
}

# fd_flags PID FD - the file status flags of PID's descriptor FD, in octal,
# as the kernel reports them.  O_NONBLOCK is 04000 on Linux.
fd_flags() {
    awk '$1 == "flags:" { print $2 }' "/proc/$1/fdinfo/$2"
}

# nonblocking PID FD - true if O_NONBLOCK is set on PID's descriptor FD.
nonblocking() {
    local flags
    flags=$(fd_flags "$1" "$2")
    [[ $flags =~ ^[0-7]+$ ]] || return 2
    ((8#$flags & 8#4000))
}

# socket_fd PID - the descriptor number of PID's one socket.
socket_fd() {
    local fd
    for fd in /proc/"$1"/fd/*; do
        if [[ $(readlink "$fd") == socket:* ]]; then
            echo "${fd##*/}"
            return 0
        fi
    done
    return 1
}

@test "'connected to SERVER from LOCAL' names the ephemeral port the server logs as accepted" {
    start_server
    start_idle_client alice
    wait_for "alice's connected line" connected_line alice

    run connected_line alice
    assert_output --regexp "^connected to 127\\.0\\.0\\.1:$PORT from 127\\.0\\.0\\.1:[0-9]+\$"
    local_port=${output##*:}
    # The port the kernel picked during connect() is the one the server saw
    # (as an IPv4-mapped address on its dual-stack socket), and ss agrees.
    wait_for "the accept in the log" server_says \
        "^accepted \\[::ffff:127\\.0\\.0\\.1\\]:$local_port on fd [0-9]+ \\(clients: 1\\)\$"
    run ss -Htn state established "( sport = :$local_port and dport = :$PORT )"
    assert_equal "${#lines[@]}" 1
    # That line is all the client has said.
    run stderr_of alice
    assert_output "connected to 127.0.0.1:$PORT from 127.0.0.1:$local_port"
}

@test "-q: not a word on stderr, and stdout holds exactly what the server sent" {
    start_server
    printf 'quiet please\n' >"$IN"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN"

    assert_success
    assert_output "quiet please"
    assert_equal "$stderr" ""
}

@test "messages go to stderr and only the server's bytes to stdout, so the client fits in a pipeline" {
    start_server
    printf 'lower case\nsecond line\n' >"$IN"

    timeout "$WAIT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" <"$IN" 2>"$BATS_TEST_TMPDIR/err" |
        tr a-z A-Z >"$OUT"

    assert_equal "$(cat "$OUT")" $'LOWER CASE\nSECOND LINE'
    run cat "$BATS_TEST_TMPDIR/err"
    assert_output --regexp "^connected to 127\\.0\\.0\\.1:$PORT from 127\\.0\\.0\\.1:[0-9]+\$"
}

@test "--trace narrates every select() call on stderr: the connect wait, then the relay loop" {
    start_server
    printf 'traced line\n' >"$IN"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" --trace 127.0.0.1 "$PORT" <"$IN"

    assert_success
    assert_output "traced line"         # the narration never reaches stdout
    mapfile -t err <<<"$stderr"
    # 1. The non-blocking connect: wait for the socket S to become writable,
    #    for at most the 10 s connect timeout.
    [[ ${err[0]} =~ ^select\(nfds=([0-9]+),\ read=\{\},\ write=\{([0-9]+)\},\ timeout=([0-9.]+)s\)$ ]] ||
        fail "first line: ${err[0]}"
    s=${BASH_REMATCH[2]}
    assert_equal "${BASH_REMATCH[1]}" $((s + 1))
    [[ ${BASH_REMATCH[3]} =~ ^(10|[0-9](\.[0-9]+)?)$ ]] || fail "timeout ${BASH_REMATCH[3]}"
    assert_regex "${err[1]}" "^-> 1 ready: read=\\{\\} write=\\{$s\\} after [0-9.]+s\$"
    assert_regex "${err[2]}" "^connected to 127\\.0\\.0\\.1:$PORT from 127\\.0\\.0\\.1:[0-9]+\$"
    # 2. The loop: stdin (0) and the socket in the read set, nothing to
    #    write yet, and no timeout - nothing is due, so sleep until ready.
    assert_equal "${err[3]}" "select(nfds=$((s + 1)), read={0,$s}, write={}, timeout=none)"
    # Every other line is a call or its result; the echo made S readable.
    for line in "${err[@]:3}"; do
        [[ $line =~ ^select\(nfds=$((s + 1)),\ read=\{[0-9,]*\},\ write=\{[0-9,]*\},\ timeout=none\)$ ||
            $line =~ ^-\>\ [1-9][0-9]*\ ready:\ read=\{[0-9,]*\}\ write=\{[0-9,]*\}\ after\ [0-9.]+s$ ]] ||
            fail "unexpected trace line: $line"
    done
    printf '%s\n' "${err[@]}" | grep -qE "^-> [0-9]+ ready: read=\\{([0-9]+,)*$s\\} "
}

@test "connection refused: exit 2 and one line naming the address nothing listens on" {
    closed_port

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" 127.0.0.1 "$FREE_PORT" </dev/null

    assert_failure 2
    assert_output ""
    assert_equal "$stderr" "select_client: connection refused: nothing listening on 127.0.0.1:$FREE_PORT"
}

# "no..such" has an empty label, so the resolver rejects it on this machine:
# no DNS query leaves it (a name like nosuch.invalid would be sent out).
@test "an unknown host: exit 2 with 'unknown host' and the resolver's reason" {
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" no..such 9877 </dev/null

    assert_failure 2
    assert_output ""
    assert_equal "${#stderr_lines[@]}" 1
    assert_regex "$stderr" "^select_client: unknown host 'no\\.\\.such': .+\$"
}

@test "-w 0.5: a connect nobody answers (full backlog) gives up after half a second with exit 2" {
    # Backlog 0 and no accept(): one finished handshake fills the queue, and
    # the kernel then drops the next SYN, so that connect() never completes.
    start_server -B 0
    console pause
    wait_for "the pause" server_says '^paused: '
    start_idle_client first -q
    wait_for "the first connection to wait in the backlog" in_backlog

    start_bg "$BATS_TEST_TMPDIR/late" "$CLIENT" -w 0.5 127.0.0.1 "$PORT"
    late=$BG_PID

    wait_exit 2 "$late"
    assert_equal "$EXIT_STATUS" 2
    run stderr_of late
    assert_output "select_client: connect to 127.0.0.1:$PORT: timed out after 0.5s"
    run stdout_of late
    assert_output ""
}

@test "-4 and -6 choose the address family; an address of the other family is refused" {
    start_server

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -4 127.0.0.1 "$PORT" <<<'over IPv4'
    assert_success
    assert_output 'over IPv4'
    assert_regex "$stderr" "^connected to 127\\.0\\.0\\.1:$PORT from 127\\.0\\.0\\.1:[0-9]+\$"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -6 ::1 "$PORT" <<<'over IPv6'
    assert_success
    assert_output 'over IPv6'
    assert_regex "$stderr" "^connected to \\[::1\\]:$PORT from \\[::1\\]:[0-9]+\$"

    run grep -oE '^accepted (\[::ffff:127\.0\.0\.1\]|\[::1\]):' "$SERVER_OUT"
    assert_output $'accepted [::ffff:127.0.0.1]:\naccepted [::1]:'

    # The resolver finds no address of the forced family: nothing is tried.
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -4 ::1 "$PORT" </dev/null
    assert_failure 2
    assert_output ""
    assert_equal "$stderr" "select_client: no IPv4 address for '::1': Address family for hostname not supported"
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -6 127.0.0.1 "$PORT" </dev/null
    assert_failure 2
    assert_equal "$stderr" "select_client: no IPv6 address for '127.0.0.1': Address family for hostname not supported"
    run grep -c '^accepted ' "$SERVER_OUT"
    assert_output 2
}

@test "-u to a port with no UDP server: the ICMP 'port unreachable' becomes exit 2, 'no UDP server'" {
    closed_port

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.1 "$FREE_PORT" <<<'anyone there?'

    assert_failure 2
    assert_output ""
    assert_equal "$stderr" "select_client: no UDP server at 127.0.0.1:$FREE_PORT"
}

@test "only the socket is non-blocking: stdin and stdout keep the flags the shell gave them" {
    start_server
    start_idle_client alice -q
    wait_for "the accept" server_says '^accepted '
    types alice "round trip"
    wait_for "alice's echo" client_got alice "round trip"

    # O_NONBLOCK belongs to the open file, which stdin and stdout share with
    # whoever else holds them (the shell, the next program in a pipeline).
    run socket_fd "$alice_PID"
    assert_success
    sock=$output
    assert nonblocking "$alice_PID" "$sock"
    refute nonblocking "$alice_PID" 0
    refute nonblocking "$alice_PID" 1
}

@test "'| head -c 5': when the reader goes away, the client ends like any filter (SIGPIPE)" {
    start_server

    yes | timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" | head -c 5 >"$OUT"
    codes=("${PIPESTATUS[@]}")

    assert_equal "$(cat "$OUT")" $'y\ny\ny'
    # Killed by SIGPIPE (128 + 13) on its next write, not hung, not 124.
    assert_equal "${codes[*]}" "141 141 0"
}

@test "4 MiB through a reader slower than the network arrive intact: stdout is written, never dropped" {
    start_server
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$IN"

    # The reader takes 16 KiB every 2 ms: the pipe to it is full most of the
    # time, and the client must wait for it without losing a byte.
    timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN" |
        timeout "$WAIT_LIMIT" perl -e '
            while (($n = sysread(STDIN, $buf, 16384)) > 0) {
                syswrite(STDOUT, $buf) == $n or die "short write\n";
                select(undef, undef, undef, 0.002);
            }' >"$OUT"
    codes=("${PIPESTATUS[@]}")

    assert_equal "${codes[*]}" "0 0"
    cmp "$IN" "$OUT"
}

@test "'yes | head -c 1048576 | select_client' returns exactly those 1048576 bytes" {
    start_server

    yes | head -c 1048576 | timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" >"$OUT"
    codes=("${PIPESTATUS[@]}")

    assert_equal "${codes[2]}" 0
    assert_equal "$(stat -c %s "$OUT")" 1048576
    cmp <(yes | head -c 1048576) "$OUT"
}

@test "the server resets while our stdout is full: what it sent before the reset still comes out" {
    # A peer that waits 1 s, sends 350 000 bytes and LAST, and closes with
    # our input unread (so its kernel sends a RST).  Our stdout is a pipe
    # nobody reads for 3 s: 64 KiB fit in the pipe, 256 KiB in our buffer,
    # the rest - LAST with it - waits in the kernel's receive queue when
    # the RST makes our send() fail.
    start_bg "$BATS_TEST_TMPDIR/peer" "$PEER" lastwords 127.0.0.1 0 350000
    wait_for "the peer's port" grep -q '^listening on port ' "$BATS_TEST_TMPDIR/peer.out"
    PORT=$(sed -n 's/^listening on port //p' "$BATS_TEST_TMPDIR/peer.out")

    run --separate-stderr timeout 20 bash -c \
        'head -c 10M /dev/zero | "$1" -q 127.0.0.1 "$2" | (sleep 3; tail -c 5)
         exit "${PIPESTATUS[1]}"' _ "$CLIENT" "$PORT"
    assert_failure 3
    assert_output LAST
    assert_equal "$stderr" "select_client: connection reset by server"
}

@test "-u: not one reply to any datagram is a failure: exit 2, and the message says so" {
    # A UDP socket that takes datagrams and never answers.
    exec {silent}< <(exec python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
time.sleep(30)
' 3>&-)
    BG_PIDS+=("$!")
    read -r -t "$WAIT_LIMIT" SILENT_PORT <&"$silent"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.1 "$SILENT_PORT" <<<$'one\ntwo'
    assert_failure 2
    assert_output ""
    assert_equal "$stderr" "select_client: no reply from 127.0.0.1:$SILENT_PORT to any of 2 datagrams within 1s"
}

@test "-u to a name with two addresses, the first refused: it moves on to the second, as TCP does" {
    # A hosts file of its own: a mount namespace, in which it is mounted
    # over /etc/hosts; as an ordinary user, inside a user namespace.
    local userns=()
    if [[ $(id -u) != 0 ]]; then
        userns=(--user --map-root-user)
    fi
    unshare "${userns[@]}" --mount true 2>/dev/null ||
        skip "needs root or user namespaces (unshare --mount fails here)"
    # twoaddrs is ::1 and then 127.0.0.1 (RFC 6724 puts IPv6 first); the
    # server listens on 127.0.0.1 only.
    printf '::1 twoaddrs\n127.0.0.1 twoaddrs\n' >"$BATS_TEST_TMPDIR/hosts"
    start_server --bind 127.0.0.1

    run --separate-stderr timeout "$WAIT_LIMIT" unshare "${userns[@]}" --mount sh -c \
        'mount --bind "$1" /etc/hosts && exec "$2" -u twoaddrs "$3"' _ \
        "$BATS_TEST_TMPDIR/hosts" "$CLIENT" "$PORT" <<<$'first\nsecond'
    assert_success
    assert_output $'first\nsecond'
    run echo "$stderr"
    assert_line --index 0 --regexp "^connected to \\[::1\\]:$PORT from \\[::1\\]:[0-9]+\$"
    assert_line --index 1 "select_client: no UDP server at [::1]:$PORT; trying the next address"
    assert_line --index 2 --regexp "^connected to 127\\.0\\.0\\.1:$PORT from 127\\.0\\.0\\.1:[0-9]+\$"
    assert_equal "${#lines[@]}" 3
}

@test "into a pipe, stdout is written in large writes, not PIPE_BUF at a time, and stays blocking for the shell" {
    start_server
    head -c 4194304 /dev/urandom >"$IN"
    # strace counts the write()s: only stdout is written with write() (the
    # socket takes send()).  The python3 after it shares our stdout's open
    # file description, and reports whether it was left non-blocking.
    # (LeakSanitizer cannot work under ptrace: off, for the sanitizer build.)
    run --separate-stderr timeout 30 bash -c '
        { ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=write -o "$1" "$2" -q 127.0.0.1 "$3" <"$4"
          python3 -c "import fcntl, os, sys; print(\"stdout non-blocking:\", bool(fcntl.fcntl(1, fcntl.F_GETFL) & os.O_NONBLOCK), file=sys.stderr)"
        } | cat >"$5"' _ "$BATS_TEST_TMPDIR/strace" "$CLIENT" "$PORT" "$IN" "$OUT"
    assert_success
    assert_equal "$stderr" "stdout non-blocking: False"
    cmp "$IN" "$OUT"
    # 4 MiB at PIPE_BUF (4096) a write would be 1024 writes.
    writes=$(grep -c '^[0-9]* *write(' "$BATS_TEST_TMPDIR/strace")
    biggest=$(sed -n 's/.*write([0-9]*, .*) = \([0-9]*\)$/\1/p' "$BATS_TEST_TMPDIR/strace" | sort -n | tail -n 1)
    ((writes < 512)) || fail "$writes writes"
    ((biggest > 4096)) || fail "no write above 4096 bytes"
}
