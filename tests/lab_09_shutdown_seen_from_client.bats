# lab_09_shutdown_seen_from_client.bats - experiment 9: a client learns
# that the server has gone only when it reads the socket.  select_client
# waits on stdin and the socket together and exits 3 at once; the naive
# client, asleep in fgets() on its keyboard, leaves the server's FIN unread
# (CLOSE-WAIT) until a line is typed, and only then finds the connection
# closed: "server terminated prematurely".

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
NAIVE_CLIENT=$LAB/naive_client
SCRIPT=$LAB/09-shutdown-seen-from-client.sh

# start_idle_naive NAME - lab/naive_client with a keyboard nobody types on,
# as start_idle_client does for select_client: sets NAME_PID and NAME_FD
# (`types NAME` writes there); output in stdout_of/stderr_of.
start_idle_naive() {
    local name=$1 fifo=$BATS_TEST_TMPDIR/$1.in
    mkfifo "$fifo"
    spawn "$NAIVE_CLIENT" 127.0.0.1 "$PORT" <"$fifo" \
        >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
    exec {IDLE_FD}>"$fifo"
    hold "$IDLE_FD"
    printf -v "${name}_FD" '%s' "$IDLE_FD"
    printf -v "${name}_PID" '%s' "$BG_PID"
}

# in_close_wait - a client socket of the server's port is in CLOSE-WAIT:
# the server's FIN arrived, and its program has not closed its end.
in_close_wait() {
    [[ -n $(ss -Htn state close-wait "( dport = :$PORT )") ]]
}

@test "naive_client echoes typed lines like any client while the server is up" {
    start_server
    start_idle_naive naive
    wait_accepts 1

    types naive "hello, server"
    wait_for "the echo" client_got naive "hello, server"
    end_input naive

    wait_exit 2 "$naive_PID"
    assert_equal "$EXIT_STATUS" 0
    run stderr_of naive
    assert_output ''
}

@test "quit: select_client exits 3 at once; the naive client notices only when a line is typed" {
    start_server
    connect_idle sel
    start_idle_naive naive
    wait_accepts 2

    console quit

    # select_client: woken by the socket, with nothing typed.
    wait_exit 1 "$sel_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of sel
    assert_output "select_client: server closed the connection"
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0

    # The naive client: its kernel has the FIN, the program sleeps on in
    # fgets().  Half a second later it still has not noticed.
    wait_for "the naive client's socket in CLOSE-WAIT" in_close_wait
    sleep 0.5
    assert is_running "$naive_PID"
    run stderr_of naive
    assert_output ''

    # The user types: write() succeeds, read() returns 0.
    types naive "anyone there?"

    wait_exit 1 "$naive_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of naive
    assert_output "naive_client: server terminated prematurely"
    run stdout_of naive
    assert_output ''
}

@test "09-shutdown-seen-from-client.sh: select_client exits 3 at once, naive_client only after typing" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_line --regexp '^    select_client exited with status 3 after [0-9]+ ms:$'
    assert_line "    select_client | select_client: server closed the connection"
    assert_line --regexp '^    CLOSE-WAIT .*"naive_client"'
    assert_line --regexp '^    naive_client exited with status 3, [0-9]+ ms after the line was typed:$'
    assert_line "    naive_client  | naive_client: server terminated prematurely"
    # select_client's time, from quit to exit, is milliseconds.
    ms=$(sed -n 's/^    select_client exited with status 3 after \([0-9]*\) ms:$/\1/p' <<<"$output")
    ((ms < 1000))
}

@test "09-shutdown-seen-from-client.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/09-shutdown-seen-from-client.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "09-shutdown-seen-from-client.sh: ./select_server is missing: run make first (make all lab/naive_client)"
}
