# lab/lib.sh - helpers shared by the experiment scripts lab/NN-*.sh.
# Sourced, not executed:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It offers: require_built (the "run make first" check), lab_setup and
# cleanup (a temporary directory and the PIDs to kill on exit; for the
# namespace lab netns_lab_setup, netns_cleanup and on), start_server (a
# server with its first line shown and its port read), the output
# helpers step, say, cmd, look, indent, ms_now, spawn and release (child
# processes that do not inherit our pipe ends), wait_until and wait_5s
# (poll with a deadline), says, running, listening_port (the port in
# select_server's first line), in_state and conn_gone (ss checks).  For the
# experiments on the namespace lab (lab/netns.sh): lab_privileges (root, or
# else a user namespace of our own) and the pieces it is made of,
# has_lab_caps, userns_problem and userns_exec.  The caller sets PROG (its
# name, used in messages) before calling require_built, lab_privileges or
# the wait functions.
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

# require_command COMMAND PACKAGE - exit 1 unless COMMAND is installed; the
# message names the Debian package that has it.
require_command() {
    command -v "$1" >/dev/null ||
        { echo "$PROG: '$1' not found: install $2 (apt-get install $2)" >&2; exit 1; }
}

# lab_setup - make $tmp, empty pids, servers and held, and run cleanup on
# exit.
lab_setup() {
    tmp=$(mktemp -d)
    pids=()     # every process this script starts, killed by PID on exit
    servers=()  # forking servers among them: their children are killed too
    held=()     # pipe ends this script holds: no child may inherit them
    trap cleanup EXIT
}

# cleanup - kill every PID in pids (the children of each PID in servers
# first: killing a forking server leaves its children running), wait for
# each, and remove $tmp.
cleanup() {
    local pid child
    for pid in "${servers[@]}"; do
        for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
            kill "$child" 2>/dev/null || true
        done
    done
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}

# netns_lab_setup - lab_setup for an experiment on the namespace lab: on
# exit the lab comes down too, and SIGINT or SIGTERM end the script (with
# status 130 or 143) through that same cleanup.
netns_lab_setup() {
    lab_setup
    trap netns_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# netns_cleanup - cleanup, taking the namespace lab down before $tmp goes.
netns_cleanup() {
    local dir=$tmp
    tmp=''              # cleanup removes nothing yet
    cleanup
    "$NETNS" down >/dev/null || true
    rm -rf "$dir"
}

# on HOST CMD... - run CMD on a host of the namespace lab.
on() {
    "$NETNS" exec "$@"
}

# start_server NAME COMMAND... - start a server in the background: its
# stdin on a FIFO this script holds (for select_server, its console:
# `console` is the write end), its output in $tmp/NAME.log.  Shows the
# command and the server's first line, and reads the port from it: sets
# server_pid, log, port and console.  On exit it is killed, and so are
# its children if it forks.
start_server() {
    local name=$1
    shift
    log=$tmp/$name.log
    mkfifo "$tmp/$name.console"
    cmd "$* &"
    spawn "$@" <"$tmp/$name.console" >"$log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    servers+=("$server_pid")
    exec {console}>"$tmp/$name.console"
    held+=("$console")
    wait_5s "$name's listening line" says "$log" '^listening on '
    port=$(listening_port "$log")
    head -n 1 "$log" | sed 's/^/    server | /'
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

# --- Root, or a user namespace of our own ---------------------------------
#
# Building network namespaces takes the capabilities CAP_SYS_ADMIN and
# CAP_NET_ADMIN; capturing packets takes CAP_NET_RAW.  Root has them.  An
# ordinary user gets them too, inside a user namespace of their own
# (user_namespaces(7)), where they are good for that namespace's own
# network and mount namespaces only, never for the machine's network.
# userns_exec makes one with unshare(1):
#   --user --map-current-user  we keep our own uid inside: files we create
#                 stay ours, and tcpdump, which gives up root's rights for
#                 user tcpdump's when started as uid 0, keeps its capture
#                 rights (under --map-root-user it could not even do that)
#   --keep-caps   the capabilities survive execve(2): every program we
#                 start inherits them (as ambient capabilities)
#   --net         a network namespace of our own: nothing we start ever
#                 reaches the machine's network
#   --mount       a mount namespace of our own, where a tmpfs on /run/netns
#                 (or on /run, where /run/netns does not exist) holds the
#                 names `ip netns add` makes, apart from anyone else's
# It all disappears with the last process inside it, even after kill -9.

# The exit status of a script that needs root or a user namespace and can
# have neither.
NO_USERNS_STATUS=4

# has_lab_caps - this process holds CAP_NET_ADMIN (bit 12), CAP_NET_RAW (13)
# and CAP_SYS_ADMIN (21): it is root, or in a namespace userns_exec made.
has_lab_caps() {
    local key value
    while read -r key value; do
        if [[ $key == CapEff: ]]; then
            ((16#$value >> 12 & 1 && 16#$value >> 13 & 1 && 16#$value >> 21 & 1))
            return
        fi
    done </proc/self/status
    return 1
}

# userns_problem - status 0 and no output when this user can make the
# namespaces userns_exec makes (it tries); otherwise status 1 and, on
# stdout, why not and what would allow it.  LAB_PROC_SYS (default
# /proc/sys) is where it reads the settings, so that tests can fake them.
userns_problem() {
    local sys=${LAB_PROC_SYS:-/proc/sys} err
    if ! command -v unshare >/dev/null; then
        echo "unshare is missing: install util-linux"
        return 1
    fi
    err=$(unshare --user --map-current-user --keep-caps --net --mount true 2>&1) && return 0
    if [[ $(cat "$sys/kernel/unprivileged_userns_clone" 2>/dev/null) == 0 ]]; then
        echo "this kernel lets only root create user namespaces" \
            "(kernel.unprivileged_userns_clone = 0);"
        echo "the administrator can allow them: sysctl -w kernel.unprivileged_userns_clone=1"
    elif [[ $(cat "$sys/user/max_user_namespaces" 2>/dev/null) == 0 ]]; then
        echo "user namespaces are switched off (user.max_user_namespaces = 0);"
        echo "the administrator can allow them: sysctl -w user.max_user_namespaces=10000"
    elif [[ $(cat "$sys/kernel/apparmor_restrict_unprivileged_userns" 2>/dev/null) == 1 ]]; then
        echo "AppArmor takes the rights away inside user namespaces" \
            "(kernel.apparmor_restrict_unprivileged_userns = 1);"
        echo "the administrator can allow them:" \
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    else
        echo "unshare failed: ${err:-no message}"
        echo "(is this a container that forbids unshare(2)? ask the administrator)"
    fi
    return 1
}

# userns_exec COMMAND... - replace this process by COMMAND, run inside new
# user, network and mount namespaces with a private /run/netns (see
# above).  No checks: userns_problem says whether it can work.
userns_exec() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    exec unshare --user --map-current-user --keep-caps --net --mount -- "$BASH" -c '
        if [[ -d /run/netns ]]; then dir=/run/netns; else dir=/run; fi
        mount -t tmpfs -o mode=0755 lab-netns "$dir" || exit 1
        exec "$@"' userns_exec "$@"
}

# lab_privileges SCRIPT [ARG...] - return when this process may build the
# lab (root, or already in our user namespace).  Otherwise run SCRIPT
# ARG... again, from the start, in a user namespace of its own, with the
# same PID (never returns); where the user cannot have one, say why and
# what to do, and exit NO_USERNS_STATUS.
lab_privileges() {
    local why line
    has_lab_caps && return 0
    if ! why=$(userns_problem); then
        {
            echo "$PROG: needs root, or a user namespace of its own, and this user cannot create one:"
            while IFS= read -r line; do echo "  $line"; done <<<"$why"
            echo "Run it as root instead: sudo $*"
        } >&2
        exit "$NO_USERNS_STATUS"
    fi
    echo "($PROG: not root, so it runs in a user namespace of its own)"
    userns_exec "$BASH" "$@"
}
