#!/usr/bin/env bash
# 15-hidden-states.sh - experiment 15: the TCP states a normal run passes
# through too fast to see - SYN_RECV, FIN_WAIT1, LAST_ACK and CLOSING -
# held still by a firewall rule on the router, seen with ss and netstat
# from inside each host, and then let go.
#
#   lab/15-hidden-states.sh         (as root, or as yourself: see below)
#
# On the lab network (lab/netns.sh, prefix ${LAB_NS_PREFIX:-lab}15),
# select_server (echo mode, its console on a pipe) runs on lnxserver
# 10.10.11.2:9877 and select_client on lnxclient 10.10.12.2.  An nftables
# rule in the router's forward chain drops, in turn:
#   1. every segment from the client but its SYN: the client's last
#      handshake ACK is lost, so the client is ESTABLISHED while the server
#      end stays in SYN_RECV, and accept() returns nothing;
#   2. every segment from the server: the client ends its input, and its
#      FIN is never acknowledged (FIN_WAIT1), while the server, which read
#      EOF and closed, waits for the ACK of its own FIN (LAST_ACK);
#   3. every segment from the client: both ends close at once, the client
#      first; the server's FIN reaches the client before any ACK of its own
#      FIN (CLOSING), and the server's FIN is never acknowledged (FIN_WAIT1).
# Each time, it shows the states on both hosts, removes the rule, and shows
# how they resolve.  About 6 seconds; the namespaces are removed at the
# end, even on Ctrl-C.
#
# Not run as root, it runs itself again in a user namespace of its own
# (lib.sh, lab_privileges), where everything it builds is private and goes
# with it; where user namespaces are disabled it says why and exits with 4.
# Needs nft (nftables); netstat (net-tools) is shown when installed.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NETNS=$LAB/netns.sh
cd "$LAB/.."

PROG=15-hidden-states.sh
CLIENT_IP=10.10.12.2
SERVER_IP=10.10.11.2
PORT=9877

require_built "" select_server select_client
require_command nft nftables
lab_privileges "$0" "$@"
# Our own namespaces, apart from any lab built by hand (set after
# lab_privileges, which may start this script over, adding it twice).
export LAB_NS_PREFIX=${LAB_NS_PREFIX:-lab}15

netns_lab_setup


# show HOST - the TCP connections of port PORT on HOST (not the listening
# socket), with their timers, as ss and, if it is installed, netstat see
# them.
show() {
    local host=$1
    cmd "lab/netns.sh exec $host ss -tano exclude listening"
    on "$host" ss -tano exclude listening | sed "s/ *\$//; s/^/    $host | /"
    if command -v netstat >/dev/null; then
        cmd "lab/netns.sh exec $host netstat -tn"
        on "$host" netstat -tn | tail -n +3 | sed "s/ *\$//; s/^/    $host | /"
    fi
}

# seen_in HOST STATE - ss on HOST sees a connection of port PORT in STATE
# (STATE as ss names them: syn-recv, fin-wait-1, connected, ...).
seen_in() {
    [[ -n $(on "$1" ss -Htan state "$2" "( sport = :$PORT or dport = :$PORT )") ]]
}

# seen_in_both CLIENT_STATE SERVER_STATE - lnxclient and lnxserver are there.
seen_in_both() {
    seen_in lnxclient "$1" && seen_in lnxserver "$2"
}

# server_end_gone - lnxserver has no connection of port PORT left (only
# the listening socket).
server_end_gone() {
    ! seen_in lnxserver all-but-listen
}

# counter HOST NAME - a kernel SNMP counter of HOST (absolute, nstat's
# history untouched).
counter() {
    on "$1" nstat -asz "$2" | awk -v n="$2" '$1 == n { print $2 }'
}

# drop WHAT RULE - make RULE the router's only forward rule; WHAT says in
# words what it drops.
drop() {
    say "The router now drops $1:"
    on router nft flush chain inet lab forward
    on router nft add rule inet lab forward "$2" counter drop
    on router nft list chain inet lab forward | grep ' drop' |
        sed 's/^[[:space:]]*/    router nft rule: /; s/ counter packets [0-9]* bytes [0-9]*//'
}

# let_go - remove the router's rule, saying how much it dropped.
let_go() {
    local n
    n=$(on router nft list chain inet lab forward | sed -n 's/.* counter packets \([0-9]*\) .*/\1/p')
    on router nft flush chain inet lab forward
    say "The router dropped $n segment$( ((n == 1)) || echo s).  Rule removed:"
    cmd "lab/netns.sh exec router nft flush chain inet lab forward"
}

# start_client NAME - select_client on lnxclient, its output in NAME.out
# and NAME.err, its stdin a FIFO this script holds open on fd client_in;
# client_pid is its PID.  Returns once it is connected.
start_client() {
    local name=$1
    mkfifo "$tmp/$name.in"
    spawn "$NETNS" exec lnxclient ./select_client "$SERVER_IP" "$PORT" \
        <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    client_pid=$!
    pids+=("$client_pid")
    exec {client_in}>"$tmp/$name.in"
    held+=("$client_in")
    wait_until 5 "$name to connect" says "$tmp/$name.err" '^connected to '
    sed "s/^/    client | /" "$tmp/$name.err"
}

# accepts - how many connections select_server has accepted.
accepts() {
    grep -c '^accepted ' "$tmp/server.log" || true
}

# accepted N - select_server has accepted N connections.
accepted() {
    (($(accepts) >= $1))
}

gone() { ! running "$1"; }

# synack_resent - lnxserver has resent a SYN-ACK since $retrans was read.
synack_resent() {
    (($(counter lnxserver TcpExtTCPSynRetrans) > retrans))
}

step "The lab network, select_server on lnxserver, and an empty firewall on the router"
"$NETNS" down >/dev/null         # leftovers of an interrupted run
"$NETNS" up | indent
mkfifo "$tmp/console"
# The server's console is a pipe this script writes to (part 3: kick).
# netns.sh execs `ip netns exec`, which execs the server: $! is its PID.
spawn "$NETNS" exec lnxserver ./select_server -b 0.0.0.0 -p "$PORT" \
    <"$tmp/console" >"$tmp/server.log" 2>&1 &
pids+=($!)
exec {console}>"$tmp/console"
held+=("$console")
wait_until 5 "the server's listening line" says "$tmp/server.log" '^listening on '
head -n 1 "$tmp/server.log" | sed 's/^/    server | /'
# Linux remembers each peer's round-trip time after a connection closes and
# starts the next one with it: part 1's long handshake would slow part 3's
# timers down.  Not here: every connection starts afresh.
on lnxclient sysctl -qw net.ipv4.tcp_no_metrics_save=1
on lnxserver sysctl -qw net.ipv4.tcp_no_metrics_save=1
on router nft -f - <<EOF
table inet lab {
    chain forward {
        type filter hook forward priority filter; policy accept;
    }
}
EOF

# --- 1. SYN_RECV -----------------------------------------------------------

step "1. SYN_RECV: the client's last handshake ACK is lost"
drop "every segment from the client to port $PORT except its SYN" \
    "ip saddr $CLIENT_IP tcp dport $PORT tcp flags != syn"
retrans=$(counter lnxserver TcpExtTCPSynRetrans)
cmd "lab/netns.sh exec lnxclient ./select_client $SERVER_IP $PORT"
start_client first
# The SYN-ACK is resent after 1 s, and the client answers it again.
wait_until 5 "the server to resend its SYN-ACK" synack_resent
wait_until 5 "SYN-RECV on lnxserver" seen_in lnxserver syn-recv
show lnxclient
show lnxserver
say "    lnxserver TcpExtTCPSynRetrans: $retrans -> $(counter lnxserver TcpExtTCPSynRetrans)"
say "    select_server has accepted $(accepts) connections"
look "the client is ESTABLISHED (its connect() returned), the server end is"
look "SYN_RECV: it never got the ACK, so accept() has nothing to return; it"
look "resends its SYN-ACK, and the client's answers are dropped again."
let_go
cmd "(the client types: hello)"
printf 'hello\n' >&"$client_in"
wait_until 5 "the echo" says "$tmp/first.out" '^hello$'
wait_until 5 "ESTAB on lnxserver" seen_in lnxserver established
show lnxserver
tail -n 1 "$tmp/server.log" | sed 's/^/    server | /'
sed 's/^/    client | /' "$tmp/first.out"
look "the line carries an ACK too: that completes the handshake, the server"
look "accepts, and echoes the line."

# --- 2. FIN_WAIT1 and LAST_ACK -------------------------------------------

step "2. FIN_WAIT1 and LAST_ACK: no ACK of a FIN gets through"
drop "every segment from the server to the client" \
    "ip saddr $SERVER_IP tcp sport $PORT"
cmd "(the client reaches the end of its input: shutdown(SHUT_WR), a FIN)"
release "$client_in"
wait_until 5 "FIN-WAIT-1 on lnxclient and LAST-ACK on lnxserver" \
    seen_in_both fin-wait-1 last-ack
show lnxclient
show lnxserver
tail -n 1 "$tmp/server.log" | sed 's/^/    server | /'
look "the client's FIN reached the server, which read EOF and closed: its FIN"
look "went out and was dropped, so it waits in LAST_ACK for an ACK of it."
look "The ACK of the client's FIN was dropped too: the client is in"
look "FIN_WAIT1.  timer:(on,T,N): this end resends its FIN in T (ss writes"
look "1.5 s as 1.500ms, and nothing at all if the resend is due right now);"
look "N resends so far."
# Why the server's timer is so long: ss -ti shows its timeout (rto, ms)
# and its round-trip estimate (rtt: mean/variation, ms).
on lnxserver ss -Htin state last-ack |
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(rto|rtt):/) found = found " " $i }
         END { if (found == "") exit
               print "    lnxserver ss -ti:" found
               print "    (its round-trip estimate still counts the second the lost ACK cost"
               print "    its handshake in part 1: hence its long timer)" }'

let_go
wait_until 10 "the FINs to get through" seen_in lnxclient time-wait
wait_until 5 "the server's end to go" server_end_gone
wait_until 5 "the client to finish" gone "$client_pid"
status=0
wait "$client_pid" || status=$?
show lnxclient
show lnxserver
say "    (select_client exited with status $status)"
look "the next resends got through: the server end is gone (CLOSED), the"
look "client end, which closed first, is in TIME_WAIT."

# --- 3. CLOSING -----------------------------------------------------------

step "3. CLOSING: both ends close at once"
n=$(accepts)
cmd "lab/netns.sh exec lnxclient ./select_client $SERVER_IP $PORT"
start_client second
wait_until 5 "the server to accept" accepted $((n + 1))
fd=$(grep '^accepted ' "$tmp/server.log" | tail -n 1 | sed 's/.* on fd \([0-9]*\) .*/\1/')
tail -n 1 "$tmp/server.log" | sed 's/^/    server | /'
drop "every segment from the client to port $PORT" \
    "ip saddr $CLIENT_IP tcp dport $PORT"
cmd "(the client reaches the end of its input: its FIN is dropped)"
release "$client_in"
wait_until 5 "FIN-WAIT-1 on lnxclient" seen_in lnxclient fin-wait-1
cmd "(on the server's console: kick $fd - the server closes too, and its FIN gets through)"
printf 'kick %s\n' "$fd" >&"$console"
wait_until 5 "CLOSING on lnxclient and FIN-WAIT-1 on lnxserver" \
    seen_in_both closing fin-wait-1
show lnxclient
show lnxserver
look "the client sent its FIN first (dropped); then the server's FIN arrived,"
look "which did not acknowledge the client's: FIN_WAIT1 -> CLOSING.  The"
look "client's ACK of the server's FIN is dropped: the server stays in"
look "FIN_WAIT1.  The client program read the kick notice and EOF, and is done;"
look "its kernel still holds the end."
wait_until 5 "the client to finish" gone "$client_pid"
sed 's/^/    client | /' "$tmp/second.out"
let_go
wait_until 10 "TIME-WAIT on both hosts" seen_in_both time-wait time-wait
show lnxclient
show lnxserver
look "the next resends got through: each end got the other's FIN and the ACK"
look "of its own, so a simultaneous close leaves BOTH ends in TIME_WAIT."

step "What it shows"
say "A state lasts as long as the segment that ends it takes to arrive: on a"
say "working network, well under a millisecond, which is why you never see"
say "SYN_RECV, FIN_WAIT1, LAST_ACK or CLOSING.  Lose that segment and the"
say "state lasts until a retransmission gets through.  Each end knows only"
say "what it has received: the client was ESTABLISHED while the server had no"
say "connection to accept."
