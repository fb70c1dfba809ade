# shutdown.bats - how the end of a server looks from both sides.  A client
# watches its socket in the same select() call as its keyboard, so even a
# user idle at the prompt learns at once that the server went away: after
# "quit", SIGTERM or SIGINT (a graceful shutdown that still delivers what was
# queued), and after SIGKILL (no goodbye, but the kernel closes the sockets).
# The same close is an error before our end of input and the normal end after
# it.  A second signal during the grace period ends the server at once.

load test_helper

# saw_close NAME [SECONDS] - the idle client NAME exits 3 within SECONDS (1),
# saying the server closed the connection.
saw_close() {
    local pid=${1}_PID
    wait_exit "${2:-1}" "${!pid}"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of "$1"
    assert_output "select_client: server closed the connection"
}

# pending_is_over BYTES FD - the server holds more than BYTES for fd FD.
pending_is_over() {
    pending_for "$2" && ((PENDING > $1))
}

@test "quit: idle clients hear the close at once and exit 3 with 'server closed the connection'" {
    start_server
    connect_idle alice
    connect_idle bob

    console quit

    # Nobody typed anything: select() woke up on the socket, not the keyboard.
    for name in alice bob; do
        saw_close "$name"
        run stdout_of "$name"
        assert_output ""
    done
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    assert_shutdown_log quit alice bob
}

@test "SIGTERM is a graceful shutdown: exit 0, each client logged closed for 'shutdown'" {
    start_server
    connect_idle alice

    kill -TERM "$SERVER_PID"

    saw_close alice
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    assert_shutdown_log SIGTERM alice
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "SIGINT (Ctrl-C) is graceful too, and the log names the signal" {
    start_server
    connect_idle alice

    kill -INT "$SERVER_PID"

    saw_close alice
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    assert_shutdown_log SIGINT alice
}

@test "SIGKILL: the server says nothing, but the kernel closes its sockets and clients still notice" {
    start_server
    connect_idle alice

    kill -KILL "$SERVER_PID"

    # SIGKILL cannot be caught: no log, no goodbye, status 128 + 9.
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 137
    wait_exit 1 "$alice_PID"
    assert_equal "$EXIT_STATUS" 3
    # The kernel sends FIN for a socket with nothing unread, RST otherwise.
    run stderr_of alice
    assert_output --regexp '^select_client: (server closed the connection|connection reset by server)$'
    run grep -c -e '^shutting down' -e '^closed ' -e '^bye$' "$SERVER_OUT"
    assert_output 0
}

@test "a connection still waiting in the backlog when the server quits is reset, not closed" {
    start_server
    console pause
    wait_for "the pause" server_says '^paused: '
    # The kernel completes the handshake; nobody calls accept().
    start_idle_client waiting -q
    wait_for "the connection to wait in the backlog" in_backlog

    console quit

    wait_exit 1 "$waiting_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of waiting
    assert_output "select_client: connection reset by server"
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    # It was never the server's client, so the server never logged it.
    assert_shutdown_log quit
    run grep -c '^accepted ' "$SERVER_OUT"
    assert_output 0
}

@test "a 'say' typed just before 'quit' still reaches every client before the close" {
    start_server
    connect_idle alice
    connect_idle bob

    # One write: both commands arrive in the same read() of the console.
    printf 'say the lab closes now\nquit\n' >&"$CONSOLE_FD"

    for name in alice bob; do
        saw_close "$name"
        run stdout_of "$name"
        assert_output "*** server: the lab closes now"
    done
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
}

@test "megabytes queued for a stopped client are flushed in the grace period once it reads again" {
    start_server
    connect_idle slow
    kill -STOP "$slow_PID"          # like a reader stuck on a slow terminal

    # Say 1000-byte lines until the kernel's buffers are full and the rest
    # waits in the server's own output buffer for that client.
    text=$(printf 'x%.0s' {1..1000})
    said=0
    for ((batch = 1; batch <= 20; batch++)); do
        for ((i = 0; i < 1000; i++)); do
            printf 'say %d %s\n' $((said + i + 1)) "$text"
        done >&"$CONSOLE_FD"
        said=$((said + 1000))
        pending_for "$slow_CFD"
        ((PENDING == 0)) || break
    done
    ((PENDING > 0)) || fail "nothing pending in the server after $said lines"

    console quit
    wait_for "the shutdown to begin" server_says '^shutting down \(quit\)'
    kill -CONT "$slow_PID"          # within the 1 s grace period

    saw_close slow 2
    # Every line arrived, the last one last and whole.
    assert_equal "$(stdout_of slow | wc -l)" "$said"
    assert_equal "$(stdout_of slow | tail -n 1)" "*** server: $said $text"
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    assert_shutdown_log quit slow
}

@test "a client that never reads cannot hold up shutdown: after the 1 s grace it is closed anyway" {
    start_server
    start_flooder
    wait_for "echo to back up for the flooder" pending_is_over 0 "$flood_CFD"

    kill -TERM "$SERVER_PID"

    # The grace period is 1 s; give the exit a little more than that.
    wait_exit 3 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    assert_shutdown_log SIGTERM flood
}

@test "a second SIGTERM during the grace period ends the server at once, with no goodbye" {
    start_server
    start_flooder
    wait_for "echo to back up for the flooder" pending_is_over 0 "$flood_CFD"
    kill -TERM "$SERVER_PID"
    wait_for "the shutdown to begin" server_says '^shutting down \(SIGTERM\)'

    # The grace period could last 1 s; the second signal does not wait.
    kill -TERM "$SERVER_PID"

    wait_exit 1 "$SERVER_PID"
    # From the first signal on, SIGTERM has its default action: death by
    # signal (128 + 15), not a return from main() with status 0.
    assert_equal "$EXIT_STATUS" 143
    run tail -n 1 "$SERVER_OUT"
    assert_output "shutting down (SIGTERM): closing 1 client"
}

@test "the server closing is the normal end after our end of input: a batch client exits 0" {
    start_server
    connect_idle idle
    printf 'all my input\nand its end\n' >"$IN"

    # stdin is a file: the client sends it, half-closes, reads the echo, and
    # the server's close after that is the end it was waiting for.
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN"
    assert_success
    assert_output $'all my input\nand its end'
    assert_equal "$stderr" ""
    wait_for "the batch client's close" \
        server_says '^closed fd [0-9]+ [^ ]+: eof \(clients: 1\)$'

    # The same close, before the idle client's end of input, is an error.
    console quit
    saw_close idle
}

@test "SIGINT then SIGTERM at once: the second is death by signal (143), not a clean exit" {
    start_server
    start_flooder               # its pending echo holds the grace period
    wait_for "echo to back up for the flooder" pending_is_over 0 "$flood_CFD"

    # Whichever the handler sees first, the other finds the default action.
    kill -INT "$SERVER_PID"
    kill -TERM "$SERVER_PID"

    wait_exit 2 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 143
}
