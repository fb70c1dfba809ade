# lab_03_address_in_use.bats - experiment 3: "Address already in use".  A
# second server on a listening port fails to bind (EADDRINUSE, exit 2, a
# hint).  A server that quits with clients connected closes first, so its
# connections wait in TIME-WAIT on its port: restarting at once fails with
# --no-reuseaddr and works with SO_REUSEADDR, the default.  When the
# clients close first, TIME-WAIT is theirs and the port is free for any
# restart.

load test_helper

SCRIPT=$BATS_TEST_DIRNAME/../lab/03-address-in-use.sh

# conn_states NAME - "STATE" for each end of NAME's connection that the
# kernel still has, client end first: e.g. "TIME-WAIT(server)".  Other
# connections to the port (older ones, in TIME-WAIT) do not count.
conn_states() {
    local peer=${1}_PEER cport
    cport=${!peer##*:}
    ss -Htan "( sport = :$cport and dport = :$PORT )" | awk '{ print $1 "(client)" }'
    ss -Htan "( sport = :$PORT and dport = :$cport )" | awk '{ print $1 "(server)" }'
}

# states_are NAME EXPECTED - conn_states NAME is exactly EXPECTED.
states_are() {
    [[ $(conn_states "$1") == "$2" ]]
}

# listening - a socket listens on the server's port.
listening() {
    [[ -n $(ss -Htan state listening "( sport = :$PORT )") ]]
}

# quit_server - type quit, and wait for a clean exit.
quit_server() {
    console quit
    wait_exit 5 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
}

@test "03-address-in-use.sh: busy port and TIME-WAIT give EADDRINUSE; SO_REUSEADDR restarts, and so does any server after clients close first" {
    run --separate-stderr timeout 30 "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    port=$(sed -n 's/^  listening on 0\.0\.0\.0:\([0-9]*\) (tcp, udp)$/\1/p' <<<"$output" | head -n 1)
    [[ $port =~ ^[0-9]+$ ]]
    # The second server and the restart without SO_REUSEADDR: both refused.
    assert_equal "$(grep -cx "  select_server: bind 0.0.0.0:$port: Address already in use" <<<"$output")" 2
    assert_line "  hint: another server is using this port (see: ss -tulnp), or one run with --no-reuseaddr left connections in TIME_WAIT; stop it, wait, or choose another port with -p"
    assert_line "  hint: another server is using this port, or connections of a previous one are in TIME_WAIT (see: netstat -nat); wait, choose another port, or drop --no-reuseaddr"
    assert_equal "$(grep -cx '  (exit status 2)' <<<"$output")" 2
    # The quit left the server ends in TIME-WAIT; the default restart then
    # listened on the same port beside them.
    assert_line "  \$ quit          (typed on the server's console; exit status 0)"
    assert_line --regexp "^  TIME-WAIT +0 +0 +127\\.0\\.0\\.1:$port +127\\.0\\.0\\.1:[0-9]+\$"
    assert_equal "$(grep -cx "  listening on 0.0.0.0:$port (tcp, udp)" <<<"$output")" 2
    # The contrast: the client's TIME-WAIT, and a --no-reuseaddr restart.
    port3=$(sed -n 's/^  \$ \.\/select_server -p \([0-9]*\) -b 0\.0\.0\.0 --no-reuseaddr$/\1/p' <<<"$output" | tail -n 1)
    [[ $port3 =~ ^[0-9]+$ && $port3 != "$port" ]]
    assert_line --regexp "^  TIME-WAIT +0 +0 +127\\.0\\.0\\.1:[0-9]+ +127\\.0\\.0\\.1:$port3\$"
    assert_equal "$(grep -cx "  listening on 0.0.0.0:$port3 (tcp, udp)" <<<"$output")" 2
}

@test "03-address-in-use.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/03-address-in-use.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "03-address-in-use.sh: ./select_server is missing: run make first"
}

@test "quit with clients connected: the server closes first, its ends wait in TIME-WAIT on its port" {
    start_server --bind 0.0.0.0
    connect_idle a
    connect_idle b

    quit_server
    # Only the server's ends are left, in TIME-WAIT; nothing listens.
    wait_for "a: the server end in TIME-WAIT" states_are a "TIME-WAIT(server)"
    wait_for "b: the server end in TIME-WAIT" states_are b "TIME-WAIT(server)"
    refute listening
    wait_exit 5 "$a_PID"
    assert_equal "$EXIT_STATUS" 3           # "server closed the connection"
}

@test "a restart at once during TIME-WAIT: --no-reuseaddr fails with EADDRINUSE, the default binds" {
    start_server --bind 0.0.0.0
    connect_idle a
    connect_idle b
    quit_server
    wait_for "a: the server end in TIME-WAIT" states_are a "TIME-WAIT(server)"
    wait_for "b: the server end in TIME-WAIT" states_are b "TIME-WAIT(server)"

    run --separate-stderr timeout 5 "$SERVER" -p "$PORT" --bind 0.0.0.0 --no-reuseaddr </dev/null
    assert_failure 2
    assert_output ''
    assert_equal "$stderr" "select_server: bind 0.0.0.0:$PORT: Address already in use
hint: another server is using this port, or connections of a previous one are in TIME_WAIT (see: netstat -nat); wait, choose another port, or drop --no-reuseaddr"

    # start_server passes -p 0 first; the later -p wins.
    old_port=$PORT
    start_server --bind 0.0.0.0 -p "$old_port"
    assert_equal "$PORT" "$old_port"
    run head -n 1 "$SERVER_OUT"
    assert_output "listening on 0.0.0.0:$PORT (tcp, udp)"
    assert states_are a "TIME-WAIT(server)"  # still there, beside the new listener
    assert states_are b "TIME-WAIT(server)"
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<'back again'
    assert_success
    assert_output "back again"
}

@test "when the client closes first, TIME-WAIT is the client's: even --no-reuseaddr restarts on the port" {
    start_server --bind 0.0.0.0
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<'hello'
    assert_success
    accepted_as c
    wait_for "the client end in TIME-WAIT, the server end closed" \
        states_are c "TIME-WAIT(client)"
    quit_server
    run ss -Htan "( sport = :$PORT )"
    assert_output ''                        # nothing at all left on the port

    old_port=$PORT
    start_server --bind 0.0.0.0 -p "$old_port" --no-reuseaddr
    assert_equal "$PORT" "$old_port"
    run cat "$SERVER_ERR"
    assert_output ''
}
