# robustness.bats - one process serves everyone, so no single client may
# hurt the others: a client that never reads is throttled (echo) or dropped
# (chat), a client that vanishes mid-conversation closes only itself, and
# running out of client slots or file descriptors is answered politely with
# "server full" - without leaking descriptors or spinning the loop.

load test_helper

# logged LINE - the server printed exactly this line.
logged() {
    grep -qxF -- "$1" "$SERVER_OUT"
}

# accepted_as NAME - after NAME's "accepted" line: NAME_CFD and NAME_PEER.
accepted_as() {
    local line
    line=$(grep '^accepted ' "$SERVER_OUT" | tail -n 1)
    [[ $line =~ ^accepted\ (.+)\ on\ fd\ ([0-9]+)\ \(clients:\ [0-9]+\)$ ]]
    eval "$1_PEER=\${BASH_REMATCH[1]}; $1_CFD=\${BASH_REMATCH[2]}"
}

# says_times N ERE - at least N lines of the server's stdout match ERE.  A
# function, so that wait_for counts again on every try.
says_times() {
    (($(count_lines "$2" "$SERVER_OUT") >= $1))
}

# wait_accepts N - wait until the server has logged N accepts in all.
wait_accepts() {
    wait_for "accept number $1" says_times "$1" '^accepted '
}

# connect_idle NAME - start an idle client and wait until the server has
# accepted it (sets NAME_CFD and NAME_PEER).
connect_idle() {
    local n
    n=$(count_lines '^accepted ' "$SERVER_OUT")
    start_idle_client "$1" -q
    wait_accepts $((n + 1))
    accepted_as "$1"
}

# client_got NAME TEXT - the client NAME printed a line exactly TEXT.
client_got() {
    grep -qxF -- "$2" "$BATS_TEST_TMPDIR/$1.out"
}

# ask COMMAND LAST - type COMMAND, wait for the line matching LAST (an ERE
# without '/') that ends its reply; `output` and `lines` hold the reply.
ask() {
    local mark
    mark=$(wc -l <"$SERVER_OUT")
    console "$1"
    wait_for "the reply to '$1'" printed_since "$mark" "$2"
    run sed -nE "$((mark + 1)),\$ { p; /$2/q }" "$SERVER_OUT"
}

printed_since() {
    tail -n "+$(($1 + 1))" "$SERVER_OUT" | grep -qE -- "$2"
}

# listed_as FD STATE - a fresh `list` shows the client on FD in STATE.
listed_as() {
    ask list '^\([0-9]+ clients?\)$'
    grep -qE "^$1 .* $2\$" <<<"$output"
}

# select_calls - the select() call count in the `stats` reply in `output`.
select_calls() {
    sed -n 's/.*; select() calls: \([0-9]*\);.*/\1/p' <<<"$output"
}

# start_server_with_fd_limit LIMIT [OPTIONS...] - start_server, but with the
# soft RLIMIT_NOFILE lowered to LIMIT for the server alone.
start_server_with_fd_limit() {
    local limit=$1
    shift
    SERVER_OUT=$BATS_TEST_TMPDIR/server.out
    SERVER_ERR=$BATS_TEST_TMPDIR/server.err
    rm -f "$BATS_TEST_TMPDIR/console"
    mkfifo "$BATS_TEST_TMPDIR/console"
    (ulimit -S -n "$limit" && exec "$SERVER" -p 0 "$@") \
        <"$BATS_TEST_TMPDIR/console" >"$SERVER_OUT" 2>"$SERVER_ERR" 3>&- &
    SERVER_PID=$!
    BG_PIDS+=("$SERVER_PID")
    exec {CONSOLE_FD}>"$BATS_TEST_TMPDIR/console"
    wait_for "the server's listening line" grep -q '^listening on ' "$SERVER_OUT"
    PORT=$(sed -n '1s/^listening on .*:\([0-9][0-9]*\) (.*$/\1/p' "$SERVER_OUT")
    [[ $PORT =~ ^[0-9]+$ ]]
}

# free_fds_below LIMIT PID - descriptor numbers below LIMIT that PID has free.
free_fds_below() {
    local fd used=0
    for fd in /proc/"$2"/fd/*; do
        ((${fd##*/} < $1)) && used=$((used + 1))
    done
    echo $(($1 - used))
}

@test "echo: a client that never reads is throttled, and another's round trips stay fast" {
    start_server
    start_bg "$BATS_TEST_TMPDIR/flood" "$PEER" flood 127.0.0.1 "$PORT" 30
    wait_accepts 1
    accepted_as flood
    # Its echo backs up past the high-water mark: the server stops reading
    # it instead of buffering without end.
    wait_for "the flooder to be throttled" listed_as "$flood_CFD" throttled

    run "$PEER" rtt 127.0.0.1 "$PORT" 50     # each within 2 s, or it fails
    assert_success
    assert_output --regexp '^50 round trips, slowest [0-9]+ ms$'

    # Throttled, not dropped: in echo mode a slow reader costs only itself.
    assert listed_as "$flood_CFD" throttled
    run grep -c '^closed ' "$SERVER_OUT"
    assert_output 1             # the rtt client, nobody else
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "chat: a receiver that never reads is dropped as a slow consumer; the others carry on" {
    start_server --mode chat
    connect_idle listener
    # Two connections held by this shell: one never reads, one only talks.
    exec {deaf}<>/dev/tcp/127.0.0.1/"$PORT"
    wait_accepts 2
    accepted_as deaf
    exec {talker}<>/dev/tcp/127.0.0.1/"$PORT"
    wait_accepts 3
    accepted_as talker

    # Talk in batches of 1 KiB lines, each ended by a marker line, and look
    # at the deaf client's pending output after every batch.  Its kernel
    # buffers fill first; then the server holds the rest, up to 1 MiB.
    prefix="[fd $talker_CFD $talker_PEER] "
    line=$(printf 'x%.0s' {1..1023})
    size=524288                 # too little to go from 0 to over 1 MiB pending
    last=0
    for ((n = 1; n <= 64; n++)); do
        yes "$line" | head -c "$size" >&"$talker"
        echo "batch $n" >&"$talker"
        wait_for "batch $n to reach the listener" \
            client_got listener "${prefix}batch $n"
        ask list '^\([0-9]+ clients?\)$'
        pending=$(awk -v fd="$deaf_CFD" '$1 == fd { print $7 }' <<<"$output")
        [[ -n $pending ]] || break              # dropped
        last=$pending
        ((pending == 0)) || size=131072         # closer to the limit: smaller steps
    done
    wait_for "the deaf client's close" \
        logged "closed fd $deaf_CFD $deaf_PEER: slow consumer (clients: 2)"
    # Last seen connected with at most 1 MiB pending, and less than one
    # 128 KiB batch (as relayed, with prefixes) short of it.
    step=$((128 * (1024 + ${#prefix}) + ${#prefix} + 16))
    ((last <= 1048576 && last > 1048576 - step)) ||
        fail "last seen with $last bytes pending"

    echo "still talking" >&"$talker"
    wait_for "the listener to hear the talker" \
        client_got listener "[fd $talker_CFD $talker_PEER] still talking"
    assert client_got listener "*** fd $deaf_CFD $deaf_PEER left: slow consumer (2 clients)"
    run grep -c '^closed ' "$SERVER_OUT"
    assert_output 1             # only the deaf client
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "a client that aborts with a reset (RST) closes only itself" {
    start_server
    run "$PEER" reset 127.0.0.1 "$PORT"
    assert_success
    assert_output "reset sent"
    accepted_as gone
    wait_for "the reset client's close" \
        logged "closed fd $gone_CFD $gone_PEER: reset (clients: 0)"

    run "$PEER" rtt 127.0.0.1 "$PORT" 5
    assert_success
    assert is_running "$SERVER_PID"
    run cat "$SERVER_ERR"
    assert_output ""            # a peer's reset is news, not a server error
}

@test "a client that closes without reading its echo closes only itself; the server lives on" {
    start_server
    # 4 MiB sent, nothing read, then close(): unread data makes the kernel
    # answer with RST, so the server's next send() or read() fails.  With
    # SIGPIPE ignored and MSG_NOSIGNAL, a failed send is an error code for
    # that one client, never a signal that kills the whole server.
    run "$PEER" midclose 127.0.0.1 "$PORT"
    assert_success
    assert_output --regexp '^closed after sending [0-9]+ bytes$'
    accepted_as gone
    wait_for "the vanished client's close" \
        logged "closed fd $gone_CFD $gone_PEER: reset (clients: 0)"

    assert is_running "$SERVER_PID"
    run "$PEER" rtt 127.0.0.1 "$PORT" 5
    assert_success
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "--max-clients 3: a fourth connection is told exactly 'server full' and closed" {
    start_server --max-clients 3
    connect_idle a
    connect_idle b
    connect_idle c

    # nc returns once the server closes the connection (or fails after 5 s).
    timeout 5 nc -d 127.0.0.1 "$PORT" >"$BATS_TEST_TMPDIR/fourth.out"
    run cmp - "$BATS_TEST_TMPDIR/fourth.out" <<<"server full"
    assert_success
    wait_for "the refusal in the log" server_says \
        '^closed fd [0-9]+ \[::ffff:127\.0\.0\.1\]:[0-9]+: server full \(clients: 3\)$'

    # The three it serves are unaffected.
    for name in a b c; do
        fd=${name}_FD
        echo "hello from $name" >&"${!fd}"
    done
    for name in a b c; do
        wait_for "$name's echo" client_got "$name" "hello from $name"
    done
    run grep -c '^accepted ' "$SERVER_OUT"
    assert_output 3
}

@test "200 connect-echo-close cycles leave the server with the descriptors it started with" {
    start_server
    before=$(fd_count "$SERVER_PID")
    run "$PEER" cycle 127.0.0.1 "$PORT" 200
    assert_success
    assert_output "200 connections opened and closed"
    wait_for "the 200th close" says_times 200 '^closed fd .*: eof \(clients: [0-9]+\)$'
    run grep -c '^closed ' "$SERVER_OUT"
    assert_output 200
    assert_equal "$(fd_count "$SERVER_PID")" "$before"
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "out of descriptors (EMFILE): extra clients hear 'server full', the loop does not spin" {
    # With at most 16 descriptors, only the numbers below 16 that the server
    # itself does not use (stdio, self-pipe, listeners, the spare) can hold
    # clients.
    start_server_with_fd_limit 16
    room=$(free_fds_below 16 "$SERVER_PID")
    ((room >= 2)) || fail "only $room descriptors free below 16"
    for ((i = 1; i <= room; i++)); do
        connect_idle "c$i"
    done
    run grep -c "(clients: $room)\$" "$SERVER_OUT"
    assert_output 1
    ask stats '^clients: '
    before=$(select_calls)

    # Every descriptor is taken, so accept() fails with EMFILE.  The server
    # frees its spare one, accepts, says why, and closes.
    for extra in 1 2; do
        timeout 5 nc -d 127.0.0.1 "$PORT" >"$BATS_TEST_TMPDIR/extra$extra.out"
        run cmp - "$BATS_TEST_TMPDIR/extra$extra.out" <<<"server full"
        assert_success
    done
    wait_for "both refusals in the log" says_times 2 ": server full \\(clients: $room\\)\$"
    run sed -n 's/^closed fd \([0-9]*\) .*: server full .*/\1/p' "$SERVER_OUT"
    for fd in "${lines[@]}"; do
        ((fd < 16)) || fail "refused on fd $fd, above the limit"
    done

    # Time passing is the point: a connection left in the backlog keeps the
    # listener readable, and a naive loop would call select() nonstop now.
    sleep 1
    ask stats '^clients: '
    # One wake-up per refused connection, one for this command.
    assert_equal "$(select_calls)" "$((before + 3))"

    # Once the clients leave, new ones are served again.
    for ((i = 1; i <= room; i++)); do
        pid=c${i}_PID
        kill "${!pid}"
    done
    wait_for "every client's close" server_says '\(clients: 0\)$'
    run "$PEER" rtt 127.0.0.1 "$PORT" 5
    assert_success
    run cat "$SERVER_ERR"
    assert_output ""
}
