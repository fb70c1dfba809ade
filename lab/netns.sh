#!/usr/bin/env bash
# netns.sh - the lab's two-LAN network, built on one Linux machine out of
# network namespaces, so the experiments see real routing, ARP, ICMP and
# firewalls without touching the machine's own network.
#
#   lab/netns.sh up                  build the network (running it twice is fine)
#   lab/netns.sh status              hosts, addresses and routes
#   lab/netns.sh exec HOST CMD...    run CMD on lnxclient, lnxserver or router
#   lab/netns.sh break SECONDS       unplug the server LAN from the router for
#                                    SECONDS, then plug it back
#   lab/netns.sh down                remove everything `up` made
#   lab/netns.sh shell [CMD...]      a shell (or CMD) with a lab space of its
#                                    own, where an ordinary user can run the
#                                    commands above
#
# The figure: two LANs joined by a router, as in the course's classic
# picture.  Each host is a network namespace (its own interfaces, addresses,
# routes, ARP cache, firewall and TCP/UDP ports); each LAN is one veth pair,
# a virtual cable whose two ends sit in two namespaces.
#
#         lnxclient                  router                   lnxserver
#   +----------------+    +--------------------------+    +----------------+
#   |     10.10.12.2 |    | 10.10.12.1    10.10.11.1 |    | 10.10.11.2     |
#   |        PFX-cli o----o PFX-rtc          PFX-rts o----o PFX-srv        |
#   +----------------+    +--------------------------+    +----------------+
#    default route via        ip_forward = 1:             default route via
#    10.10.12.1               it forwards between         10.10.11.1
#                             its two LANs
#   \_____ LAN 10.10.12.0/24 ____/   \_____ LAN 10.10.11.0/24 _____/
#
# A packet from lnxclient to 10.10.11.2 is not on lnxclient's LAN, so it
# goes to the default gateway 10.10.12.1 (ARP finds the router's MAC); the
# router looks up 10.10.11.2, finds it on its own LAN 10.10.11.0/24, ARPs
# for it and forwards the packet.  Replies take the mirror path.
#
# Names come from LAB_NS_PREFIX (default "lab"): namespaces PFX-lnxclient,
# PFX-router and PFX-lnxserver, interfaces PFX-cli, PFX-rtc, PFX-rts and
# PFX-srv.  Tests and experiments use their own prefixes, so they never
# meet each other or a lab you built by hand.  Linux allows 15 characters
# in an interface name, hence at most 11 in the prefix.
#
# Creating namespaces needs CAP_SYS_ADMIN and CAP_NET_ADMIN: root has them.
# An ordinary user has them inside a user namespace of their own, which
# `shell` makes (lib.sh, userns_exec, says how): there the lab lives until
# the shell exits, invisible to everyone else.  Where user namespaces are
# disabled, `shell` says which setting forbids them and exits with 4.
# Needs iproute2's `ip`, `sysctl` (procps) and, for `shell`, util-linux's
# `unshare`.
set -euo pipefail

PROG=netns.sh
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PREFIX=${LAB_NS_PREFIX:-lab}

HOSTS=(lnxclient router lnxserver)
CLIENT_IF=$PREFIX-cli           # lnxclient's network card
ROUTER_CLIENT_IF=$PREFIX-rtc    # the router's port on the client LAN
ROUTER_SERVER_IF=$PREFIX-rts    # the router's port on the server LAN
SERVER_IF=$PREFIX-srv           # lnxserver's network card

CLIENT_ADDR=10.10.12.2
ROUTER_CLIENT_ADDR=10.10.12.1
ROUTER_SERVER_ADDR=10.10.11.1
SERVER_ADDR=10.10.11.2

MAX_BREAK=600                   # longest break, in seconds

usage() {
    cat <<EOF
Usage: $PROG up|down|status
       $PROG exec HOST COMMAND [ARG...]
       $PROG break SECONDS
       $PROG shell [COMMAND [ARG...]]
Build the lab's two LANs (lnxclient 10.10.12.2 -- router -- lnxserver
10.10.11.2) out of network namespaces, and take them apart again.

  up              create the namespaces, cables, addresses and routes
                  (again: only what is missing is added)
  down            remove everything up made
  status          show each host's interfaces, addresses and routes;
                  exit 3 if the lab is not (completely) up
  exec HOST CMD   run CMD inside HOST: lnxclient, lnxserver or router
  break SECONDS   take the router's port on the server LAN down for
                  SECONDS (at most $MAX_BREAK, decimals allowed), then up
                  again, even if interrupted
  shell [CMD]     start a shell (or CMD) in a private space for labs: its
                  own mount and network namespaces and, if you are not
                  root, a user namespace in which you may run the commands
                  above; every lab built in it goes when the shell exits

Namespaces are named \$LAB_NS_PREFIX-HOST (now: $PREFIX-lnxclient, ...).
Needs root, except shell; an ordinary user runs the others in a shell.
Exit status: 0 done, 1 usage or other error, 3 (status) not up, 4 not root
and no user namespace can be made here (it says why); exec and shell exit
with COMMAND's status.
EOF
}

# die MESSAGE - one line on stderr, exit 1.
die() {
    echo "$PROG: $*" >&2
    exit 1
}

# misuse MESSAGE - the mistake and the usage on stderr, exit 1.
misuse() {
    echo "$PROG: $*" >&2
    usage >&2
    exit 1
}

# ns HOST - the namespace of HOST.
ns() {
    echo "$PREFIX-$1"
}

# ns_exists HOST - the namespace of HOST exists.  (grep without -q reads
# all its input: with pipefail, an early exit could fail the writer.)
ns_exists() {
    ip netns list | awk '{ print $1 }' | grep -xF -- "$(ns "$1")" >/dev/null
}

# link_exists HOST IFNAME - HOST has an interface IFNAME.
link_exists() {
    ip -n "$(ns "$1")" link show dev "$2" >/dev/null 2>&1
}

# all_up - every namespace exists (a cheap check that `up` ran).
all_up() {
    local host
    for host in "${HOSTS[@]}"; do
        ns_exists "$host" || return 1
    done
}

need_up() {
    all_up || die "the lab (prefix $PREFIX) is not up: run '$0 up' first"
}

# --- up -------------------------------------------------------------------

# lan HOST HOST_IF HOST_ADDR ROUTER_IF ROUTER_ADDR - one LAN: a veth cable
# from HOST to the router, an address on each end (/24: the whole LAN is
# reachable directly), both ends up, and HOST's default route via the router.
lan() {
    local host=$1 host_if=$2 host_addr=$3 router_if=$4 router_addr=$5
    # Each end is created straight inside its namespace, so these names never
    # appear among the machine's own interfaces.  Deleting either end (or
    # either namespace) destroys the pair, so one end tells about both.
    if ! link_exists router "$router_if"; then
        ip link add "$router_if" netns "$(ns router)" type veth \
            peer name "$host_if" netns "$(ns "$host")"
    fi
    ip -n "$(ns router)" addr replace "$router_addr/24" dev "$router_if"
    ip -n "$(ns "$host")" addr replace "$host_addr/24" dev "$host_if"
    ip -n "$(ns router)" link set "$router_if" up
    ip -n "$(ns "$host")" link set "$host_if" up
    # Anything not on the host's own LAN goes to the router.
    ip -n "$(ns "$host")" route replace default via "$router_addr" dev "$host_if"
}

lab_up() {
    local host
    for host in "${HOSTS[@]}"; do
        ns_exists "$host" || ip netns add "$(ns "$host")"
        ip -n "$(ns "$host")" link set lo up
    done
    lan lnxclient "$CLIENT_IF" "$CLIENT_ADDR" "$ROUTER_CLIENT_IF" "$ROUTER_CLIENT_ADDR"
    lan lnxserver "$SERVER_IF" "$SERVER_ADDR" "$ROUTER_SERVER_IF" "$ROUTER_SERVER_ADDR"
    # A router is a host that forwards packets not addressed to itself.
    ip netns exec "$(ns router)" sysctl -qw net.ipv4.ip_forward=1
    echo "lab up (prefix $PREFIX): lnxclient $CLIENT_ADDR -- router -- lnxserver $SERVER_ADDR"
}

# --- down -----------------------------------------------------------------

lab_down() {
    local host pids
    for host in "${HOSTS[@]}"; do
        ns_exists "$host" || continue
        # A process still inside keeps the namespace (and its cables) alive
        # after its name is gone: say so, but kill nothing we did not start.
        pids=$(ip netns pids "$(ns "$host")" 2>/dev/null | tr '\n' ' ')
        if [[ -n $pids ]]; then
            echo "$PROG: warning: still running in $(ns "$host"): ${pids% }" \
                "(the namespace lives on until they exit)" >&2
        fi
        ip netns delete "$(ns "$host")"
    done
    echo "lab down (prefix $PREFIX)"
}

# --- status ---------------------------------------------------------------

lab_status() {
    local host missing=0
    for host in "${HOSTS[@]}"; do
        if ! ns_exists "$host"; then
            echo "$host: not up (no namespace $(ns "$host"))"
            missing=1
            continue
        fi
        echo "$host (namespace $(ns "$host"))"
        # One line per interface: name, state (DOWN when it is switched off,
        # or when the other end of its cable is) and IPv4 address.
        ip -n "$(ns "$host")" -4 -br addr show | awk '$1 != "lo" {
            sub(/@.*/, "", $1); printf "  link   %-15s %-14s %s\n", $1, $2, $3 }'
        ip -n "$(ns "$host")" -4 route show | sed 's/ *$//; s/^/  route  /'
        if [[ $host == router ]]; then
            echo "  ip_forward = $(ip netns exec "$(ns router)" sysctl -n net.ipv4.ip_forward)"
        fi
    done
    if ((missing)); then
        exit 3
    fi
}

# --- exec -----------------------------------------------------------------

# lab_exec HOST CMD... - replace this process by CMD inside HOST, so that
# whoever started us can signal or wait for CMD by our PID.
lab_exec() {
    local host=$1
    shift
    ns_exists "$host" || die "the lab (prefix $PREFIX) is not up: run '$0 up' first"
    exec ip netns exec "$(ns "$host")" "$@"
}

# --- break ----------------------------------------------------------------

# The link is restored by a trap, so neither an error nor Ctrl-C nor a kill
# (other than SIGKILL) leaves the server LAN cut off.
SLEEP_PID=
restore_link() {
    if [[ -n $SLEEP_PID ]]; then
        kill "$SLEEP_PID" 2>/dev/null || true
        SLEEP_PID=
    fi
    ip -n "$(ns router)" link set "$ROUTER_SERVER_IF" up
}

lab_break() {
    local secs=$1 start now
    need_up
    if ! ip -n "$(ns router)" link show dev "$ROUTER_SERVER_IF" | grep '[<,]UP[,>]' >/dev/null; then
        die "break: the router's $ROUTER_SERVER_IF is already down (another break running?)"
    fi

    trap restore_link EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start=$EPOCHREALTIME
    # Admin-down on the router's port: its route to 10.10.11.0/24 goes with
    # it, so the router answers packets for the server LAN with ICMP "network
    # unreachable", and lnxserver's end of the cable loses its carrier.
    ip -n "$(ns router)" link set "$ROUTER_SERVER_IF" down
    echo "link router -- server LAN down for ${secs}s"
    # Sleep in the background and wait: a trapped signal interrupts `wait`
    # at once, where it would only run after a foreground sleep ended.
    sleep "$secs" &
    SLEEP_PID=$!
    wait "$SLEEP_PID"
    SLEEP_PID=
    restore_link
    trap - EXIT HUP INT TERM
    now=$EPOCHREALTIME
    printf 'link router -- server LAN up again after %.2fs\n' \
        "$(awk -v a="$start" -v b="$now" 'BEGIN { print b - a }')"
}

# --- shell ----------------------------------------------------------------

# lab_shell [CMD...] - replace this process by CMD (default: the user's
# shell) in new network and mount namespaces with a private /run/netns,
# and a new user namespace too when we are not root.
lab_shell() {
    local why=
    [[ -z ${LAB_SHELL-} ]] ||
        die "shell: this is a lab shell already (it says so in \$LAB_SHELL): exit it first"
    if ! [[ $(id -u) == 0 ]] || ! has_lab_caps; then
        why=$(userns_problem) || no_userns "$why" "sudo $0 shell"
    fi
    if (($# == 0)); then
        set -- "${SHELL:-/bin/bash}"
        echo "$PROG shell: a private space for labs; in it, run '$0 up', exec," \
            "break, down and the experiments; all labs built here go when you exit" >&2
    fi
    export LAB_SHELL=$$
    if [[ $(id -u) == 0 ]] && has_lab_caps; then
        # Root keeps its own identity (tcpdump then drops to user tcpdump
        # as usual); the namespaces alone keep this lab apart.
        # shellcheck disable=SC2016 # expanded by the inner bash
        exec unshare --net --mount -- "$BASH" -c '
            if [[ -d /run/netns ]]; then dir=/run/netns; else dir=/run; fi
            mount -t tmpfs -o mode=0755 lab-netns "$dir" || exit 1
            exec "$@"' lab_shell "$@"
    fi
    userns_exec "$@"
}

# no_userns WHY INSTEAD - why this user can have no user namespace, and
# INSTEAD, the command to run as root; exit 4.
no_userns() {
    local line
    {
        echo "$PROG: not root, and this user cannot create a user namespace:"
        while IFS= read -r line; do echo "  $line"; done <<<"$1"
        echo "Run it as root instead: $2"
    } >&2
    exit "$NO_USERNS_STATUS"
}

# not_root COMMAND... - what an ordinary user should do instead; exit 1,
# or 4 where user namespaces are not available.
not_root() {
    local why
    if ! why=$(userns_problem); then
        no_userns "$why" "sudo $0 $*"
    fi
    die "not root: run it in a lab shell, '$0 shell' (a user namespace of" \
        "your own, where the lab lives until you exit), or as root: sudo $0 $*"
}

# --- main -----------------------------------------------------------------

main() {
    (($# > 0)) || misuse "no command"
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    up | down | status)
        (($# == 1)) || misuse "$1 takes no arguments"
        ;;
    exec)
        (($# >= 3)) || misuse "exec needs a HOST and a COMMAND"
        case $2 in
        lnxclient | lnxserver | router) ;;
        *) misuse "exec: unknown host '$2' (lnxclient, lnxserver or router)" ;;
        esac
        ;;
    shell) ;;
    break)
        (($# == 2)) || misuse "break needs SECONDS"
        [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
            misuse "break: SECONDS must be a number, not '$2'"
        awk -v s="$2" -v max="$MAX_BREAK" 'BEGIN { exit !(s > 0 && s <= max) }' ||
            misuse "break: SECONDS must be more than 0 and at most $MAX_BREAK, not $2"
        ;;
    *)
        misuse "unknown command '$1'"
        ;;
    esac
    [[ $PREFIX =~ ^[A-Za-z0-9_]{1,11}$ ]] ||
        die "LAB_NS_PREFIX must be 1 to 11 letters, digits or '_' (interface names" \
            "have at most 15 characters), not '$PREFIX'"
    command -v ip >/dev/null || die "'ip' not found: install iproute2"
    if [[ $1 == shell ]]; then
        lab_shell "${@:2}"
    fi
    if ! has_lab_caps; then
        not_root "$@"
    fi

    case $1 in
    up) lab_up ;;
    down) lab_down ;;
    status) lab_status ;;
    exec) lab_exec "${@:2}" ;;
    break) lab_break "$2" ;;
    esac
}

main "$@"
