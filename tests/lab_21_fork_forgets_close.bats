# lab_21_fork_forgets_close.bats - experiment 21: a fork server whose
# parent does not close(conn_fd) after fork().  The child echoes and exits,
# but the parent's descriptor keeps each connection open: the client never
# gets the server's FIN and waits until it is killed, the server's end stays
# in CLOSE-WAIT, held by the parent, which holds one more socket for every
# client served, and hands them all down to every later child.
# lab/fork_server, which closes, is done with the same client at once.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
BUG_SERVER=$LAB/bug_fork_noclose
FORK_SERVER=$LAB/fork_server
SCRIPT=$LAB/21-fork-forgets-close.sh

# socket_fds PID - the descriptors of PID that are sockets, one a line:
# "FD socket:[INODE]".
socket_fds() {
    local fd target
    for fd in /proc/"$1"/fd/*; do
        target=$(readlink "$fd") || continue
        if [[ $target == socket:* ]]; then
            echo "${fd##*/} $target"
        fi
    done | sort -n
}

# close_waits_of PID N - ss shows exactly N connections to the server's
# port in CLOSE-WAIT, each held by PID.
close_waits_of() {
    local conns
    conns=$(ss -Htnp state close-wait "( sport = :$PORT )")
    [[ -n $conns ]] || return $(($2 != 0))
    (($(grep -c . <<<"$conns") == $2)) || return 1
    ! grep -qv "pid=$1," <<<"$conns"
}

# no_children - the server has no child process left.
no_children() {
    ! ps -o pid= --ppid "$SERVER_PID" >/dev/null
}

# done_client NAME - an idle client that types one line, gets its echo and
# reaches the end of its input; then wait for its child to be reaped.
done_client() {
    start_idle_client "$1" -q
    types "$1" "hello from $1"
    wait_for "$1's echo" client_got "$1" "hello from $1"
    end_input "$1"
    wait_for "the child serving $1 to exit" no_children
}

@test "bug_fork_noclose: the client gets its echo, then waits for the server's close until it is killed" {
    start_plain_server bug "$BUG_SERVER"

    run --separate-stderr timeout 2 "$CLIENT" -q 127.0.0.1 "$PORT" <<<'hello'

    assert_failure 124
    assert_output 'hello'
    assert_equal "$stderr" ''
    # The child is gone; the server's end of the connection is not.
    wait_for "the child to be reaped" no_children
    wait_for "the server's end in CLOSE-WAIT, held by the parent" close_waits_of "$SERVER_PID" 1
    run cat "$SERVER_OUT"
    assert_line --index 1 --regexp '^accepted fd [0-9]+: child [0-9]+$'
    assert_equal "${#lines[@]}" 2
}

@test "bug_fork_noclose: the parent holds one more socket for every client served" {
    start_plain_server bug "$BUG_SERVER"
    run socket_fds "$SERVER_PID"
    assert_equal "${#lines[@]}" 1       # the listener

    done_client c1
    done_client c2
    done_client c3

    run socket_fds "$SERVER_PID"
    assert_equal "${#lines[@]}" 4
    fds=$(sed -n 's/^accepted fd \([0-9]*\): child [0-9]*$/\1/p' "$SERVER_OUT" | paste -sd ' ')
    assert_equal "$(printf '%s\n' "${lines[@]:1}" | cut -d ' ' -f 1 | paste -sd ' ')" "$fds"
    assert close_waits_of "$SERVER_PID" 3
    # Their input ended long ago, and all three are still waiting.
    assert is_running "$c1_PID"
    assert is_running "$c2_PID"
    assert is_running "$c3_PID"
}

@test "bug_fork_noclose: each new child inherits the sockets of the clients before it" {
    start_plain_server bug "$BUG_SERVER"
    done_client c1
    first=$(socket_fds "$SERVER_PID" | tail -n 1)

    start_idle_client c2 -q
    types c2 'hello from c2'
    wait_for "c2's echo" client_got c2 'hello from c2'
    child=$(ps -o pid= --ppid "$SERVER_PID" | tr -d ' ')
    BG_PIDS+=("$child")

    # c2's child holds c1's socket (same fd, same inode) and its own, but
    # not the listener, which it closed.
    run socket_fds "$child"
    assert_equal "${#lines[@]}" 2
    assert_line --index 0 "$first"
    assert_line --index 1 "$(socket_fds "$SERVER_PID" | tail -n 1)"
}

@test "fork_server: the same client is done at once, and the parent keeps only its listener" {
    start_plain_server fork "$FORK_SERVER"

    run --separate-stderr timeout 2 "$CLIENT" -q 127.0.0.1 "$PORT" <<<'hello'

    assert_success
    assert_output 'hello'
    wait_for "the child to be reaped" no_children
    run socket_fds "$SERVER_PID"
    assert_equal "${#lines[@]}" 1
    assert close_waits_of "$SERVER_PID" 0
}

@test "21-fork-forgets-close.sh: clients time out against bug_fork_noclose, not against fork_server" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. The flaw: where fork_server closes the connection in the parent
== 2. lab/bug_fork_noclose, and a client that sends one line and is done
== 3. Two more clients: the parent keeps a socket for each
== 4. lab/fork_server, the same client
== What it shows"
    all=$output
    for c in c1 c2 c3; do
        assert_line "    $c | hello from $c"
        assert_line --regexp "^    \\($c: exit status 124 after 2[0-9]{3} ms\\)\$"
    done
    assert_line '    c4 | hello from c4'
    assert_line --regexp '^    \(c4: exit status 0 after [0-9]{1,3} ms\)$'
    # Step 2: the server's end CLOSE-WAIT (parent), the client's FIN-WAIT-2.
    run sed -n '/^== 2\./,/^== 3\./p' <<<"$all"
    assert_line --regexp '^    CLOSE-WAIT 0 +0 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +users:\(\("bug_fork_noclos",pid=[0-9]+,fd=[0-9]+\)\)$'
    assert_line --regexp '^    FIN-WAIT-2 0 +0 .* users:\(\("select_client",pid=[0-9]+,fd=[0-9]+\)\) *$'
    # Step 3: four sockets in the parent, three CLOSE-WAITs after the clients left.
    run sed -n '/^== 3\./,/^== 4\./p' <<<"$all"
    assert_equal "$(grep -cE '^    [0-9]+ -> socket:\[[0-9]+\]$' <<<"$output")" 4
    assert_equal "$(grep -cE '^    CLOSE-WAIT .*"bug_fork_noclos"' <<<"$output")" 3
    assert_equal "$(grep -cE '^    FIN-WAIT-2 ' <<<"$output")" 3
    # Step 4: fork_server holds its listener alone; c4's end in TIME-WAIT.
    run sed -n '/^== 4\./,/^== What/p' <<<"$all"
    assert_equal "$(grep -cE '^    [0-9]+ -> socket:\[[0-9]+\]$' <<<"$output")" 1
    assert_line --regexp '^    TIME-WAIT '
    refute_line --regexp '^    CLOSE-WAIT '
}

@test "21-fork-forgets-close.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/21-fork-forgets-close.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "21-fork-forgets-close.sh: ./select_client is missing: run make first (make all lab/fork_server lab/bug_fork_noclose)"
}
