# bench_servers.bats - the echo servers a benchmark sets beside
# select_server, each a different answer to "how do I serve many clients?".
# lab/fork_server forks a process per client: clients are served at once,
# each by its own child, reaped when it leaves.  lab/iterative_server serves
# one client at a time: the next waits in the listen backlog.
# bench/asyncio_echo.py is one event loop, in Python.  All three start as
# select_server does (port 0, the real port on the first line) and reject a
# bad command line in one line.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
FORK_SERVER=$LAB/fork_server
ITERATIVE_SERVER=$LAB/iterative_server
ASYNCIO_ECHO=$BATS_TEST_DIRNAME/../bench/asyncio_echo.py

# children_of PID - the PIDs of PID's child processes, zombies included,
# one a line (nothing if it has none).
children_of() {
    ps -o pid= --ppid "$1" || true
}

# has_children N - the server has exactly N child processes.
has_children() {
    (($(children_of "$SERVER_PID" | wc -l) == $1))
}

# queued_unread BYTES - a connection to the server holds exactly BYTES
# bytes that the server's kernel has received and the program not read.
queued_unread() {
    ss -Htn state established "( sport = :$PORT )" |
        awk -v n="$1" '$1 == n { found = 1 } END { exit !found }'
}

# --- fork_server: a process per client -----------------------------------

@test "fork_server: two clients connected at once each get their own lines back" {
    start_plain_server server "$FORK_SERVER"
    start_idle_client alice -q
    start_idle_client bob -q
    wait_for "a child process for each client" has_children 2

    types bob 'from bob'
    types alice 'from alice'

    wait_for "bob's echo" client_got bob 'from bob'
    wait_for "alice's echo" client_got alice 'from alice'
    assert is_running "$alice_PID"
    assert is_running "$bob_PID"
    run stdout_of alice
    assert_output 'from alice'
    run stdout_of bob
    assert_output 'from bob'
    # Both leave while the server runs, so it reaps both children.
    end_input alice
    end_input bob
    wait_for "both children to be reaped" has_children 0
}

@test "fork_server: one child process per connected client, and no zombie once they leave" {
    local name pid
    start_plain_server server "$FORK_SERVER"
    for name in c1 c2 c3; do
        start_idle_client "$name" -q
    done

    wait_for "three children" has_children 3
    run children_of "$SERVER_PID"
    assert_equal "${#lines[@]}" 3
    run ps -o comm= --ppid "$SERVER_PID"
    assert_output $'fork_server\nfork_server\nfork_server'

    for name in c1 c2 c3; do
        end_input "$name"
    done
    for name in c1 c2 c3; do
        pid=${name}_PID
        wait_exit 5 "${!pid}"
        assert_equal "$EXIT_STATUS" 0
    done
    # A child that has exited but was never waited for would still be
    # listed, in state Z: the SIGCHLD handler must have reaped all three.
    wait_for "no child left, not even a zombie" has_children 0
    run children_of "$SERVER_PID"
    assert_output ''
    assert is_running "$SERVER_PID"
}

# --- iterative_server: one client at a time ------------------------------

@test "iterative_server: echoes one client until it leaves, then the next" {
    start_plain_server server "$ITERATIVE_SERVER"
    printf 'first line\nsecond line\n' >"$IN"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN"
    assert_success
    assert_output $'first line\nsecond line'
    assert_equal "$stderr" ''

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<'next client'
    assert_success
    assert_output 'next client'
    assert_equal "$stderr" ''
}

@test "iterative_server: a second client waits in the backlog until the first leaves" {
    start_plain_server server "$ITERATIVE_SERVER"
    start_idle_client first -q
    types first 'first here'
    wait_for "the first client's echo" client_got first 'first here'

    start_idle_client second -q
    types second 'second here'

    # Its 12 bytes reached the server's kernel (the handshake completed in
    # the backlog) but the program, busy with the first, has not read them.
    wait_for "the second's line queued, unread" queued_unread 12
    types first 'still me'
    wait_for "the first client's second echo" client_got first 'still me'
    run stdout_of second
    assert_output ''

    end_input first
    wait_exit 5 "$first_PID"
    assert_equal "$EXIT_STATUS" 0
    wait_for "the second client's echo" client_got second 'second here'
    run stdout_of second
    assert_output 'second here'
    run stdout_of first
    assert_output $'first here\nstill me'
}

# --- asyncio_echo.py: one event loop, in Python --------------------------

@test "asyncio_echo.py: echoes a line" {
    start_plain_server server "$ASYNCIO_ECHO"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<'hello, asyncio'

    assert_success
    assert_output 'hello, asyncio'
    assert_equal "$stderr" ''
}

@test "asyncio_echo.py: 1 MiB of random bytes comes back byte for byte" {
    start_plain_server server "$ASYNCIO_ECHO"
    head -c $((1024 * 1024)) /dev/urandom >"$IN"

    timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN" >"$OUT"

    assert_equal "$(stat -c %s "$OUT")" $((1024 * 1024))
    cmp "$IN" "$OUT"
}

# --- The command line and the ending, the same for all three -------------

@test "fork_server -h: the usage on stdout, status 0" {
    run --separate-stderr "$FORK_SERVER" -h

    assert_success
    assert_output 'usage: fork_server [-p PORT]   (default 9877, 0 = kernel chooses)'
    assert_equal "$stderr" ''
}

@test "iterative_server -h: the usage on stdout, status 0" {
    run --separate-stderr "$ITERATIVE_SERVER" -h

    assert_success
    assert_output 'usage: iterative_server [-p PORT]   (default 9877, 0 = kernel chooses)'
    assert_equal "$stderr" ''
}

@test "asyncio_echo.py -h: the usage on stdout, status 0" {
    run --separate-stderr "$ASYNCIO_ECHO" -h

    assert_success
    assert_output "usage: asyncio_echo.py [-h] [-p PORT]

TCP echo server on asyncio, listening on 127.0.0.1.

options:
  -h, --help  show this help message and exit
  -p PORT     TCP port (default 9877, 0 = kernel chooses)"
    assert_equal "$stderr" ''
}

@test "fork_server -p 70000: one line on stderr, status 1" {
    run --separate-stderr "$FORK_SERVER" -p 70000

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "fork_server: invalid port '70000' (expected 0-65535)"
}

@test "iterative_server -p 70000: one line on stderr, status 1" {
    run --separate-stderr "$ITERATIVE_SERVER" -p 70000

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "iterative_server: invalid port '70000' (expected 0-65535)"
}

@test "asyncio_echo.py -p 70000: one line on stderr, status 1" {
    run --separate-stderr "$ASYNCIO_ECHO" -p 70000

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "asyncio_echo.py: invalid port '70000' (expected 0-65535)"
}

@test "every other lab server has the same command line: -h on stdout, each mistake one line and status 1" {
    local name
    for name in naive_server naive_udp_echo bug_no_listen bug_sigpipe_server \
                bug_fork_noclose bug_fork_nowait; do
        run --separate-stderr "$LAB/$name" -h
        assert_success
        assert_output "usage: $name [-p PORT]   (default 9877, 0 = kernel chooses)"
        assert_equal "$stderr" ''
        run --separate-stderr "$LAB/$name" -x
        assert_failure 1
        assert_output ''
        assert_equal "$stderr" "$name: unexpected argument '-x' (usage: $name [-p PORT])"
        run --separate-stderr "$LAB/$name" -p
        assert_failure 1
        assert_equal "$stderr" "$name: -p needs a port (0-65535)"
        run --separate-stderr "$LAB/$name" -p 70000
        assert_failure 1
        assert_equal "$stderr" "$name: invalid port '70000' (expected 0-65535)"
    done
}

@test "SIGTERM: each server exits at once with status 0, so a benchmark can stop it" {
    local server
    for server in "$FORK_SERVER" "$ITERATIVE_SERVER" "$ASYNCIO_ECHO"; do
        start_plain_server server "$server"
        kill -TERM "$SERVER_PID"
        wait_exit 5 "$SERVER_PID"
        assert_equal "$(basename "$server") $EXIT_STATUS" "$(basename "$server") 0"
        run cat "$SERVER_OUT"
        assert_output "listening on 127.0.0.1:$PORT (tcp)"
        run cat "$BATS_TEST_TMPDIR/server.err"
        assert_output ''
    done
}

@test "asyncio_echo.py: SIGTERM with a client connected exits 0 and closes the client, quietly" {
    start_plain_server server "$ASYNCIO_ECHO"
    start_idle_client idle -q
    types idle 'before the end'
    wait_for "the echo" client_got idle 'before the end'

    kill -TERM "$SERVER_PID"

    wait_exit 5 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    run cat "$BATS_TEST_TMPDIR/server.err"
    assert_output ''
    wait_exit 5 "$idle_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of idle
    assert_output 'select_client: server closed the connection'
}
