# lab/lib.sh - helpers shared by the experiment scripts lab/01-*.sh ...
# lab/11-*.sh.  Sourced, not executed:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It offers: require_built (the "run make first" check), lab_setup and
# cleanup (a temporary directory and the PIDs to kill on exit), the output
# helpers step, say, cmd, look, indent, ms_now, spawn and release (child
# processes that do not inherit our pipe ends), wait_until and wait_5s
# (poll with a deadline), says, running, listening_port (the port in
# select_server's first line), in_state and conn_gone (ss checks).  The caller sets PROG (its name, used in
# messages) before calling require_built or the wait functions.
# shellcheck shell=bash

# require_built HINT FILE... - exit 1 unless each ./FILE is executable;
# the message asks to run make (and names HINT, when not empty).
require_built() {
    local hint=$1 f
    shift
    for f in "$@"; do
        if [[ ! -x $f ]]; then
            echo "$PROG: ./$f is missing: run make first${hint:+ ($hint)}" >&2
            exit 1
        fi
    done
}

# lab_setup - make $tmp, empty pids and held, and run cleanup on exit.
lab_setup() {
    tmp=$(mktemp -d)
    pids=()     # every process this script starts, killed by PID on exit
    held=()     # pipe ends this script holds: no child may inherit them
    trap cleanup EXIT
}

# cleanup - kill every PID in pids, wait for it, and remove $tmp.
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold='' dim='' off=''; fi
# step TEXT... - a bold heading, after an empty line.
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
# say TEXT... - one line of text.
say() { printf '%s\n' "$*"; }
# cmd TEXT... - a command line as the reader would type it, dimmed.
cmd() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }
# look TEXT... - a bold hint at what to look at.
look() { printf '%s>> look: %s%s\n' "$bold" "$*" "$off"; }
# indent - copy stdin to stdout, four spaces in.
indent() { sed 's/^/    /'; }
# ms_now - the time in milliseconds since the epoch.
ms_now() { date +%s%3N; }

# spawn COMMAND... - exec COMMAND without the pipe ends this script holds
# (run it in the background: `spawn CMD <in >out 2>err &`).
spawn() {
    local fd
    for fd in "${held[@]}"; do
        exec {fd}>&-
    done
    exec "$@"
}

# release FD - close FD, a pipe end this script holds, and forget it.
release() {
    local fd=$1 i
    exec {fd}>&-
    for i in "${!held[@]}"; do
        [[ ${held[i]} != "$fd" ]] || unset 'held[i]'
    done
}

# poll SECONDS COMMAND... - run COMMAND every 20 ms until it succeeds
# (return 0) or SECONDS have gone by (return 1).
poll() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 50; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.02
    done
    return 1
}

# wait_until SECONDS WHAT COMMAND... - poll COMMAND every 20 ms; give up
# (exit 1, naming WHAT) after SECONDS.
wait_until() {
    local limit=$1 what=$2
    shift 2
    poll "$limit" "$@" && return 0
    echo "$PROG: gave up waiting for $what" >&2
    exit 1
}

# wait_5s WHAT COMMAND... - poll COMMAND every 20 ms; give up after 5 s.
wait_5s() {
    local what=$1
    shift
    poll 5 "$@" && return 0
    echo "$PROG: gave up after 5 s waiting for $what" >&2
    exit 1
}

# says FILE ERE - a line of FILE matches.
says() { grep -qE -- "$2" "$1"; }

# running PID - the process exists and is not a zombie.
running() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

# listening_port LOG - the port in select_server's first line, in LOG:
# "listening on ADDR:PORT (...)".
listening_port() {
    sed -n '1s/^listening on .*:\([0-9][0-9]*\) (.*$/\1/p' "$1"
}

# in_state STATE FILTER - ss sees a connection in STATE matching FILTER.
in_state() {
    [[ -n $(ss -Htan state "$1" "$2") ]]
}

# conn_gone FILTER - ss sees no connection matching FILTER, in any state.
conn_gone() {
    [[ -z $(ss -Htan "$1") ]]
}
