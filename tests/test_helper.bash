# test_helper.bash - shared setup for the select lab scenarios.
#
# Every test starts its own server on port 0 (so tests never clash), reads
# the real port from the server's first line, waits for conditions with a
# deadline instead of sleeping, and kills what it started by PID in teardown.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

# The programs under test; `make sanitize` points this at the ASan build.
BIN=${SELECT_LAB_BIN:-$BATS_TEST_DIRNAME/..}
SERVER=$BIN/select_server
CLIENT=$BIN/select_client
PEER=$BIN/tests/testpeer

# Seconds a wait_for gives its condition before the test fails.
WAIT_LIMIT=${WAIT_LIMIT:-10}

# PIDs of every background process a test starts; teardown kills them.
BG_PIDS=()

# wait_for DESCRIPTION COMMAND... - run COMMAND every 20 ms until it
# succeeds; fail the test, naming DESCRIPTION, after WAIT_LIMIT seconds.
wait_for() {
    local what=$1 i
    shift
    for ((i = 0; i < WAIT_LIMIT * 50; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.02
    done
    echo "timed out after ${WAIT_LIMIT}s waiting for: $what" >&2
    return 1
}

# start_server [OPTIONS...] - start select_server on port 0 with its console
# on a FIFO.  Sets SERVER_PID, PORT, SERVER_OUT, SERVER_ERR; `console CMD`
# types a command.  3>&- keeps bats' own fd 3 out of the server, or bats
# would wait for the server to exit before reporting.
start_server() {
    SERVER_OUT=$BATS_TEST_TMPDIR/server.out
    SERVER_ERR=$BATS_TEST_TMPDIR/server.err
    rm -f "$BATS_TEST_TMPDIR/console"
    mkfifo "$BATS_TEST_TMPDIR/console"
    "$SERVER" -p 0 "$@" <"$BATS_TEST_TMPDIR/console" >"$SERVER_OUT" \
        2>"$SERVER_ERR" 3>&- &
    SERVER_PID=$!
    BG_PIDS+=("$SERVER_PID")
    exec {CONSOLE_FD}>"$BATS_TEST_TMPDIR/console"
    wait_for "the server's listening line" grep -q '^listening on ' "$SERVER_OUT"
    PORT=$(sed -n '1s/^listening on .*:\([0-9][0-9]*\) (.*$/\1/p' "$SERVER_OUT")
    [[ $PORT =~ ^[0-9]+$ ]]
}

# console COMMAND... - type a line on the server's console.
console() {
    printf '%s\n' "$*" >&"$CONSOLE_FD"
}

# close_console - end of input on the server's console.
close_console() {
    exec {CONSOLE_FD}>&-
}

# server_says PATTERN - true once a line of the server's stdout matches.
server_says() {
    grep -qE -- "$1" "$SERVER_OUT"
}

# count_lines PATTERN FILE - how many lines match (0 if none).
count_lines() {
    grep -cE -- "$1" "$2" || true
}

# start_bg OUTFILE COMMAND... - run COMMAND in the background, stdout and
# stderr to OUTFILE.out and OUTFILE.err; sets BG_PID.
start_bg() {
    local out=$1
    shift
    "$@" >"$out.out" 2>"$out.err" 3>&- &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

# start_idle_client NAME [CLIENT OPTIONS...] - a select_client whose stdin
# stays open and silent (a FIFO nobody writes to), like a user idle at the
# keyboard.  Sets BG_PID; output in $BATS_TEST_TMPDIR/NAME.out/.err.
start_idle_client() {
    local name=$1
    shift
    mkfifo "$BATS_TEST_TMPDIR/$name.in"
    "$CLIENT" "$@" 127.0.0.1 "$PORT" <"$BATS_TEST_TMPDIR/$name.in" \
        >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
    # Hold the FIFO open for writing so the client's stdin never sees EOF.
    exec {IDLE_FD}>"$BATS_TEST_TMPDIR/$name.in"
    eval "${name}_FD=$IDLE_FD"
    eval "${name}_PID=$BG_PID"
}

# is_running PID - the process exists and is not a zombie.
is_running() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

# fd_count PID - open descriptors of a process.
fd_count() {
    local fds=(/proc/"$1"/fd/*)
    echo "${#fds[@]}"
}

# wait_exit SECONDS PID - wait for PID (a child of this shell) to exit and
# set EXIT_STATUS to its status.  Fails if it still runs after SECONDS.
wait_exit() {
    local limit=$1 pid=$2 i
    for ((i = 0; i < limit * 50; i++)); do
        if ! is_running "$pid"; then
            EXIT_STATUS=0
            wait "$pid" || EXIT_STATUS=$?
            return 0
        fi
        sleep 0.02
    done
    echo "process $pid still running after ${limit}s" >&2
    return 1
}

teardown() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
