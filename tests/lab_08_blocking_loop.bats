# lab_08_blocking_loop.bats - experiment 8: in a select() server, one
# blocking write() to a client that does not read stops the whole loop.
# lab/naive_server, the textbook version (blocking sockets, echo written
# straight back), hangs in write() once a flooder's buffers are full, and a
# second client's round trip gets no echo at all; it moves again only when
# the flooder goes away.  select_server, with the same flooder connected,
# answers every round trip.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
NAIVE_SERVER=$LAB/naive_server
SCRIPT=$LAB/08-blocking-loop.sh

# flood_naive - a testpeer that sends for 30 s and never reads, connected
# to the naive server: sets flood_PID and flood_CFD (its fd in the server).
flood_naive() {
    start_bg "$BATS_TEST_TMPDIR/flood" "$PEER" flood 127.0.0.1 "$PORT" 30
    flood_PID=$BG_PID
    wait_accepts 1
    flood_CFD=$(sed -n 's/^accepted fd \([0-9][0-9]*\)$/\1/p' "$SERVER_OUT")
    [[ $flood_CFD =~ ^[0-9]+$ ]]
}

# send_q - bytes the kernel holds to send from the server to its one client.
send_q() {
    ss -Htn state established "( sport = :$PORT )" | awk '{ print $2; exit }'
}

# pipe_full - the server's send queue to the flooder is not empty and has
# not moved for 0.2 s: every buffer between the flooder and the server is
# full, so the naive server is stuck in write() for good.
pipe_full() {
    local before
    before=$(send_q)
    sleep 0.2
    [[ -n $before && $before != 0 && $(send_q) == "$before" ]]
}

@test "naive server: while a client floods without reading, another's round trip gets no echo" {
    start_plain_server naive "$NAIVE_SERVER"
    flood_naive
    wait_for "the flooder to fill every buffer" pipe_full

    run --separate-stderr "$PEER" rtt 127.0.0.1 "$PORT" 20

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "testpeer: round trip 1: no echo within 2s"
    # Stuck, not dead; and it never got back to select() to accept the
    # second client, whom the kernel had queued.
    assert is_running "$SERVER_PID"
    run cat "$SERVER_OUT"
    assert_output "listening on 127.0.0.1:$PORT (tcp)
accepted fd $flood_CFD"
}

@test "naive server: it moves again only when the flooder goes away" {
    start_plain_server naive "$NAIVE_SERVER"
    flood_naive
    wait_for "the flooder to fill every buffer" pipe_full

    kill -KILL "$flood_PID"

    # The flooder's close, with its receive queue full, resets the
    # connection: the blocked write() fails and the loop runs again.
    wait_for "the flooder's close" logged "closed fd $flood_CFD: Connection reset by peer"
    run --separate-stderr "$PEER" rtt 127.0.0.1 "$PORT" 5
    assert_success
    assert_output --regexp '^5 round trips, slowest [0-9]+ ms$'
}

@test "select_server: with the same flooder connected, all 20 round trips are answered" {
    start_server
    start_flooder
    wait_for "the flooder to fill every buffer" pipe_full

    run --separate-stderr "$PEER" rtt 127.0.0.1 "$PORT" 20

    assert_success
    assert_output --regexp '^20 round trips, slowest [0-9]+ ms$'
    assert_equal "$stderr" ''
    # The flooder is still connected, throttled: its echo waits in the
    # server's buffer and it is not read until that drains.
    pending_for "$flood_CFD"
    ((PENDING > 0))
    assert is_running "$flood_PID"
}

@test "08-blocking-loop.sh: the naive server leaves rtt unanswered, select_server answers" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_line "    testpeer: round trip 1: no echo within 2s"
    assert_line --regexp '^    \(exit status 1 after (19[0-9][0-9]|2[0-9]{3}) ms\)$'
    assert_line --regexp '^    server \| closed fd [0-9]+: Connection reset by peer$'
    assert_line --regexp '^    server \| [0-9]+ +127\.0\.0\.1:[0-9]+ .* throttled$'
    assert_line --regexp '^    20 round trips, slowest [0-9]+ ms$'
    assert_line --regexp '^    \(exit status 0 after [0-9]+ ms\)$'
}

@test "08-blocking-loop.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/08-blocking-loop.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "08-blocking-loop.sh: ./select_server is missing: run make first (make all tests/testpeer lab/naive_server)"
}
