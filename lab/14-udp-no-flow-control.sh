#!/usr/bin/env bash
# 14-udp-no-flow-control.sh - experiment 14: UDP has no flow control.
#
# select_server -b 127.0.0.1 is stopped (SIGSTOP), as a server too slow
# to keep up would be, and lab/udp_blast sends it 2000 datagrams of 1400
# bytes (UNP's numbers) as fast as sendto() goes.  Every sendto()
# succeeds.  The server's receive buffer holds what fits and the kernel
# drops the rest: ss shows the socket's drop count (d), nstat and netstat
# -su the system's UdpRcvbufErrors.  After SIGCONT the server reads what
# was kept, its `stats` counts it, and kept + dropped = sent.  Then the
# same with --rcvbuf 4194304, a bigger buffer: fewer drops, or none.
#
# Run from anywhere once the programs are built (make all lab/udp_blast).
# Takes about two seconds, uses 127.0.0.1 only, needs no root, leaves
# nothing behind.  The system-wide counters also count drops of other UDP
# sockets on this machine, if any; ss's count is this socket's alone.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=14-udp-no-flow-control.sh
require_built "make all lab/udp_blast" select_server lab/udp_blast
require_command nstat iproute2

COUNT=2000
SIZE=1400

lab_setup
# A stopped server would not act on cleanup's SIGTERM until continued.
trap 'kill -CONT "${pids[@]}" 2>/dev/null || true; cleanup' EXIT

# rcvbuf_errors - the system's UdpRcvbufErrors counter, absolute (-a: not
# since nstat's last run; -s: nstat's history file is left alone).
rcvbuf_errors() {
    nstat -asz UdpRcvbufErrors | awk '$1 == "UdpRcvbufErrors" { print $2 }'
}

# skmem PORT FIELD - one number from ss's memory line for our UDP socket:
# r (memory queued), rb (receive buffer), d (datagrams dropped).
skmem() {
    ss -Huanm "sport = :$1" | grep -oE "[(,]$2[0-9]+[,)]" | tr -dc '0-9'
}

# queue_empty PORT - the server has read everything its socket held.
queue_empty() { [[ $(skmem "$1" r) == 0 ]]; }

# stopped PID - the process is stopped (ps state T).
stopped() { [[ $(ps -o stat= -p "$1") == T* ]]; }

# replied NAME N - the server NAME has printed at least N stats lines.
replied() { (($(grep -c 'udp datagrams: ' "$tmp/$1.out" || true) >= $2)); }

# round NAME OPTIONS... - one server, stopped, blasted, continued, counted.
# Sets SENT, QUEUED (the memory the datagrams took while the server was
# stopped), KEPT (the server's stats), DROPPED (ss's d) and SYSTEM (how far
# UdpRcvbufErrors went up).
round() {
    local name=$1 pid console port before after
    shift
    mkfifo "$tmp/$name.console"
    cmd "./select_server -p 0 -b 127.0.0.1 -q${*:+ $*} &"
    spawn ./select_server -p 0 -b 127.0.0.1 -q "$@" <"$tmp/$name.console" \
        >"$tmp/$name.out" 2>&1 &
    pid=$!
    pids+=("$pid")
    exec {console}>"$tmp/$name.console"
    held+=("$console")
    wait_5s "the server's listening line" says "$tmp/$name.out" '^listening on '
    [[ $# == 0 ]] || wait_5s "the buffer line" says "$tmp/$name.out" '^receive buffer: '
    port=$(listening_port "$tmp/$name.out")
    sed 's/^/    server | /' "$tmp/$name.out"

    cmd "kill -STOP $pid      # the server stops reading"
    kill -STOP "$pid"
    wait_5s "the server to stop" stopped "$pid"
    before=$(rcvbuf_errors)
    cmd "nstat -asz UdpRcvbufErrors      # before"
    say "    UdpRcvbufErrors $before"
    cmd "lab/udp_blast 127.0.0.1 $port $COUNT $SIZE"
    lab/udp_blast 127.0.0.1 "$port" "$COUNT" "$SIZE" >"$tmp/blast.out"
    indent <"$tmp/blast.out"
    SENT=$(sed -n 's/^sent \([0-9]*\) datagrams .*/\1/p' "$tmp/blast.out")
    say "    (exit status 0: no sendto() failed)"
    cmd "ss -uanm 'sport = :$port'"
    ss -uanm "sport = :$port" | sed 's/ *$//; s/\t */    /' | indent
    QUEUED=$(skmem "$port" r)

    cmd "kill -CONT $pid"
    kill -CONT "$pid"
    wait_5s "the server to read its queue" queue_empty "$port"
    cmd "stats      (on the server's console)"
    echo stats >&"$console"
    wait_5s "the stats line" replied "$name" 1
    grep 'udp datagrams: ' "$tmp/$name.out" | sed 's/^/    server | /'
    KEPT=$(sed -n 's/.*; udp datagrams: \([0-9]*\) .*/\1/p' "$tmp/$name.out")
    DROPPED=$(skmem "$port" d)
    after=$(rcvbuf_errors)
    SYSTEM=$((after - before))
    cmd "nstat -asz UdpRcvbufErrors      # after"
    say "    UdpRcvbufErrors $after      (up $SYSTEM)"
    cmd "netstat -su | grep 'receive buffer errors'"
    netstat -su | grep 'receive buffer errors' | indent
    say "    sent $SENT = received $KEPT (stats) + dropped $DROPPED (ss: d$DROPPED)"
    if ((SYSTEM != DROPPED)); then
        say "    (UdpRcvbufErrors went up by $SYSTEM: other UDP sockets on this"
        say "    machine dropped $((SYSTEM - DROPPED)) datagrams meanwhile)"
    fi
    echo quit >&"$console"
    wait "$pid" || true
}

step "1. The receive buffer a UDP socket gets"
cmd "cat /proc/sys/net/core/rmem_default /proc/sys/net/core/rmem_max"
say "    rmem_default $(cat /proc/sys/net/core/rmem_default)"
say "    rmem_max     $(cat /proc/sys/net/core/rmem_max)"
look "rmem_default: every new socket's receive buffer (SO_RCVBUF); rmem_max:"
look "the most that setsockopt(SO_RCVBUF) may ask for."

step "2. A stopped server, the default buffer, $COUNT datagrams of $SIZE bytes"
round default
kept1=$KEPT
look "udp_blast was told nothing: $SENT sendto() calls, $SENT successes."
look "ss: Recv-Q (r) is the memory the queued datagrams cost, up against the"
look "buffer (rb); d counts the datagrams the kernel threw away once it was full."
look "$KEPT datagrams of $SIZE bytes took $QUEUED bytes, $((QUEUED / (KEPT > 0 ? KEPT : 1))) each: the buffer counts"
look "the kernel's memory, not the data.  The server read $KEPT; the other $DROPPED"
look "are gone, and nothing will send them again."

step "3. The same with a bigger buffer: --rcvbuf 4194304"
round big --rcvbuf 4194304
look "the kernel gave twice what was asked (socket(7): the extra is for its"
look "bookkeeping), and never more than twice rmem_max.  The server kept $KEPT"
look "of $SENT this time, against $kept1 before."

step "What it shows"
say "UDP has no flow control.  The receiver's kernel queues each datagram in"
say "the socket's receive buffer while it fits, and drops it when it does"
say "not: the sender's sendto() has already succeeded, and no one tells it."
say "The drops show only at the receiver: ss's d, UdpRcvbufErrors (nstat),"
say "'receive buffer errors' (netstat -su).  A bigger SO_RCVBUF absorbs a"
say "bigger burst; it cannot make a receiver that is slower on average keep"
say "up.  TCP would have lost nothing: its window tells the sender how much"
say "room is left, and the sender stops when it is zero."
