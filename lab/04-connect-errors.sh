#!/usr/bin/env bash
# 04-connect-errors.sh - experiment 4: four ways a connection fails, and how
# to tell them apart by the message, the time it takes, and the packet that
# caused it.
#
#   sudo lab/04-connect-errors.sh
#
# On the lab network (lab/netns.sh, prefix ${LAB_NS_PREFIX:-lab}4), with
# select_server listening on lnxserver 10.10.11.2:9877, select_client on
# lnxclient tries:
#   1. a port where nothing listens      -> RST: refused, at once
#   2. a host that does not exist        -> ARP fails: host unreachable, ~3 s
#   3. a host whose firewall drops SYNs  -> silence: timed out (-w 2)
#   4. UDP to a port with no server      -> ICMP port unreachable
# For each it prints what to look at, the client's message, its exit status
# and time, a kernel counter or setting that shows the cause, and why.
# About 6 seconds; the namespaces are removed at the end, even on Ctrl-C.
set -euo pipefail

PROG=04-connect-errors.sh
LAB=$(cd "$(dirname "$0")" && pwd)
BIN=${SELECT_LAB_BIN:-$(dirname "$LAB")}
NETNS=$LAB/netns.sh
# Our own namespaces, apart from any lab built by hand with netns.sh.
export LAB_NS_PREFIX=${LAB_NS_PREFIX:-lab}4

SERVER_IP=10.10.11.2
GHOST_IP=10.10.11.99    # on the server's LAN, but no host has this address
PORT=9877               # select_server listens here (TCP and UDP)
CLOSED_PORT=9           # nothing listens here
CONNECT_TIMEOUT=2       # select_client -w: never wait minutes for a silent host

[[ $(id -u) == 0 ]] ||
    { echo "$PROG: must run as root: it builds network namespaces (try: sudo $0)" >&2; exit 1; }
for prog in select_server select_client; do
    [[ -x $BIN/$prog ]] || { echo "$PROG: $BIN/$prog not found: run 'make' first" >&2; exit 1; }
done
command -v nft >/dev/null ||
    { echo "$PROG: 'nft' not found: install nftables (apt-get install nftables)" >&2; exit 1; }

tmp=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    "$NETNS" down >/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# on HOST CMD... - run CMD on a lab host.
on() {
    "$NETNS" exec "$@"
}

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

if [[ -t 1 ]]; then bold=$'\e[1m' off=$'\e[0m'; else bold='' off=''; fi
step() {
    printf '\n%s== %s%s\n' "$bold" "$*" "$off"
}

# --- The network and the server --------------------------------------------

"$NETNS" down >/dev/null         # leftovers of an interrupted run
"$NETNS" up
# Not through the function `on`: netns.sh execs `ip netns exec`, which execs
# the server, so $! is the server's own PID.
"$NETNS" exec lnxserver "$BIN/select_server" -p "$PORT" </dev/null >"$tmp/server.out" 2>&1 &
SERVER_PID=$!
for ((i = 0; i < 250; i++)); do
    grep -q '^listening on ' "$tmp/server.out" && break
    sleep 0.02
done
grep -q '^listening on ' "$tmp/server.out" ||
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
  "host unreachable"; lnxclient's kernel ends connect() with EHOSTUNREACH.
EOF

step "3. Timed out: lnxserver's firewall silently drops SYNs to port $PORT"
echo "look at: the time (exactly -w $CONNECT_TIMEOUT) and the firewall's drop counter"
on lnxserver nft -f - <<EOF
table inet lab {
    chain input {
        type filter hook input priority filter; policy accept;
        tcp dport $PORT counter drop
    }
}
EOF
on lnxserver nft list chain inet lab input | grep 'drop' | sed 's/^[[:space:]]*/  lnxserver nft rule: /'
attempt -w "$CONNECT_TIMEOUT" "$SERVER_IP" "$PORT"
on lnxserver nft list chain inet lab input | grep -o 'packets [0-9]*' |
    sed 's/^packets \([0-9]*\)$/  lnxserver dropped \1 SYN segments/'
on lnxserver nft delete table inet lab
cat <<EOF
why: the SYN reaches lnxserver and vanishes: no RST, no ICMP, nothing.  The
  client cannot tell a dropped SYN from a slow network, so its kernel resends
  the SYN (after 1 s, then again) and waits.  Only select_client's own
  deadline (-w $CONNECT_TIMEOUT) ends it; without one, connect() waits until the kernel
  gives up after net.ipv4.tcp_syn_retries retransmissions and fails with
  ETIMEDOUT.  The same server answered case 0: the host is up, only silent.
EOF

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
