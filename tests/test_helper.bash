# test_helper.bash - shared setup for the select lab scenarios.
#
# Every test starts its own server on port 0 (so tests never clash), reads
# the real port from the server's first line, waits for conditions with a
# deadline instead of sleeping, and kills what it started by PID in teardown.
# Clients mostly run in the foreground under `timeout "$WAIT_LIMIT"`: a
# server that stops answering then fails the test (status 124) instead of
# hanging bats.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

# The programs under test; `make sanitize` points this at the ASan build.
BIN=${SELECT_LAB_BIN:-$BATS_TEST_DIRNAME/..}
SERVER=$BIN/select_server
CLIENT=$BIN/select_client
PEER=$BIN/tests/testpeer
# The namespace lab's script (lab_*.bats and lab_netns.bats).
NETNS=$BATS_TEST_DIRNAME/../lab/netns.sh

# Seconds a wait_for gives its condition before the test fails.
WAIT_LIMIT=${WAIT_LIMIT:-10}

# Scratch files for what a test sends and what comes back.
IN=$BATS_TEST_TMPDIR/in
OUT=$BATS_TEST_TMPDIR/out

# PIDs of every background process a test starts; teardown kills them.
BG_PIDS=()

# Pipe ends this shell holds open (the console, idle clients' stdin).  No
# background process may inherit them: a copy in a client started later
# would keep the pipe open, so closing ours would give its reader no EOF.
HELD_FDS=()

# --- Waiting -------------------------------------------------------------

# now_us - the wall clock in microseconds (bash's EPOCHREALTIME; its
# decimal separator follows the locale).
now_us() {
    echo "${EPOCHREALTIME/[.,]/}"
}

# wait_for DESCRIPTION COMMAND... - run COMMAND every 20 ms until it
# succeeds; fail the test, naming DESCRIPTION and showing what COMMAND
# printed on its last try, once WAIT_LIMIT seconds have passed (by the
# clock: a slow COMMAND does not stretch the limit).  COMMAND runs in this
# shell and is run again on every try, but its arguments were expanded
# once: a condition that must be recomputed (a count, a file's contents)
# belongs in a function, such as says_times, not in a "$(...)" argument.
wait_for() {
    local what=$1 deadline last=${BATS_TEST_TMPDIR:-$BATS_RUN_TMPDIR}/wait_for.last
    shift
    deadline=$(($(now_us) + WAIT_LIMIT * 1000000))
    until "$@" >"$last" 2>&1; do
        if (($(now_us) >= deadline)); then
            echo "timed out after ${WAIT_LIMIT}s waiting for: $what" >&2
            if [[ -s $last ]]; then
                echo "its last try printed:" >&2
                cat "$last" >&2
            fi
            return 1
        fi
        sleep 0.02
    done
}

# wait_exit SECONDS PID - wait for PID (a child of this shell) to exit and
# set EXIT_STATUS to its status.  Fails if it still runs after SECONDS.
wait_exit() {
    local limit=$1 pid=$2 deadline
    deadline=$(($(now_us) + limit * 1000000))
    while is_running "$pid"; do
        if (($(now_us) >= deadline)); then
            echo "process $pid still running after ${limit}s" >&2
            return 1
        fi
        sleep 0.02
    done
    EXIT_STATUS=0
    wait "$pid" || EXIT_STATUS=$?
}

# --- Starting processes --------------------------------------------------

# spawn COMMAND... - close every fd in HELD_FDS, then exec COMMAND.  Run it
# in the background (`spawn CMD <in >out 2>err 3>&- &`): the child gives up
# the test's pipe ends, the test keeps them.
spawn() {
    local fd
    for fd in "${HELD_FDS[@]}"; do
        exec {fd}>&-
    done
    exec "$@"
}

# hold FD - remember that this shell holds FD, so spawn keeps it from children.
hold() {
    HELD_FDS+=("$1")
}

# release FD - close FD and forget it.
release() {
    local fd=$1 i
    exec {fd}>&-
    for i in "${!HELD_FDS[@]}"; do
        if [[ ${HELD_FDS[i]} == "$fd" ]]; then
            unset 'HELD_FDS[i]'
        fi
    done
}

# start_server [OPTIONS...] - start select_server on port 0 with its console
# on a FIFO.  Sets SERVER_PID, PORT, SERVER_OUT, SERVER_ERR; `console CMD`
# types a command.  3>&- keeps bats' own fd 3 out of the server, or bats
# would wait for the server to exit before reporting.  With SERVER_FD_LIMIT
# set, the server alone runs with that soft RLIMIT_NOFILE.  SERVER_PREFIX
# is a command to run it under: (taskset -c 0) pins it to one CPU, as on a
# one-CPU machine; ("${IN_NETNS[@]}") runs it in the test's own network
# namespace (own_netns).
SERVER_PREFIX=()
IN_NETNS=()
start_server() {
    local console=$BATS_TEST_TMPDIR/console
    SERVER_OUT=$BATS_TEST_TMPDIR/server.out
    SERVER_ERR=$BATS_TEST_TMPDIR/server.err
    rm -f "$console"
    mkfifo "$console"
    (
        if [[ -n ${SERVER_FD_LIMIT-} ]]; then
            ulimit -S -n "$SERVER_FD_LIMIT"
        fi
        spawn "${SERVER_PREFIX[@]}" "$SERVER" -p 0 "$@"
    ) <"$console" >"$SERVER_OUT" 2>"$SERVER_ERR" 3>&- &
    SERVER_PID=$!
    BG_PIDS+=("$SERVER_PID")
    exec {CONSOLE_FD}>"$console"
    hold "$CONSOLE_FD"
    wait_for "the server's listening line" grep -q '^listening on ' "$SERVER_OUT"
    PORT=$(sed -n '1s/^listening on .*:\([0-9][0-9]*\) (.*$/\1/p' "$SERVER_OUT")
    [[ $PORT =~ ^[0-9]+$ ]]
}

# start_server_with_fd_limit LIMIT [OPTIONS...] - start_server, but with the
# soft RLIMIT_NOFILE lowered to LIMIT for the server alone.
start_server_with_fd_limit() {
    SERVER_FD_LIMIT=$1 start_server "${@:2}"
}

# start_plain_server NAME PROGRAM [ARGS...] - one of the lab's or the
# benchmark's other servers (they listen on 127.0.0.1 only) on port 0, its
# output in NAME.out and NAME.err: sets SERVER_PID, SERVER_OUT (so
# server_says and wait_accepts read its log) and PORT, from its first line.
start_plain_server() {
    local name=$1
    shift
    SERVER_OUT=$BATS_TEST_TMPDIR/$name.out
    start_bg "$BATS_TEST_TMPDIR/$name" "$@" -p 0
    SERVER_PID=$BG_PID
    wait_for "$name's listening line" server_says '^listening on '
    PORT=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9][0-9]*\) (tcp)$/\1/p' "$SERVER_OUT")
    [[ $PORT =~ ^[0-9]+$ ]]
}

# start_bg OUTFILE COMMAND... - run COMMAND in the background, stdout and
# stderr to OUTFILE.out and OUTFILE.err; sets BG_PID.
start_bg() {
    local out=$1
    shift
    spawn "$@" >"$out.out" 2>"$out.err" 3>&- &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

# start_idle_client NAME [CLIENT OPTIONS...] - a select_client whose stdin
# stays open and silent (a FIFO nobody writes to), like a user idle at the
# keyboard.  Sets BG_PID, NAME_PID and NAME_FD (its stdin: `types NAME`
# writes there, `end_input NAME` closes it); output in stdout_of/stderr_of.
start_idle_client() {
    local name=$1 fifo=$BATS_TEST_TMPDIR/$1.in
    shift
    mkfifo "$fifo"
    spawn "$CLIENT" "$@" 127.0.0.1 "$PORT" <"$fifo" \
        >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
    # Hold the FIFO open for writing so the client's stdin never sees EOF.
    exec {IDLE_FD}>"$fifo"
    hold "$IDLE_FD"
    printf -v "${name}_FD" '%s' "$IDLE_FD"
    printf -v "${name}_PID" '%s' "$BG_PID"
}

# connect_idle NAME - an idle, quiet select_client, once the server has
# accepted it: sets NAME_PID, NAME_FD, and NAME_CFD and NAME_PEER (its fd
# and address on the server).
connect_idle() {
    local n
    n=$(count_lines '^accepted ' "$SERVER_OUT")
    start_idle_client "$1" -q
    wait_accepts $((n + 1))
    accepted_as "$1"
}

# start_flooder - a testpeer that sends for 30 s and never reads, once the
# server has accepted it: sets flood_PID, flood_CFD and flood_PEER.
start_flooder() {
    local n
    n=$(count_lines '^accepted ' "$SERVER_OUT")
    start_bg "$BATS_TEST_TMPDIR/flood" "$PEER" flood 127.0.0.1 "$PORT" 30
    flood_PID=$BG_PID
    wait_accepts $((n + 1))
    accepted_as flood
}

# --- Talking to the server and its clients -------------------------------

# console COMMAND... - type a line on the server's console.
console() {
    printf '%s\n' "$*" >&"$CONSOLE_FD"
}

# close_console - end of input on the server's console.
close_console() {
    release "$CONSOLE_FD"
}

# ask COMMAND LAST - type COMMAND and wait for the line matching LAST (an
# ERE without '/') that ends its reply; `output` and `lines` then hold what
# the server printed from the command up to that line.
ask() {
    local mark
    mark=$(wc -l <"$SERVER_OUT")
    console "$1"
    wait_for "the reply to '$1'" printed_since "$mark" "$2"
    run sed -nE "$((mark + 1)),\$ { p; /$2/q }" "$SERVER_OUT"
}

# pending_for FD - ask `list` for the bytes the server holds for the client
# on fd FD (0 once the kernel took them all); sets PENDING.  Fails if no
# client is on FD.
pending_for() {
    ask list '^\([0-9]+ clients?\)$'
    PENDING=$(awk -v fd="$1" '$1 == fd && NF == 8 { print $7; exit }' <<<"$output")
    [[ $PENDING =~ ^[0-9]+$ ]]
}

# listed_as FD STATE - a fresh `list` shows the client on FD in STATE.
listed_as() {
    ask list '^\([0-9]+ clients?\)$'
    grep -qE "^$1 .* $2\$" <<<"$output"
}

# select_calls - the select() call count in the `stats` reply in `output`.
select_calls() {
    sed -n 's/.*; select() calls: \([0-9]*\);.*/\1/p' <<<"$output"
}

# types NAME TEXT - the idle client NAME types a line.
types() {
    local fd=${1}_FD
    printf '%s\n' "$2" >&"${!fd}"
}

# end_input NAME - the idle client NAME reaches the end of its input.
end_input() {
    local fd=${1}_FD
    release "${!fd}"
}

# stdout_of NAME / stderr_of NAME - what the client NAME has printed so far.
stdout_of() {
    cat "$BATS_TEST_TMPDIR/$1.out"
}
stderr_of() {
    cat "$BATS_TEST_TMPDIR/$1.err"
}

# assert_shutdown_log REASON [NAME...] - the server's stdout ends with its
# goodbye: "shutting down (REASON)", the close of each client NAME in that
# order (by NAME_CFD and NAME_PEER), then "bye".
assert_shutdown_log() {
    local reason=$1 name cfd peer left expected
    shift
    left=$#
    expected="shutting down ($reason): closing $left client"
    ((left == 1)) || expected+=s
    for name; do
        cfd=${name}_CFD peer=${name}_PEER
        left=$((left - 1))
        expected+=$'\n'"closed fd ${!cfd} ${!peer}: shutdown (clients: $left)"
    done
    expected+=$'\n'bye
    run tail -n $(($# + 2)) "$SERVER_OUT"
    assert_output "$expected"
}

# --- Conditions (functions, so that wait_for checks afresh each try) -----

# server_says ERE - a line of the server's stdout matches.
server_says() {
    grep -qE -- "$1" "$SERVER_OUT"
}

# logged LINE - the server printed exactly this line (no regex: peer
# addresses are full of brackets and dots).
logged() {
    grep -qxF -- "$1" "$SERVER_OUT"
}

# printed_since N ERE - a line after the first N of the server's stdout matches.
printed_since() {
    tail -n "+$(($1 + 1))" "$SERVER_OUT" | grep -qE -- "$2"
}

# count_lines ERE FILE - how many lines match (0 if none).
count_lines() {
    grep -cE -- "$1" "$2" || true
}

# says_times N ERE - at least N lines of the server's stdout match ERE.
says_times() {
    (($(count_lines "$2" "$SERVER_OUT") >= $1))
}

# wait_accepts N - wait until the server has logged N accepts in all.
wait_accepts() {
    wait_for "accept number $1" says_times "$1" '^accepted '
}

# accepted_as NAME - from the newest "accepted" line: NAME_CFD and NAME_PEER.
accepted_as() {
    local line
    line=$(grep '^accepted ' "$SERVER_OUT" | tail -n 1)
    [[ $line =~ ^accepted\ (.+)\ on\ fd\ ([0-9]+)\ \(clients:\ [0-9]+\)$ ]]
    printf -v "${1}_PEER" '%s' "${BASH_REMATCH[1]}"
    printf -v "${1}_CFD" '%s' "${BASH_REMATCH[2]}"
}

# client_got NAME TEXT - the client NAME printed a line exactly TEXT.
client_got() {
    grep -qxF -- "$2" "$BATS_TEST_TMPDIR/$1.out"
}

# in_backlog - the kernel holds an established connection to the server's
# port; while the server is paused, one that nobody has accepted.
in_backlog() {
    [[ -n $(ss -Htn state established "( sport = :$PORT )") ]]
}

# --- Namespaces and users: root or not ------------------------------------

# own_netns - a network namespace of this test's own, its loopback up:
# sets IN_NETNS, the command prefix that runs a command there.  A holder
# process keeps the namespace; teardown kills it, and the namespace goes
# with it.  As root that is all; as an ordinary user the namespace belongs
# to a user namespace of its own too, where the commands run as its root
# (so they may configure it), which skips the test where the kernel
# forbids unprivileged user namespaces.
own_netns() {
    local create=(--net) enter=(--net)
    if [[ $(id -u) != 0 ]]; then
        unshare --user --map-root-user --net true 2>/dev/null ||
            skip "needs root or user namespaces (unshare --user fails here)"
        create=(--user --map-root-user --net)
        enter=(--user --preserve-credentials --net)
    fi
    start_bg "$BATS_TEST_TMPDIR/netns" unshare "${create[@]}" \
        sh -c 'echo ready; exec sleep 3600'
    wait_for "the namespace's holder" grep -qx ready "$BATS_TEST_TMPDIR/netns.out"
    IN_NETNS=(nsenter --target "$BG_PID" "${enter[@]}")
    "${IN_NETNS[@]}" ip link set lo up
}

# small_buffers_netns - own_netns, with TCP buffers of at most 64 KiB
# (loopback's are megabytes), so that what a slow client has not taken
# stays in the server, where it shows.
small_buffers_netns() {
    own_netns
    "${IN_NETNS[@]}" sysctl -qw net.ipv4.tcp_wmem="4096 16384 65536" \
        net.ipv4.tcp_rmem="4096 16384 65536"
}

# as_nobody PROGRAM - sets AS_USER, the command prefix that runs a command
# as user nobody (none when we are not root: this user is an ordinary one
# already); skips if nobody cannot run PROGRAM.
as_nobody() {
    AS_USER=()
    if [[ $(id -u) == 0 ]]; then
        command -v setpriv >/dev/null || skip "needs setpriv (util-linux) to drop root"
        AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups)
        "${AS_USER[@]}" test -x "$1" || skip "user nobody cannot run $1"
    fi
}

# without_userns PROGRAM - sets NO_USERNS, the command prefix that runs a
# command as nobody (see as_nobody) where user namespaces are switched off.
# Where they work, it imitates a machine without them (IMITATED=1): a user
# namespace of its own whose user.max_user_namespaces is 0, with every
# capability dropped; the machine's own setting is not touched.
without_userns() {
    as_nobody "$1"
    NO_USERNS=("${AS_USER[@]}")
    IMITATED=0
    if "${AS_USER[@]}" unshare --user --map-current-user --keep-caps true 2>/dev/null; then
        NO_USERNS+=(unshare --user --map-current-user --keep-caps
            bash -c 'echo 0 >/proc/sys/user/max_user_namespaces &&
                     exec setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all "$@"' -)
        IMITATED=1
    fi
}

# needs_lab - skip unless we may build the namespace lab (lab/netns.sh):
# as root, here; otherwise in a user namespace that a holder process keeps
# (teardown kills it, and every namespace made in it goes with it; as
# root, teardown takes the lab down).  Sets IN_LAB, the command prefix that
# runs a command there (empty for root), and LAB_NETNS, the command that
# runs netns.sh there.  Then it chooses this test's own prefix (from the
# test process and number, short enough for interface names), so no two
# tests, and no lab built by hand, share a namespace.
needs_lab() {
    IN_LAB=()
    if [[ $(id -u) != 0 ]]; then
        unshare --user --map-root-user --net --mount true 2>/dev/null ||
            skip "needs root or user namespaces (unshare --user fails here)"
        # Root inside the holder's user namespace (--map-root-user): what
        # nsenter starts there keeps its rights through exec.
        start_bg "$BATS_TEST_TMPDIR/holder" unshare --user --map-root-user --net --mount \
            sh -c 'mount -t tmpfs lab /run/netns 2>/dev/null || mount -t tmpfs lab /run
                   echo ready; exec sleep 600'
        wait_for "the user namespace" grep -qx ready "$BATS_TEST_TMPDIR/holder.out"
        IN_LAB=(nsenter --target "$BG_PID" --user --mount --net --preserve-credentials)
    fi
    LAB_NETNS=("${IN_LAB[@]}" "$NETNS")
    "${IN_LAB[@]}" ip netns list >/dev/null 2>&1 || skip "needs 'ip netns' (iproute2)"
    local prefix=t$(($$ % 100000))x$BATS_TEST_NUMBER
    ! "${IN_LAB[@]}" ip netns list | grep -q "^$prefix-" || fail "namespaces $prefix-* exist already"
    TEST_PREFIX=$prefix
    export LAB_NS_PREFIX=$prefix
    P=$prefix
}

# start_lab_server - select_server on lnxserver, port 0: sets SERVER_OUT
# and PORT.  netns.sh execs the server, so teardown kills it by BG_PID.
start_lab_server() {
    start_bg "$BATS_TEST_TMPDIR/server" "${LAB_NETNS[@]}" exec lnxserver "$SERVER" -p 0
    SERVER_OUT=$BATS_TEST_TMPDIR/server.out
    wait_for "the server's listening line" grep -q '^listening on ' "$SERVER_OUT"
    PORT=$(sed -n '1s/^listening on .*:\([0-9][0-9]*\) (.*$/\1/p' "$SERVER_OUT")
    [[ $PORT =~ ^[0-9]+$ ]]
}

# The namespace experiments (4, 7, 11 and 15) run once per bats file, from
# setup_file; each test then checks a part of what they printed, in RUN_DIR.

# userns_missing - this user can build no namespaces: not root, and
# unshare --user fails.
userns_missing() {
    [[ $(id -u) != 0 ]] &&
        ! unshare --user --map-current-user --keep-caps --net --mount true 2>/dev/null
}

# run_experiment_once SCRIPT [VAR=VALUE...] - from setup_file: run the lab
# script SCRIPT, for 60 s at most, with its namespaces under a prefix of
# this bats process's own (FILE_PREFIX) and VAR=VALUE in its environment.
# Its stdout, stderr, exit status and run time (ms) go to out, err, status
# and ms in RUN_DIR.
run_experiment_once() {
    local start status=0
    export FILE_PREFIX=t$(($$ % 100000))f
    start=$(now_us)
    env LAB_NS_PREFIX="$FILE_PREFIX" "${@:2}" timeout 60 "$1" \
        >"$RUN_DIR/out" 2>"$RUN_DIR/err" 3>&- || status=$?
    echo "$status" >"$RUN_DIR/status"
    echo $((($(now_us) - start) / 1000)) >"$RUN_DIR/ms"
}

# experiment_down NUMBER - from teardown_file, as root: take down what the
# experiment left, if anything (its namespaces' prefix is FILE_PREFIX
# followed by its NUMBER).
experiment_down() {
    if [[ -n ${FILE_PREFIX-} && $(id -u) == 0 ]]; then
        LAB_NS_PREFIX=$FILE_PREFIX$1 "$NETNS" down >/dev/null 2>&1 || true
    fi
}

# experiment_succeeded - skip if the experiment could not run here
# (setup_file wrote why in RUN_DIR/skip); otherwise fail unless it exited 0.
experiment_succeeded() {
    [[ ! -e $RUN_DIR/skip ]] || skip "$(cat "$RUN_DIR/skip")"
    [[ $(cat "$RUN_DIR/status") == 0 ]] ||
        fail "the experiment failed ($(cat "$RUN_DIR/status")): $(cat "$RUN_DIR/err")"
}

# --- Processes -----------------------------------------------------------

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

# ports_of tcp|udp PID - the ports ss shows PID listening on, one a line.
ports_of() {
    local kind=-lt
    [[ $1 == udp ]] && kind=-lu
    ss "${kind}npH" | awk -v pid="pid=$2," 'index($0, pid) { sub(/.*:/, "", $4); print $4 }'
}

# show_server_log - the last lines the server wrote to stdout and stderr,
# if a server was started, on stderr (bats shows them under a failure).
show_server_log() {
    local file
    for file in ${SERVER_OUT:+"$SERVER_OUT"} ${SERVER_ERR:+"$SERVER_ERR"}; do
        if [[ -s $file ]]; then
            echo "--- last lines of ${file##*/}:" >&2
            tail -n 15 "$file" >&2
        fi
    done
}

teardown() {
    local pid
    # A failed test shows the end of the server's log: what it saw last.
    if [[ -z ${BATS_TEST_COMPLETED-} ]]; then
        show_server_log
    fi
    # A terminal of terminal.bats: its tmux server, the shell and the jobs
    # in it end with the terminal.
    if [[ -n ${TMUX_SOCK-} ]]; then
        tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
        rm -rf "$TERM_DIR"
    fi
    for pid in "${BG_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # A namespace lab of the test's own (needs_lab), once nothing runs in it.
    if [[ -n ${TEST_PREFIX-} && $(id -u) == 0 ]]; then
        LAB_NS_PREFIX=$TEST_PREFIX "$NETNS" down >/dev/null 2>&1 || true
    fi
}
