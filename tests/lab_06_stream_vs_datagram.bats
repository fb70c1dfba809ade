# lab_06_stream_vs_datagram.bats - experiment 6: TCP carries a stream of
# bytes, UDP carries datagrams.  With --read-size 50, one 100-byte TCP
# write is read as 50 + 50, and five 10-byte writes that wait in the socket
# are read as one 50-byte read: reads do not see where writes began or
# ended.  A 100-byte UDP datagram is cut to 50 bytes, the rest is lost, and
# the next recvmsg() returns the next datagram, never that lost tail.

load test_helper

SCRIPT=$BATS_TEST_DIRNAME/../lab/06-stream-vs-datagram.sh

# connect_tcp - this shell opens a TCP connection to the server: sets CONN.
# Each `printf ... >&"$CONN"` is then exactly one write().
connect_tcp() {
    exec {CONN}<>"/dev/tcp/127.0.0.1/$PORT"
    hold "$CONN"
}

# reads_of FD - the server's trace lines for reads of FD, one a line.
reads_of() {
    grep -E "^fd $1: read " "$SERVER_OUT" || true
}

# unread BYTES - the server's end of the only connection holds BYTES
# that nobody has read (ss's Recv-Q).
unread() {
    [[ $(ss -Htn state established "( sport = :$PORT )" | awk '{ print $1 }') == "$1" ]]
}

# repeat CHAR N - CHAR written N times.
repeat() {
    local s
    printf -v s "%$2s" ''
    printf '%s' "${s// /$1}"
}

@test "TCP: one write() of 100 bytes is read as 50 + 50, and echoed whole" {
    start_server --read-size 50 --trace
    connect_tcp
    wait_accepts 1
    accepted_as conn
    msg=$(repeat a 50)$(repeat b 50)

    printf '%s' "$msg" >&"$CONN"
    read -r -N 100 -t "$WAIT_LIMIT" -u "$CONN" echo
    release "$CONN"

    assert_equal "$echo" "$msg"
    wait_for "the close" server_says '^closed '
    run reads_of "$conn_CFD"
    assert_output "fd $conn_CFD: read 50 bytes
fd $conn_CFD: read 50 bytes"
}

@test "TCP: five writes of 10 bytes that arrive while nobody reads come out of one read" {
    start_server --read-size 50 --trace
    # Paused, the server does not accept: the connection waits in the
    # backlog and what the client writes waits in its receive queue.
    console pause
    wait_for "the pause" server_says '^paused'
    connect_tcp
    for i in 1 2 3 4 5; do
        printf 'message %d\n' "$i" >&"$CONN"
    done
    wait_for "50 bytes in the receive queue" unread 50

    console resume
    wait_accepts 1
    accepted_as conn
    read -r -N 50 -t "$WAIT_LIMIT" -u "$CONN" echo
    release "$CONN"

    assert_equal "$echo" "$(printf 'message %d\n' 1 2 3 4 5)"$'\n'
    wait_for "the close" server_says '^closed '
    run reads_of "$conn_CFD"
    assert_output "fd $conn_CFD: read 50 bytes"
}

@test "UDP: each 100-byte datagram comes back as its first 50 bytes; the rest is lost and logged" {
    start_server --read-size 50 --trace
    printf '%s\n%s\n' "$(repeat a 50)$(repeat b 50)" "$(repeat c 50)$(repeat d 50)" >"$IN"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.1 "$PORT" <"$IN"

    assert_success
    # The b's and d's never arrive: the second reply is the second
    # datagram's head, not the first one's tail.
    assert_output "$(repeat a 50)
$(repeat c 50)"
    wait_for "two truncation notices" says_times 2 ' truncated '
    run grep ' truncated ' "$SERVER_OUT"
    assert_line --index 0 --regexp '^udp \[::ffff:127\.0\.0\.1\]:[0-9]+: datagram truncated to 50 bytes \(--read-size 50\)$'
    assert_line --index 1 --regexp '^udp \[::ffff:127\.0\.0\.1\]:[0-9]+: datagram truncated to 50 bytes \(--read-size 50\)$'
    assert_equal "${#lines[@]}" 2
}

@test "06-stream-vs-datagram.sh shows 50 + 50, five writes in one read, and truncated datagrams" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    # Step 2: one write, two reads, the echo intact.
    assert_equal "$(grep -cE '^    server \| fd [0-9]+: read 50 bytes$' <<<"$output")" 3
    assert_line "    echo received: 100 bytes, identical"
    # Step 3: 50 bytes queued, then a single read of them.
    assert_line --regexp '^    ESTAB 50 +0 '
    assert_line --regexp "^>> look: five writes, ONE read: 'fd [0-9]+: read 50 bytes'"
    # Step 4: two datagrams, two notices, two 50-byte replies.
    assert_equal "$(grep -cE '^    server \| udp .*: datagram truncated to 50 bytes \(--read-size 50\)$' <<<"$output")" 2
    assert_line "    $(repeat a 50)"
    assert_line "    $(repeat c 50)"
    refute_line --partial "$(repeat b 10)"
}

@test "06-stream-vs-datagram.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/06-stream-vs-datagram.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "06-stream-vs-datagram.sh: ./select_server is missing: run make first"
}
