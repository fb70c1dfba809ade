# shutdown.bats - how the end of a server looks from both sides.  A client
# watches its socket in the same select() call as its keyboard, so even a
# user idle at the prompt learns at once that the server went away: after
# "quit", SIGTERM or SIGINT (a graceful shutdown that still delivers what was
# queued), and after SIGKILL (no goodbye, but the kernel closes the sockets).
# The same close is an error before our end of input and the normal end after
# it.  A second signal during the grace period ends the server at once.

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

# in_backlog - the kernel holds an established connection to the server's
# port; while the server is paused, one that nobody has accepted.
in_backlog() {
    [[ -n $(ss -Htn state established "( sport = :$PORT )") ]]
}

# connect_idle NAME - an idle, quiet select_client, once the server has
# accepted it; sets NAME_PID, NAME_FD (its stdin), NAME_CFD and NAME_PEER.
connect_idle() {
    local n
    n=$(count_lines '^accepted ' "$SERVER_OUT")
    start_idle_client "$1" -q
    wait_accepts $((n + 1))
    accepted_as "$1"
}

# stderr_of NAME / stdout_of NAME - what the client NAME printed.
stderr_of() {
    cat "$BATS_TEST_TMPDIR/$1.err"
}
stdout_of() {
    cat "$BATS_TEST_TMPDIR/$1.out"
}

# pending_for FD - ask `list` for the bytes the server holds for the client
# on fd FD (0 once the kernel took them all); sets PENDING.
pending_for() {
    local mark
    mark=$(wc -l <"$SERVER_OUT")
    console list
    wait_for "the reply to list" listed_since "$mark"
    PENDING=$(tail -n "+$((mark + 1))" "$SERVER_OUT" |
        awk -v fd="$1" '$1 == fd && NF == 8 { print $7; exit }')
    [[ $PENDING =~ ^[0-9]+$ ]]
}

# listed_since N - the `list` reply ends after the first N lines of output.
listed_since() {
    tail -n "+$(($1 + 1))" "$SERVER_OUT" | grep -qE '^\([0-9]+ clients?\)$'
}

# start_flooder - a testpeer that sends without ever reading; returns once
# the server holds echo for it that it cannot deliver; sets flood_CFD.
start_flooder() {
    start_bg "$BATS_TEST_TMPDIR/flood" "$PEER" flood 127.0.0.1 "$PORT" 30
    wait_accepts 1
    accepted_as flood
    wait_for "echo to back up for the flooder" pending_is_over 0 "$flood_CFD"
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
    wait_exit 1 "$alice_PID"
    assert_equal "$EXIT_STATUS" 3
    wait_exit 1 "$bob_PID"
    assert_equal "$EXIT_STATUS" 3
    for name in alice bob; do
        run stderr_of "$name"
        assert_output "select_client: server closed the connection"
        run stdout_of "$name"
        assert_output ""
    done
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    run tail -n 4 "$SERVER_OUT"
    assert_output "shutting down (quit): closing 2 clients
closed fd $alice_CFD $alice_PEER: shutdown (clients: 1)
closed fd $bob_CFD $bob_PEER: shutdown (clients: 0)
bye"
}

@test "SIGTERM is a graceful shutdown: exit 0, each client logged closed for 'shutdown'" {
    start_server
    connect_idle alice

    kill -TERM "$SERVER_PID"

    wait_exit 1 "$alice_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of alice
    assert_output "select_client: server closed the connection"
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    run tail -n 3 "$SERVER_OUT"
    assert_output "shutting down (SIGTERM): closing 1 client
closed fd $alice_CFD $alice_PEER: shutdown (clients: 0)
bye"
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "SIGINT (Ctrl-C) is graceful too, and the log names the signal" {
    start_server
    connect_idle alice

    kill -INT "$SERVER_PID"

    wait_exit 1 "$alice_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of alice
    assert_output "select_client: server closed the connection"
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    run tail -n 3 "$SERVER_OUT"
    assert_output "shutting down (SIGINT): closing 1 client
closed fd $alice_CFD $alice_PEER: shutdown (clients: 0)
bye"
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
    assert logged "shutting down (quit): closing 0 clients"
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
        pid=${name}_PID
        wait_exit 1 "${!pid}"
        assert_equal "$EXIT_STATUS" 3
        run stdout_of "$name"
        assert_output "*** server: the lab closes now"
        run stderr_of "$name"
        assert_output "select_client: server closed the connection"
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

    wait_exit 2 "$slow_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of slow
    assert_output "select_client: server closed the connection"
    # Every line arrived, the last one last and whole.
    assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/slow.out")" "$said"
    assert_equal "$(tail -n 1 "$BATS_TEST_TMPDIR/slow.out")" "*** server: $said $text"
    wait_exit 1 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    assert logged "closed fd $slow_CFD $slow_PEER: shutdown (clients: 0)"
}

@test "a client that never reads cannot hold up shutdown: after the 1 s grace it is closed anyway" {
    start_server
    start_flooder

    kill -TERM "$SERVER_PID"

    # The grace period is 1 s; give the exit a little more than that.
    wait_exit 3 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    run tail -n 3 "$SERVER_OUT"
    assert_output "shutting down (SIGTERM): closing 1 client
closed fd $flood_CFD $flood_PEER: shutdown (clients: 0)
bye"
}

@test "a second SIGTERM during the grace period ends the server at once, with no goodbye" {
    start_server
    start_flooder
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
    printf 'all my input\nand its end\n' >"$BATS_TEST_TMPDIR/batch.in"

    # stdin is a file: the client sends it, half-closes, reads the echo, and
    # the server's close after that is the end it was waiting for.
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" \
        <"$BATS_TEST_TMPDIR/batch.in"
    assert_success
    assert_output $'all my input\nand its end'
    assert_equal "$stderr" ""
    wait_for "the batch client's close" \
        server_says '^closed fd [0-9]+ [^ ]+: eof \(clients: 1\)$'

    # The same close, before the idle client's end of input, is an error.
    console quit
    wait_exit 1 "$idle_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of idle
    assert_output "select_client: server closed the connection"
}
