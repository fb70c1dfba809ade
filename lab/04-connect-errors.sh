#!/usr/bin/env bash
# 04-connect-errors.sh - experiment 4: four ways a connection fails, and how
# to tell them apart by the message, the time it takes, and the packet that
# caused it.
#
#   lab/04-connect-errors.sh        (as root, or as yourself: see below)
#
# On the lab network (lab/netns.sh, prefix ${LAB_NS_PREFIX:-lab}4), with
# select_server listening on lnxserver 10.10.11.2:9877, select_client on
# lnxclient tries:
#   1. a port where nothing listens      -> RST: refused, at once
#   2. a host that does not exist        -> ARP fails: host unreachable, ~3 s
#   3. a host whose firewall drops SYNs  -> silence: timed out (-w 7.5),
#                                           and when each SYN was resent
#   4. UDP to a port with no server      -> ICMP port unreachable
# For each it prints what to look at, the client's message, its exit status
# and time, a kernel counter or setting that shows the cause, and why.
# About 11 seconds; the namespaces are removed at the end, even on Ctrl-C.
#
# Not run as root, it runs itself again in a user namespace of its own
# (lib.sh, lab_privileges), where everything it builds is private and goes
# with it; where user namespaces are disabled it says why and exits with 4.
# Needs nft (nftables); tcpdump, to time the SYNs of case 3.
set -euo pipefail

PROG=04-connect-errors.sh
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab/lib.sh
source "$LAB/lib.sh"
BIN=${SELECT_LAB_BIN:-$(dirname "$LAB")}
NETNS=$LAB/netns.sh

SERVER_IP=10.10.11.2
GHOST_IP=10.10.11.99    # on the server's LAN, but no host has this address
PORT=9877               # select_server listens here (TCP and UDP)
CLOSED_PORT=9           # nothing listens here
CONNECT_TIMEOUT=2       # select_client -w: never wait minutes for a silent host
# Case 3 waits longer, to see the SYNs resent: the seventh leaves at 7 s on
# a kernel with net.ipv4.tcp_syn_linear_timeouts = 4 (Linux 6.5 and later).
SILENT_TIMEOUT=7.5

for prog in select_server select_client; do
    [[ -x $BIN/$prog ]] || { echo "$PROG: $BIN/$prog not found: run 'make' first" >&2; exit 1; }
done
require_command nft nftables
lab_privileges "$0" "$@"
# Our own namespaces, apart from any lab built by hand with netns.sh
# (set after lab_privileges, which may start this script over, adding it twice).
export LAB_NS_PREFIX=${LAB_NS_PREFIX:-lab}4

netns_lab_setup


# counter HOST NAME - a kernel SNMP counter of HOST (nstat: absolute value,
# without touching nstat's history file).
counter() {
    on "$1" nstat -asz "$2" | awk -v n="$2" '$1 == n { print $2 }'
}

# attempt [CLIENT OPTIONS...] HOST PORT - run select_client on lnxclient,
# with one line on its stdin, and show its messages, exit status and time.
attempt() {
    local start status=0
    start=$EPOCHREALTIME
    on lnxclient timeout 30 "$BIN/select_client" "$@" <<<"hello" \
        >"$tmp/out" 2>"$tmp/err" || status=$?
    printf '  $ select_client %s\n' "$*"
    sed 's/^/  /' "$tmp/err"
    printf '  exit status %d after %ss\n' "$status" \
        "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')"
}

# sysctl_of HOST NAME - the value of a setting on HOST, "" if this kernel
# has no such setting.
sysctl_of() {
    on "$1" sysctl -n "$2" 2>/dev/null || true
}

# syn_schedule RETRIES LINEAR - when a SYN that gets no answer is sent, in
# seconds after the first, and when connect() gives up: "0 1 3 7 ... / 127".
# The first wait is the initial RTO, 1 s, and so are the LINEAR waits after
# it; then each wait is twice the one before (at most 120 s).  The kernel
# resends RETRIES + LINEAR times, then waits once more and gives up.
syn_schedule() {
    awk -v retries="$1" -v linear="$2" 'BEGIN {
        t = 0; wait = 1; out = "0"
        for (i = 1; i <= retries + linear + 1; i++) {
            if (i > linear + 1) wait = wait * 2 > 120 ? 120 : wait * 2
            t += wait
            out = out (i <= retries + linear ? " " t : " / " t)
        }
        print out
    }'
}

# --- The network and the server --------------------------------------------

"$NETNS" down >/dev/null         # leftovers of an interrupted run
"$NETNS" up
# Not through the function `on`: netns.sh execs `ip netns exec`, which execs
# the server, so $! is the server's own PID.
"$NETNS" exec lnxserver "$BIN/select_server" -p "$PORT" </dev/null >"$tmp/server.out" 2>&1 &
pids+=($!)
poll 5 says "$tmp/server.out" '^listening on ' ||
    { echo "$PROG: select_server did not start:" >&2; cat "$tmp/server.out" >&2; exit 1; }
echo "lnxserver: $(head -n 1 "$tmp/server.out")"

step "0. For comparison: a server that answers ($SERVER_IP:$PORT)"
echo "look at: the time a working connect() takes on this network"
attempt -w "$CONNECT_TIMEOUT" "$SERVER_IP" "$PORT"
echo "why: SYN, SYN+ACK, ACK through the router: one round trip, well under a millisecond here."

step "1. Connection refused: nothing listens on $SERVER_IP:$CLOSED_PORT"
echo "look at: how fast it fails, and the RST segments lnxserver's kernel sent"
before=$(counter lnxserver TcpOutRsts)
attempt "$SERVER_IP" "$CLOSED_PORT"
echo "  lnxserver TcpOutRsts: $before -> $(counter lnxserver TcpOutRsts)"
cat <<'EOF'
why: the host is up, so its kernel answers the SYN itself.  No socket listens
  on that port, so the answer is a RST segment, and connect() fails at once
  with ECONNREFUSED: one round trip, no waiting, no retries.
EOF

step "2. Host unreachable: nobody has the address $GHOST_IP on the server's LAN"
echo "look at: the ~3 s it takes, the router's ARP settings and the ICMP it sent"
before=$(counter router IcmpOutDestUnreachs)
attempt "$GHOST_IP" "$PORT"
rts=$LAB_NS_PREFIX-rts
on router sysctl "net.ipv4.neigh.$rts.mcast_solicit" "net.ipv4.neigh.$rts.retrans_time_ms" |
    sed 's/^/  router: /'
echo "  router IcmpOutDestUnreachs: $before -> $(counter router IcmpOutDestUnreachs)"
cat <<'EOF'
why: the router has a route to 10.10.11.0/24 (it is its own LAN), so it
  must learn the MAC address of 10.10.11.99 before it can deliver the SYN.
  It broadcasts an ARP request (mcast_solicit = 3 of them, retrans_time_ms =
  1000 apart), keeping the SYNs in a queue meanwhile.  Nobody answers, so
  after 3 s it gives up, drops the queued SYNs and answers each with ICMP
  "host unreachable".  Linux ends connect() at the first one, with
  EHOSTUNREACH.  (The BSD kernel of UNP only notes such an ICMP and goes on
  resending the SYN until connect() times out after 75 s.)
EOF

step "3. Timed out: lnxserver's firewall silently drops SYNs to port $PORT"
echo "look at: the time (exactly -w $SILENT_TIMEOUT), the firewall's drop counter, and when"
echo "  each SYN was sent again"
on lnxserver nft -f - <<EOF
table inet lab {
    chain input {
        type filter hook input priority filter; policy accept;
        tcp dport $PORT counter drop
    }
}
EOF
on lnxserver nft list chain inet lab input | grep 'drop' | sed 's/^[[:space:]]*/  lnxserver nft rule: /'
# tcpdump on lnxserver's cable sees each SYN before the firewall drops it.
capturing=
if command -v tcpdump >/dev/null; then
    "$NETNS" exec lnxserver tcpdump -i "$LAB_NS_PREFIX-srv" -n -tt -l --immediate-mode \
        "tcp dst port $PORT and tcp[tcpflags] & tcp-syn != 0" \
        >"$tmp/syns" 2>"$tmp/tcpdump.err" &
    capturing=$!
    pids+=("$capturing")
    poll 5 says "$tmp/tcpdump.err" 'listening on' ||
        { echo "$PROG: tcpdump did not start: $(cat "$tmp/tcpdump.err")" >&2; exit 1; }
fi
attempt -w "$SILENT_TIMEOUT" "$SERVER_IP" "$PORT"
on lnxserver nft list chain inet lab input | grep -o 'packets [0-9]*' |
    sed 's/^packets \([0-9]*\)$/  lnxserver dropped \1 SYN segments/'
on lnxserver nft delete table inet lab
retries=$(sysctl_of lnxclient net.ipv4.tcp_syn_retries)
linear=$(sysctl_of lnxclient net.ipv4.tcp_syn_linear_timeouts)
if [[ -n $capturing ]]; then
    kill "$capturing"
    wait "$capturing" 2>/dev/null || true
    awk '$2 != "IP" { next }
         t0 == "" { t0 = $1 }
         { t = $1 - t0; at = at sprintf(" %.2f", t)
           if (t > 0) waits = waits sprintf(" %.2f", t - prev); prev = t }
         END { print "  SYNs seen on lnxserver'"'"'s cable, in seconds:" at
               print "  the waits between them:" waits }' "$tmp/syns"
else
    echo "  (tcpdump is not installed: no SYN times; apt-get install tcpdump)"
fi
echo "  lnxclient: net.ipv4.tcp_syn_retries = $retries"
if [[ -n $linear ]]; then
    echo "  lnxclient: net.ipv4.tcp_syn_linear_timeouts = $linear"
else
    echo "  lnxclient: no net.ipv4.tcp_syn_linear_timeouts (a kernel older than 6.5)"
fi
read -r expected < <(syn_schedule "$retries" "${linear:-0}")
echo "  so, without -w: SYNs at ${expected% / *} s; ETIMEDOUT after about ${expected##* / } s"
if [[ -n $linear ]]; then
    cat <<EOF
why: the SYN reaches lnxserver and vanishes: no RST, no ICMP, nothing.  The
  client cannot tell a dropped SYN from a slow network, so its kernel resends
  the SYN and waits.  This kernel waits 1 s before each of the first
  tcp_syn_linear_timeouts + 1 = $((linear + 1)) resends, then twice as long each time;
  older kernels double from the start (SYNs at 0, 1, 3, 7, 15 ... s).  Only
  select_client's own deadline (-w $SILENT_TIMEOUT) ends it; without one, connect()
  fails with ETIMEDOUT after $((retries + linear)) resends (tcp_syn_retries +
  tcp_syn_linear_timeouts) and one last wait.  The same server answered case
  0: the host is up, only silent.
EOF
else
    cat <<EOF
why: the SYN reaches lnxserver and vanishes: no RST, no ICMP, nothing.  The
  client cannot tell a dropped SYN from a slow network, so its kernel resends
  the SYN, waiting 1 s, then twice as long each time (newer kernels, 6.5 and
  later, wait 1 s a few more times first: tcp_syn_linear_timeouts).  Only
  select_client's own deadline (-w $SILENT_TIMEOUT) ends it; without one, connect()
  fails with ETIMEDOUT after tcp_syn_retries = $retries resends and one last wait.
  The same server answered case 0: the host is up, only silent.
EOF
fi

step "4. UDP to a port with no server ($SERVER_IP:$CLOSED_PORT)"
echo "look at: 'connected to' comes first (a UDP connect() sends nothing), the error after"
before=$(counter lnxserver UdpNoPorts)
attempt -u "$SERVER_IP" "$CLOSED_PORT"
echo "  lnxserver UdpNoPorts: $before -> $(counter lnxserver UdpNoPorts)"
cat <<'EOF'
why: UDP has no handshake, so connect() on a UDP socket succeeds at once: it
  only records the peer's address.  The datagram "hello" reaches lnxserver,
  where no socket has port 9, so its kernel answers with ICMP "port
  unreachable".  Because the socket is connected, the kernel can match that
  ICMP to it and the next recv() fails with ECONNREFUSED; an unconnected
  socket (plain sendto()) never hears about it and just waits for a reply.
EOF
