# output.bats - the server's own output is I/O too.  Its stdout may be a
# FIFO or pipe that nobody reads (a pager left waiting, a log collector
# that hangs): a blocking write there would stop the select() loop, every
# client and even SIGTERM.  So the server queues its output, writes only
# what cannot block, drops and counts lines past 1 MiB, and says how many
# once its reader is back.

load test_helper

# start_server_to_fifo [OPTIONS...] - start_server, but with stdout on a
# FIFO that this shell holds open (SCREEN_FD) and does not read: the
# server's "terminal" that nobody looks at.  Sets SERVER_PID, PORT,
# SCREEN (the FIFO), SERVER_ERR; `console CMD` types a command.  With
# SERVER_USER set, the server runs as that user.
start_server_to_fifo() {
    local console=$BATS_TEST_TMPDIR/console line as_user=()
    SCREEN=$BATS_TEST_TMPDIR/screen
    SERVER_ERR=$BATS_TEST_TMPDIR/server.err
    mkfifo -m 600 "$console" "$SCREEN"
    exec {SCREEN_FD}<>"$SCREEN"
    hold "$SCREEN_FD"
    if [[ -n ${SERVER_USER-} ]]; then
        as_user=(setpriv --reuid="$SERVER_USER" --regid=nogroup --clear-groups)
    fi
    spawn "${as_user[@]}" "$SERVER" -p 0 "$@" <"$console" >"$SCREEN" \
        2>"$SERVER_ERR" 3>&- &
    SERVER_PID=$!
    BG_PIDS+=("$SERVER_PID")
    exec {CONSOLE_FD}>"$console"
    hold "$CONSOLE_FD"
    read -t "$WAIT_LIMIT" -r line <&"$SCREEN_FD"
    [[ $line =~ ^listening\ on\ .*:([0-9]+)\ \(tcp,\ udp\)$ ]]
    PORT=${BASH_REMATCH[1]}
}

# console_spam N - type `help` N times (10 lines, about 600 bytes each),
# then a word the console does not know, and wait until the server says
# so on stderr: by then it has run every help.
console_spam() {
    local i
    for ((i = 0; i < $1; i++)); do
        echo help
    done >&"$CONSOLE_FD"
    console "spam-done"
    wait_for "the console to get through the spam" grep -qF \
        "select_server: unknown command 'spam-done' (type 'help' for the list)" \
        "$SERVER_ERR"
}

# echoes TEXT - a fresh client gets TEXT echoed within 5 s.
echoes() {
    run --separate-stderr timeout 5 "$CLIENT" -q 127.0.0.1 "$PORT" <<<"$1"
    assert_success
    assert_output "$1"
}

# nobody_reads_stdout - the scenario of the first two tests.
nobody_reads_stdout() {
    start_server_to_fifo
    # 3000 helps: 1.4 MB for a FIFO that holds 64 KiB.
    console_spam 3000
    echoes "served while nobody reads the log"

    kill -TERM "$SERVER_PID"
    wait_exit 3 "$SERVER_PID"   # the grace period is 1 s
    assert_equal "$EXIT_STATUS" 0
}

@test "stdout a FIFO nobody reads: commands run, clients are served, SIGTERM ends it in the grace period" {
    nobody_reads_stdout
}

@test "as an ordinary user who cannot reopen its stdout: still never blocked by it (PIPE_BUF at a time)" {
    [[ $(id -u) == 0 ]] || skip "needs root, to run the server as nobody"
    id nobody >/dev/null 2>&1 || skip "there is no user nobody"
    setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$SERVER" ||
        skip "nobody cannot run $SERVER"
    # The FIFO is root's, mode 600: nobody cannot open it a second time.
    SERVER_USER=nobody nobody_reads_stdout
}

@test "past 1 MiB of log, lines are dropped and counted; the count is reported once output flows, and in stats" {
    local dropped helps
    start_server_to_fifo
    # 5000 helps: 50000 lines, 2.4 MB.
    console_spam 5000

    # A reader at last: the queue drains, then the notice comes.
    start_bg "$BATS_TEST_TMPDIR/reader" cat "$SCREEN"
    wait_for "the dropped-lines notice" \
        grep -qE '^\*\*\* [0-9]+ log lines dropped$' "$BATS_TEST_TMPDIR/reader.out"
    dropped=$(sed -nE 's/^\*\*\* ([0-9]+) log lines dropped$/\1/p' "$BATS_TEST_TMPDIR/reader.out")
    console stats
    wait_for "the stats line" grep -q '^clients: ' "$BATS_TEST_TMPDIR/reader.out"

    run grep '^clients: ' "$BATS_TEST_TMPDIR/reader.out"
    assert_output --regexp "; log lines dropped: $dropped; up "
    # Every help line either arrived whole or was counted: 10 a help.
    helps=$(grep -c '^  [a-z]' "$BATS_TEST_TMPDIR/reader.out")
    assert_equal "$((helps + dropped))" 50000
    # At most 1 MiB was held back (and 64 KiB in the FIFO): the rest of
    # the 2.4 MB was dropped.
    ((dropped > 20000)) || fail "only $dropped lines dropped"
    # One gap, one notice.
    run grep -c 'log lines dropped$' "$BATS_TEST_TMPDIR/reader.out"
    assert_output 1
}

@test "stdout's reader goes away (| head): one line on stderr, and the server goes on serving" {
    local fifo=$BATS_TEST_TMPDIR/screen
    mkfifo "$fifo"
    # head takes the listening line and leaves: the FIFO has no reader.
    start_bg "$BATS_TEST_TMPDIR/head" head -n 1 "$fifo"
    SERVER_OUT=$BATS_TEST_TMPDIR/head.out
    SERVER_ERR=$BATS_TEST_TMPDIR/server.err
    mkfifo "$BATS_TEST_TMPDIR/console"
    spawn "$SERVER" -p 0 <"$BATS_TEST_TMPDIR/console" >"$fifo" 2>"$SERVER_ERR" 3>&- &
    SERVER_PID=$!
    BG_PIDS+=("$SERVER_PID")
    exec {CONSOLE_FD}>"$BATS_TEST_TMPDIR/console"
    hold "$CONSOLE_FD"
    wait_for "head to print the listening line" server_says '^listening on '
    PORT=$(sed -n '1s/^listening on .*:\([0-9][0-9]*\) (.*$/\1/p' "$SERVER_OUT")

    echoes "served after the log's reader left"
    echoes "and again"
    wait_for "the note on stderr" grep -q . "$SERVER_ERR"
    run cat "$SERVER_ERR"
    assert_output "select_server: write stdout: Broken pipe (the log is discarded from now on; clients are still served)"

    console quit
    wait_exit "$WAIT_LIMIT" "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
}

@test "the server's stdout and stderr stay blocking for the shell: it writes through descriptions of its own" {
    # python3 runs after the server on the same pipe and terminal-less
    # stderr, sharing their open file descriptions, and says whether the
    # server left O_NONBLOCK set on them.
    run --separate-stderr timeout "$WAIT_LIMIT" bash -c '
        { echo quit | "$1" -p 0 2>&1
          python3 -c "import fcntl, os
for fd in (1, 2):
    print(fd, bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK))"
        } 2>&1 | cat' _ "$SERVER"
    assert_success
    assert_line --index 0 --regexp '^listening on '
    assert_line --index 1 'shutting down (quit): closing 0 clients'
    assert_line --index 2 'bye'
    assert_line --index 3 '1 False'
    assert_line --index 4 '2 False'
}
