# lab_19_eintr.bats - experiment 19: a handled signal interrupts a blocked
# call, which fails with EINTR.  lab/bug_eintr, a fork server whose
# SIGCHLD handler has no SA_RESTART, exits when accept() fails that way:
# the first client to leave ends it, and so does kill -CHLD.  With -r
# (SA_RESTART) the kernel restarts accept() and it serves on.
# lab/fork_server, the same server with the retry, survives both.
# select_server's select() is never restarted: its loop calls it again.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
BUG_SERVER=$LAB/bug_eintr
FORK_SERVER=$LAB/fork_server
SCRIPT=$LAB/19-eintr.sh

# asleep_in PID ERE - PID sleeps in a kernel function (wchan) matching ERE;
# where the kernel does not say, any sleep will do.
asleep_in() {
    local state wchan
    read -r state wchan < <(ps -o stat=,wchan:40= -p "$1") || return 1
    [[ $state == S* && ($wchan =~ $2 || $wchan =~ ^(-|0|\?)$) ]]
}

# in_accept - the server sleeps in accept(), where a signal interrupts it.
in_accept() {
    asleep_in "$SERVER_PID" '^inet_csk_accept$'
}

# served NAME - the idle client NAME types a line, gets its echo, and,
# once the server waits in accept() again, ends its input and exits 0.
# Its child then exits, and the server gets SIGCHLD.
served() {
    types "$1" "hello from $1"
    wait_for "$1's echo" client_got "$1" "hello from $1"
    wait_for "the server in accept()" in_accept
    end_input "$1"
    local pid=${1}_PID
    wait_exit 2 "${!pid}"
    assert_equal "$EXIT_STATUS" 0
}

# survives_sigchld NAME PROGRAM [ARGS...] - start PROGRAM; a client's exit
# (its child's SIGCHLD), then a kill -CHLD, interrupt its accept(); it must
# still serve a new client, and say nothing on stderr.
survives_sigchld() {
    local name=$1
    start_plain_server "$@"
    start_idle_client a -q
    served a
    wait_for "the server in accept()" in_accept
    kill -CHLD "$SERVER_PID"
    wait_for "the server in accept()" in_accept

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<'still here?'

    assert_success
    assert_output 'still here?'
    assert is_running "$SERVER_PID"
    run cat "$BATS_TEST_TMPDIR/$name.err"
    assert_output ''
}

@test "bug_eintr: the first client to leave ends the server with accept: Interrupted system call" {
    start_plain_server bug "$BUG_SERVER"
    start_idle_client a -q

    served a

    wait_exit 2 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 3
    run cat "$BATS_TEST_TMPDIR/bug.err"
    assert_output "bug_eintr: accept: Interrupted system call"
    run cat "$SERVER_OUT"
    assert_output --regexp "^listening on 127\.0\.0\.1:$PORT \(tcp\)
accepted fd [0-9]+: child [0-9]+\$"
}

@test "bug_eintr: kill -CHLD alone, with no child at all, ends it the same way" {
    start_plain_server bug "$BUG_SERVER"
    wait_for "the server in accept()" in_accept

    kill -CHLD "$SERVER_PID"

    wait_exit 2 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 3
    run cat "$BATS_TEST_TMPDIR/bug.err"
    assert_output "bug_eintr: accept: Interrupted system call"
}

@test "bug_eintr -r: with SA_RESTART the kernel restarts accept(), and it serves on" {
    survives_sigchld bug "$BUG_SERVER" -r
}

@test "fork_server: a child's exit and kill -CHLD interrupt accept(), and it calls it again" {
    survives_sigchld fork "$FORK_SERVER"
}

@test "select_server: a handled signal makes select() fail with EINTR, and the loop calls it again" {
    start_server -b 127.0.0.1 --trace
    wait_for "the server asleep in select()" asleep_in "$SERVER_PID" '^(do_select|poll_schedule_timeout)'

    kill -CONT "$SERVER_PID"

    wait_for "a select() result" server_says '^-> '
    wait_for "the next select() call" says_times 3 '^select\('
    # The call interrupted, the same call again, woken by the self-pipe
    # (fd 3), and asleep once more.
    run tail -n +2 "$SERVER_OUT"
    assert_equal "${#lines[@]}" 4
    assert_line --index 0 --regexp '^select\(nfds=[0-9]+, read=\{[0-9,-]+\}, write=\{\}, timeout=none\)$'
    assert_equal "${lines[1]}" "${lines[0]}"
    assert_line --index 2 --regexp '^-> 1 ready: read=\{3\} write=\{\} after [0-9.]+s$'
    assert_equal "${lines[3]}" "${lines[0]}"
    assert is_running "$SERVER_PID"
}

@test "19-eintr.sh: bug_eintr dies of EINTR, -r and fork_server live on, select_server loops again" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    all=$output
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. The flaw, in lab/bug_eintr.c
== 2. bug_eintr serves a client; the client leaves, and the server dies
== 3. No client at all: kill -CHLD does the same
== 4. The same, with SA_RESTART (bug_eintr -r)
== 5. lab/fork_server: the same handler without SA_RESTART, and a retry
== 6. select_server: select() is never restarted, so the loop calls it again
== What it shows"
    # Steps 2 and 3: the server dies, twice, of EINTR.
    assert_equal "$(grep -c '^    server | bug_eintr: accept: Interrupted system call$' <<<"$output")" 2
    assert_equal "$(grep -c '^    (bug_eintr exited with status 3)$' <<<"$output")" 2
    # Steps 2, 4 and 5: every client is served, four in all.
    assert_equal "$(grep -c '^    client | hello$' <<<"$output")" 4
    assert_equal "$(grep -c '^    (select_client exited with status 0)$' <<<"$output")" 4
    # Step 6: the same select() twice, then its result: fd 3 (the
    # self-pipe) readable.
    run grep -A 3 '^\$ kill -CONT' <<<"$all"
    assert_line --index 1 --regexp '^    server \| select\(nfds=[0-9]+, .*, timeout=none\)$'
    assert_equal "${lines[2]}" "${lines[1]}"
    assert_line --index 3 --regexp '^    server \| -> 1 ready: read=\{3\} write=\{\} '
    run sed -n '/^== 6\./,/^== What/p' <<<"$all"
    # strace's lines, where it could attach (Yama's ptrace_scope 1 allows
    # that only to its own descendants; the script then says so).
    if command -v strace >/dev/null && ! grep -q '^    (strace ' <<<"$all"; then
        assert_line --regexp '^    strace \| p?select6?\(.*= \? ERESTARTNOHAND \(To be restarted if no handler\)$'
        assert_line --regexp '^    strace \| rt_sigreturn\(.*= -1 EINTR \(Interrupted system call\)$'
        run sed -n '/^== 3\./,/^== 4\./p' <<<"$all"
        assert_line --regexp '^    strace \| accept\(.*= \? ERESTARTSYS \(To be restarted if SA_RESTART is set\)$'
        assert_line --regexp '^    strace \| --- SIGCHLD \{si_signo=SIGCHLD, si_code=SI_USER, '
        assert_line --regexp '^    strace \| rt_sigreturn\(.*= -1 EINTR \(Interrupted system call\)$'
        # With SA_RESTART: the same signal, and accept() called again.
        run sed -n '/^== 4\./,/^== 5\./p' <<<"$all"
        assert_line --regexp '^    strace \| accept\(.*= \? ERESTARTSYS \(To be restarted if SA_RESTART is set\)$'
        assert_line --regexp '^    strace \| accept\(3, NULL, NULL <detached \.\.\.>$'
        refute_line --partial 'EINTR'
    fi
}

@test "bug_eintr: -h names -r; a bad option, a missing or bad port is one line, exit 1" {
    run --separate-stderr "$BUG_SERVER" -h
    assert_success
    assert_output "usage: bug_eintr [-r] [-p PORT]   (default 9877, 0 = kernel chooses; -r: SA_RESTART)"
    run --separate-stderr "$BUG_SERVER" --restart
    assert_failure 1
    assert_equal "$stderr" "bug_eintr: unexpected argument '--restart' (usage: bug_eintr [-r] [-p PORT])"
    run --separate-stderr "$BUG_SERVER" -r -p
    assert_failure 1
    assert_equal "$stderr" "bug_eintr: -p needs a port (0-65535)"
    run --separate-stderr "$BUG_SERVER" -p 65536 -r
    assert_failure 1
    assert_equal "$stderr" "bug_eintr: invalid port '65536' (expected 0-65535)"
}

@test "19-eintr.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/19-eintr.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "19-eintr.sh: ./select_server is missing: run make first (make all lab/fork_server lab/bug_eintr)"
}
