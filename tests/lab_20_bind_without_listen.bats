# lab_20_bind_without_listen.bats - experiment 20: bind() without listen().
# lab/bug_no_listen binds 127.0.0.1:PORT and calls accept() with no
# listen(): accept() fails with EINVAL, ss lists nothing on the port,
# select_client is refused at once (the kernel's RST), and a second bind()
# to the port fails with EADDRINUSE - unless both sockets set SO_REUSEADDR:
# then Linux lets select_server bind too, and its listen() takes the port.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
BUG_SERVER=$LAB/bug_no_listen
SCRIPT=$LAB/20-bind-without-listen.sh

# out_rsts - the kernel's count of TCP segments sent with RST.
out_rsts() {
    nstat -asz TcpOutRsts | awk '$1 == "TcpOutRsts" { print $2 }'
}

# socket_of PID - the first of PID's descriptors that is a socket, as
# readlink shows it: "socket:[INODE]".
socket_of() {
    local fd target
    for fd in /proc/"$1"/fd/*; do
        target=$(readlink "$fd") || continue
        if [[ $target == socket:* ]]; then
            echo "$target"
            return 0
        fi
    done
    return 1
}

# accept_failed - bug_no_listen has reported a failed accept().
accept_failed() {
    grep -q accept "$BATS_TEST_TMPDIR/bug.err"
}

@test "bug_no_listen: bind() succeeds, accept() fails with EINVAL, and it keeps trying" {
    start_plain_server bug "$BUG_SERVER"
    wait_for "the first accept()" accept_failed

    run cat "$SERVER_OUT"
    assert_output "listening on 127.0.0.1:$PORT (tcp)"
    run cat "$BATS_TEST_TMPDIR/bug.err"
    assert_line --index 0 "bug_no_listen: accept: Invalid argument"
    assert is_running "$SERVER_PID"
}

@test "bug_no_listen: the socket is bound, yet ss lists nothing on its port" {
    start_plain_server bug "$BUG_SERVER"

    run ss -Htan "sport = :$PORT"
    assert_output ''
    run ss -Htln "sport = :$PORT"
    assert_output ''
    # The process does hold a socket, and the kernel knows no listener or
    # connection by its inode.
    run socket_of "$SERVER_PID"
    assert_output --regexp '^socket:\[[0-9]+\]$'
    inode=${output//[^0-9]/}
    run ss -Htane
    refute_output --partial " ino:$inode "
}

@test "bug_no_listen: select_client is refused at once, by the kernel's RST" {
    start_plain_server bug "$BUG_SERVER"
    before=$(out_rsts)

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" </dev/null

    assert_failure 2
    assert_output ''
    assert_equal "$stderr" "select_client: connection refused: nothing listening on 127.0.0.1:$PORT"
    (($(out_rsts) > before))
    assert is_running "$SERVER_PID"
    run cat "$SERVER_OUT"
    assert_output "listening on 127.0.0.1:$PORT (tcp)"
}

@test "bug_no_listen: a second bind() without SO_REUSEADDR gets EADDRINUSE" {
    start_plain_server bug "$BUG_SERVER"

    run --separate-stderr timeout "$WAIT_LIMIT" "$SERVER" -p "$PORT" -b 127.0.0.1 --no-udp --no-reuseaddr </dev/null

    assert_failure 2
    assert_output ''
    assert_equal "$(head -n 1 <<<"$stderr")" "select_server: bind 127.0.0.1:$PORT: Address already in use"
}

@test "bug_no_listen: with SO_REUSEADDR on both, select_server binds the same port and serves it" {
    start_plain_server bug "$BUG_SERVER"
    bug_pid=$SERVER_PID bug_port=$PORT
    start_bg "$BATS_TEST_TMPDIR/second" "$SERVER" -p "$bug_port" -b 127.0.0.1 --no-udp
    wait_for "the second server's listening line" grep -q '^listening on ' "$BATS_TEST_TMPDIR/second.out"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$bug_port" <<<'hello'

    assert_success
    assert_output 'hello'
    run ss -Htln "sport = :$bug_port"
    assert_equal "${#lines[@]}" 1
    assert is_running "$bug_pid"
}

@test "20-bind-without-listen.sh: EINVAL, nothing in ss, refused by a RST, then the second bind()" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    all=$output
    port=$(sed -n 's/^    bug_no_listen | listening on 127\.0\.0\.1:\([0-9]*\) (tcp)$/\1/p' <<<"$output")
    [[ $port =~ ^[0-9]+$ ]]
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. The flaw, in lab/bug_no_listen.c
== 2. Start lab/bug_no_listen
== 3. What ss and netstat see on port $port
== 4. A client connects
== 5. A second server binds the same port
== What it shows"
    assert_line '    bug_no_listen | bug_no_listen: accept: Invalid argument'
    # Step 3: ss prints its header and nothing else; netstat nothing.
    run grep -A 2 "^\\$ ss -tan 'sport = :$port'\$" <<<"$all"
    assert_line --index 1 --regexp '^    State +Recv-Q'
    assert_line --index 2 "\$ netstat -tan | grep ':$port '"
    run grep -A 1 '^\$ netstat -tan' <<<"$all"
    assert_line --index 1 '    (nothing)'
    run grep -A 1 '^\$ ls -l /proc/' <<<"$all"
    assert_line --index 1 --regexp '^    [0-9]+ -> socket:\[[0-9]+\]$'
    # Step 4: refused within a second, one more RST or more (the machine
    # may send others meanwhile).
    run sed -n '/^== 4\./,/^== 5\./p' <<<"$all"
    assert_line "    select_client: connection refused: nothing listening on 127.0.0.1:$port"
    assert_line --regexp '^    \(exit status 2 after [0-9]{1,3} ms\)$'
    rsts=$(sed -n 's/^    TcpOutRsts, the kernel.s count of RSTs sent: \([0-9]*\) -> \([0-9]*\)$/\1 \2/p' <<<"$output")
    read -r before after <<<"$rsts"
    ((after > before))
    if [[ $(id -u) == 0 ]] && command -v tcpdump >/dev/null; then
        assert_line --regexp "^    [0-9:.]+ IP 127\.0\.0\.1\.[0-9]+ > 127\.0\.0\.1\.$port: Flags \[S\], "
        assert_line --regexp "^    [0-9:.]+ IP 127\.0\.0\.1\.$port > 127\.0\.0\.1\.[0-9]+: Flags \[R\.\], seq 0, "
    else
        assert_line '    (a packet capture needs root: skipped; run with sudo to see it)'
    fi
    # Step 5: EADDRINUSE without SO_REUSEADDR, a listener with it.
    run sed -n '/^== 5\./,/^== What/p' <<<"$all"
    assert_line "    select_server: bind 127.0.0.1:$port: Address already in use"
    assert_line '    (exit status 2)'
    assert_line "    server | listening on 127.0.0.1:$port (tcp)"
    assert_line --regexp "^    LISTEN +0 +[0-9]+ +127\.0\.0\.1:$port "
    assert_line '    hello'
    assert_line '    (bug_no_listen still runs, bound and not listening)'
}

@test "20-bind-without-listen.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/20-bind-without-listen.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "20-bind-without-listen.sh: ./select_server is missing: run make first (make all lab/bug_no_listen)"
}
