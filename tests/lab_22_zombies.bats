# lab_22_zombies.bats - experiment 22: a fork server that never calls
# waitpid() keeps every finished child as a zombie (state Z, <defunct>):
# no memory, no descriptors, just a PID and an exit status nobody
# collects.  They go only when the parent exits and init adopts and reaps
# them.  Started with SIGCHLD set to SIG_IGN, the same program leaves no
# zombie (POSIX.1-2001, Linux 2.6 on).  fork_server's reaper is tested in
# bench_servers.bats; the script shows it side by side.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
BUG_SERVER=$LAB/bug_fork_nowait
SCRIPT=$LAB/22-zombies.sh

# serve_three - three clients, one after the other, each echoed and gone.
serve_three() {
    local client
    for client in 'client 1' 'client 2' 'client 3'; do
        run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<"$client"
        assert_success
        assert_output "$client"
    done
}

# children_in STATE N - the server has exactly N children, all in STATE
# (a ps STAT prefix such as Z).
children_in() {
    local stats
    stats=$(ps -o stat= --ppid "$SERVER_PID") || stats=
    (($(grep -c . <<<"$stats") == $2)) || return 1
    ! grep -qv "^$1" <<<"$stats"
}

# no_children - the server has no child at all, zombie or not.
no_children() {
    ! ps -o pid= --ppid "$SERVER_PID" >/dev/null
}

# only_listener_left - no connection is left on the server's side of its
# port, in any state: only the listening socket.
only_listener_left() {
    ! ss -Htan "( sport = :$PORT )" | grep -qv '^LISTEN'
}

# all_gone PID... - none of these processes exists, not even as a zombie.
all_gone() {
    local pid
    for pid; do
        [[ ! -e /proc/$pid ]] || return 1
    done
}

@test "bug_fork_nowait: each client served leaves a zombie child, <defunct>, holding no connection" {
    start_plain_server bug "$BUG_SERVER"

    serve_three

    wait_for "three zombie children" children_in Z 3
    run ps -o comm=,args= --ppid "$SERVER_PID"
    assert_equal "${#lines[@]}" 3
    for line in "${lines[@]}"; do
        assert_equal "$line" "bug_fork_nowait [bug_fork_nowait] <defunct>"
    done
    # The PIDs in ps are the children the server logged, one per client.
    logged_pids=$(sed -n 's/^accepted fd [0-9]*: child \([0-9]*\)$/\1/p' "$SERVER_OUT" | sort -n)
    assert_equal "$(ps -o pid= --ppid "$SERVER_PID" | tr -d ' ' | sort -n)" "$logged_pids"
    for pid in $logged_pids; do
        assert_equal "$(ps -o rss= -p "$pid" | tr -d ' ')" 0
    done
    # Their sockets are closed: the server's side has only its listener.
    wait_for "the children's connections to close" only_listener_left
    assert is_running "$SERVER_PID"
}

@test "bug_fork_nowait: the zombies go only when their parent exits" {
    start_plain_server bug "$BUG_SERVER"
    serve_three
    wait_for "three zombie children" children_in Z 3
    zombies=$(ps -o pid= --ppid "$SERVER_PID")

    kill -TERM "$SERVER_PID"
    wait_exit 5 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0

    # init (or a subreaper) adopts the orphans and waits for them.
    # shellcheck disable=SC2086  # one PID per word
    wait_for "the orphaned zombies to be reaped" all_gone $zombies
}

@test "bug_fork_nowait started with SIGCHLD ignored leaves no zombie" {
    start_plain_server bug env --ignore-signal=CHLD "$BUG_SERVER"
    assert_equal "$(ps -o comm= -p "$SERVER_PID")" bug_fork_nowait

    serve_three

    wait_for "every child to be gone" no_children
    run grep -c '^accepted fd [0-9]*: child [0-9]*$' "$SERVER_OUT"
    assert_output 3
    assert is_running "$SERVER_PID"
}

@test "22-zombies.sh: three zombies under bug_fork_nowait, none under fork_server or with SIGCHLD ignored" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. The flaw: what fork_server has and bug_fork_nowait has not
== 2. lab/bug_fork_nowait serves three clients, one after the other
== 3. The parent exits: who collects the zombies?
== 4. lab/fork_server, the same three clients
== 5. bug_fork_nowait again, started with SIGCHLD ignored
== What it shows"
    all=$output
    assert_equal "$(grep -cE '^ +[0-9]+ +[0-9]+ Z +0 \[bug_fork_nowait\] <defunct>$' <<<"$output")" 3
    assert_line --regexp '^    State:'$'\t''Z \(zombie\)$'
    # Step 3: the zombies' PIDs are gone: ps prints only its header.
    run sed -n '/^== 3\./,/^== 4\./p' <<<"$all"
    assert_line --index 2 --regexp '^\$ ps -o pid,ppid,stat,cmd -p [0-9]+,[0-9]+,[0-9]+$'
    assert_line --index 3 '      PID  PPID STAT CMD'
    assert_line --index 4 --regexp '^>> look: gone'
    # Steps 4 and 5: the parent alone in each ps.
    for n in 4 5; do
        run sed -n "/^== $n\\./,/^== /p" <<<"$all"
        assert_equal "$(grep -cE '^ +[0-9]+ +[0-9]+ [A-Z]' <<<"$output")" 1
        refute_line --partial '<defunct>'
    done
}

@test "22-zombies.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/22-zombies.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "22-zombies.sh: ./select_client is missing: run make first (make all lab/fork_server lab/bug_fork_nowait)"
}
