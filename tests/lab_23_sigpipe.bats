# lab_23_sigpipe.bats - experiment 23: a one-process server that leaves
# SIGPIPE at its default action dies when it writes twice to a client that
# has gone: the first write() provokes the peer's RST, the second fails
# with EPIPE and raises SIGPIPE (status 141), and every other client loses
# its connection.  If the RST is already there, the first write() fails
# with ECONNRESET instead, which raises no signal.  select_server ignores
# SIGPIPE and sends with MSG_NOSIGNAL: the same client is closed as
# "reset" and the server goes on.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
BUG_SERVER=$LAB/bug_sigpipe_server
SCRIPT=$LAB/23-sigpipe.sh

# server_end_in STATE - ss shows a connection to the server's port in STATE.
server_end_in() {
    [[ -n $(ss -Htn state "$1" "( sport = :$PORT )") ]]
}

# only_listener_left - no connection to the server's port is left, in any
# state: the server's end of the last one was reset.
only_listener_left() {
    ! ss -Htan "( sport = :$PORT )" | grep -qv '^LISTEN'
}

# client_unread BYTES - the client's end of the (only) connection holds
# BYTES that its program has not read.
client_unread() {
    [[ $(ss -Htn state established "( dport = :$PORT )" | awk '{ print $1 }') == "$1" ]]
}

# leave_early - with the server frozen, a client sends two lines and
# closes at once (bash's /dev/tcp: connect, write, close); both lines and
# the FIN wait in the server's kernel when it is thawed.
leave_early() {
    kill -STOP "$SERVER_PID"
    printf 'one\ntwo\n' >"/dev/tcp/127.0.0.1/$PORT"
    wait_for "the FIN to reach the frozen server" server_end_in close-wait
    kill -CONT "$SERVER_PID"
}

@test "bug_sigpipe_server: a client that sends two lines and closes kills it with SIGPIPE, status 141" {
    start_plain_server bug "$BUG_SERVER"
    start_idle_client a -q
    types a 'hello from A'
    wait_for "A's echo" client_got a 'hello from A'

    leave_early

    wait_exit 5 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 141
    assert_equal "$(kill -l "$EXIT_STATUS")" PIPE
    # The first reply was written; the second write() never returned.
    run cat "$SERVER_OUT"
    assert_line --index 0 "listening on 127.0.0.1:$PORT (tcp)"
    assert_line --index 1 --regexp '^accepted fd [0-9]+$'
    assert_line --index 2 --regexp '^fd [0-9]+: wrote 13 bytes$'
    assert_line --index 3 --regexp '^accepted fd [0-9]+$'
    b_fd=${lines[3]#accepted fd }
    assert_line --index 4 "fd $b_fd: wrote 4 bytes"
    assert_equal "${#lines[@]}" 5
    run cat "$BATS_TEST_TMPDIR/bug.err"
    assert_output ''
}

@test "bug_sigpipe_server: when it dies, the client that did nothing wrong is disconnected too" {
    start_plain_server bug "$BUG_SERVER"
    start_idle_client a -q
    types a 'hello from A'
    wait_for "A's echo" client_got a 'hello from A'

    leave_early

    wait_exit 5 "$a_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of a
    assert_output 'select_client: server closed the connection'
    run --separate-stderr "$CLIENT" -q 127.0.0.1 "$PORT" <<<'anyone?'
    assert_failure 2
    assert_equal "$stderr" "select_client: connection refused: nothing listening on 127.0.0.1:$PORT"
}

@test "bug_sigpipe_server: a client whose RST arrives first is only closed: the first write fails with ECONNRESET, no signal" {
    start_plain_server bug "$BUG_SERVER"
    exec {B}<>"/dev/tcp/127.0.0.1/$PORT"
    hold "$B"
    printf 'first\n' >&"$B"
    wait_for "the echo, unread, in the client's socket" client_unread 6
    b_fd=$(sed -n 's/^accepted fd \([0-9]*\)$/\1/p' "$SERVER_OUT")

    # Closed with unread data, the client's socket sends RST, not FIN.
    kill -STOP "$SERVER_PID"
    printf 'one\ntwo\n' >&"$B"
    release "$B"
    wait_for "the RST to reach the frozen server" only_listener_left
    kill -CONT "$SERVER_PID"

    wait_for "the server to close the client" logged "closed fd $b_fd: Connection reset by peer"
    assert is_running "$SERVER_PID"
    run cat "$SERVER_OUT"
    assert_output "listening on 127.0.0.1:$PORT (tcp)
accepted fd $b_fd
fd $b_fd: wrote 6 bytes
closed fd $b_fd: Connection reset by peer"
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<'still serving'
    assert_success
    assert_output 'still serving'
}

@test "select_server -r 4: the same early leaver is closed as 'reset', and the other client is still served" {
    start_server -b 127.0.0.1 -r 4
    connect_idle a
    types a 'hello from A'
    wait_for "A's echo" client_got a 'hello from A'

    leave_early

    wait_for "the early leaver's close" server_says ': reset \(clients: 1\)$'
    run grep '^closed ' "$SERVER_OUT"
    assert_output --regexp '^closed fd [0-9]+ 127\.0\.0\.1:[0-9]+: reset \(clients: 1\)$'
    assert is_running "$SERVER_PID"
    types a 'still there?'
    wait_for "A's second echo" client_got a 'still there?'
    assert is_running "$a_PID"
}

@test "23-sigpipe.sh: the bug server dies of SIGPIPE with everyone, select_server closes one client" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. The flaw, in lab/bug_sigpipe_server.c
== 2. lab/bug_sigpipe_server, and client A, who stays
== 3. Client B sends two lines and leaves without reading the replies
== 4. Client A did nothing wrong, and lost its server too
== 5. The same two clients against select_server -r 4
== What it shows"
    all=$output
    # Step 3: B's connection waits with its data and FIN; one reply, then death.
    assert_equal "$(grep -cE '^    CLOSE-WAIT 9 +0 ' <<<"$output")" 2
    assert_line --regexp '^    server \| fd [0-9]+: wrote 4 bytes$'
    assert_line '    (exit status 141: PIPE)'
    # Step 4: A is disconnected, the port is dead.
    assert_line '    A | select_client: server closed the connection'
    assert_line "    (A's exit status 3)"
    assert_line '    (exit status 2)'
    # Step 5: two reads, one 'reset', A served again.
    run sed -n '/^== 5\./,/^== What/p' <<<"$all"
    assert_equal "$(grep -cE '^    server \| fd [0-9]+: read 4 bytes$' <<<"$output")" 2
    assert_line --regexp '^    server \| closed fd [0-9]+ 127\.0\.0\.1:[0-9]+: reset \(clients: 1\)$'
    assert_line '    A | still there?'
}

@test "23-sigpipe.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/23-sigpipe.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "23-sigpipe.sh: ./select_server is missing: run make first (make all lab/bug_sigpipe_server)"
}
