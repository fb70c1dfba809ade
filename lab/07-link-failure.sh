#!/usr/bin/env bash
# 07-link-failure.sh - experiment 7: what TCP and UDP do when the network
# fails under them.  First a cable is pulled for a few seconds, then a link
# loses one packet in five at random.
#
#   lab/07-link-failure.sh                                 about 30 s
#   LAB_INTERVAL=0.1 LAB_BREAK=2 lab/07-link-failure.sh    about 7 s
#
# On the lab network (lab/netns.sh, prefix ${LAB_NS_PREFIX:-lab}7),
# select_server runs on lnxserver in echo mode with --trace.  On lnxclient,
# one loop writes a numbered line ("message 001") every LAB_INTERVAL seconds
# (default 1) to two select_clients at once: one sends it over a TCP
# connection, the other (-u) as one UDP datagram.  A message counts as
# received when its echo comes back.
#   Part 1: after message 3, `netns.sh break LAB_BREAK` (default 4 s) takes
#           the router's port on the server LAN down, then up again.
#   Part 2: an nftables rule on the router's forward chain drops one packet
#           in five at random (numgen random mod 5 0 drop) while 15 more
#           messages go by.
# Each part prints what was sent and received over TCP and over UDP, the
# sizes of the server's TCP reads, and why.  The namespaces are removed at
# the end, even on Ctrl-C.
#
# Run it as root, or as yourself: not root, it runs itself again in a user
# namespace of its own (lib.sh, lab_privileges), where everything it builds
# is private and goes with it; where user namespaces are disabled it says
# why and exits with 4.  Needs nft (nftables).
set -euo pipefail

PROG=07-link-failure.sh
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab/lib.sh
source "$LAB/lib.sh"
BIN=${SELECT_LAB_BIN:-$(dirname "$LAB")}
NETNS=$LAB/netns.sh

INTERVAL=${LAB_INTERVAL:-1}     # seconds between two messages
BREAK=${LAB_BREAK:-4}           # seconds the link stays down in part 1
LOSS_MESSAGES=15                # messages sent in part 2
LOSS_ONE_IN=5                   # part 2 drops one forwarded packet in 5
SERVER_IP=10.10.11.2
PORT=9877
MESSAGE_BYTES=12                # "message 001\n"

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# in_range VALUE MIN MAX - VALUE is a decimal number from MIN to MAX.
in_range() {
    [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]] &&
        awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'
}

in_range "$INTERVAL" 0.05 5 || die "LAB_INTERVAL must be from 0.05 to 5 seconds, not '$INTERVAL'"
in_range "$BREAK" 0.5 30 || die "LAB_BREAK must be from 0.5 to 30 seconds, not '$BREAK'"
for prog in select_server select_client; do
    [[ -x $BIN/$prog ]] || die "$BIN/$prog not found: run 'make' first"
done
require_command nft nftables
lab_privileges "$0" "$@"
# Our own namespaces, apart from any lab built by hand with netns.sh
# (set after lab_privileges, which may start this script over, adding it twice).
export LAB_NS_PREFIX=${LAB_NS_PREFIX:-lab}7

# Three messages before the break, the break, three after it.
BREAK_MESSAGES=$(awk -v b="$BREAK" -v i="$INTERVAL" \
    'BEGIN { n = b / i; if (n > int(n)) n = int(n) + 1; print n + 6 }')
# How long the clients may take to finish once the last message is sent:
# TCP may still be retransmitting (the wait doubles each time).
DRAIN_LIMIT=$(awk -v b="$BREAK" 'BEGIN { print int(2 * b) + 10 }')

netns_lab_setup


# seconds_between START END - END - START, two $EPOCHREALTIME values.
seconds_between() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

# sent_so_far - how many messages the sender has written.
sent_so_far() {
    wc -l <"$tmp/sent.log"
}

# sent_between START END - the first and last message the sender wrote
# between two $EPOCHREALTIME values ("" if none).
sent_between() {
    awk -v a="$1" -v b="$2" '$2 > a && $2 < b { if (!first) first = $1; last = $1 }
        END { if (first) print first, last }' "$tmp/sent.log"
}

# at_least N - the sender has written N messages.
at_least() {
    (($(sent_so_far) >= $1))
}

# finished PID - our child PID has exited.
finished() {
    ! running "$1"
}

# accepts - the server's accepted connections so far.
accepts() {
    grep -c '^accepted ' "$tmp/server.out" || true
}

# accepted_more_than N - the server has accepted more than N connections.
accepted_more_than() {
    (($(accepts) > $1))
}

# --- Starting the server, the clients and the sender -------------------------

start_server() {
    # netns.sh execs `ip netns exec`, which execs the server: $! is its PID.
    "$NETNS" exec lnxserver "$BIN/select_server" -p "$PORT" --trace \
        </dev/null >"$tmp/server.out" 2>&1 &
    pids+=($!)
    poll 5 grep -q '^listening on ' "$tmp/server.out" ||
        die "select_server did not start: $(cat "$tmp/server.out")"
    echo "lnxserver: $(head -n 1 "$tmp/server.out"), with --trace"
}

# start_clients PART - a TCP and a UDP select_client on lnxclient, each
# reading its own FIFO; once the TCP one is connected, TCP_IN and UDP_IN are
# this shell's ends of the FIFOs.
start_clients() {
    local part=$1 before
    before=$(accepts)
    mkfifo "$tmp/$part.tcp.in" "$tmp/$part.udp.in"
    "$NETNS" exec lnxclient "$BIN/select_client" -q "$SERVER_IP" "$PORT" \
        <"$tmp/$part.tcp.in" >"$tmp/$part.tcp.out" 2>"$tmp/$part.tcp.err" &
    TCP_PID=$!
    "$NETNS" exec lnxclient "$BIN/select_client" -q -u "$SERVER_IP" "$PORT" \
        <"$tmp/$part.udp.in" >"$tmp/$part.udp.out" 2>"$tmp/$part.udp.err" &
    UDP_PID=$!
    pids+=("$TCP_PID" "$UDP_PID")
    # Read-write opens never block, and both clients were started before
    # them, so neither holds the other's FIFO open.
    exec {TCP_IN}<>"$tmp/$part.tcp.in" {UDP_IN}<>"$tmp/$part.udp.in"
    poll 5 accepted_more_than "$before" ||
        die "the TCP client did not connect: $(cat "$tmp/$part.tcp.err")"
    CLIENT_FD=$(grep '^accepted ' "$tmp/server.out" | tail -n 1 |
        sed 's/.* on fd \([0-9]*\) .*/\1/')
}

# start_sender COUNT - in the background, write COUNT numbered lines, one
# every INTERVAL seconds, to both clients; then close their input.
start_sender() {
    local count=$1
    : >"$tmp/sent.log"
    (
        for ((i = 1; i <= count; i++)); do
            printf 'message %03d\n' "$i" >&"$TCP_IN"
            printf 'message %03d\n' "$i" >&"$UDP_IN"
            echo "$i $EPOCHREALTIME" >>"$tmp/sent.log"
            if ((i < count)); then
                sleep "$INTERVAL"
            fi
        done
    ) &
    SENDER_PID=$!
    pids+=("$SENDER_PID")
    # The sender holds the FIFOs now; its exit is the clients' end of input.
    exec {TCP_IN}>&- {UDP_IN}>&-
}

# finish_part - wait for the sender, then for both clients to finish.
finish_part() {
    local pid status
    wait "$SENDER_PID"
    for pid in "$TCP_PID" "$UDP_PID"; do
        poll "$DRAIN_LIMIT" finished "$pid" ||
            die "a client still runs ${DRAIN_LIMIT}s after the last message"
        status=0
        wait "$pid" || status=$?
        ((status == 0)) || die "select_client exited with status $status: $(cat "$tmp"/*.err)"
    done
}

# --- Reporting -----------------------------------------------------------

# numbers FILE - the message numbers in the echoes in FILE, on one line.
numbers() {
    sed -n 's/^message 0*\([0-9][0-9]*\)$/\1/p' "$1" | tr '\n' ' ' | sed 's/ $//'
}

# report PROTO SENT FILE - "TCP: sent 10, received 10 in order: 1 2 ...",
# and for what is missing, "; lost: 4 5".
report() {
    local proto=$1 sent=$2 got lost order=in
    got=$(numbers "$3")
    # In order: each number greater than the one before.
    awk '{ for (i = 2; i <= NF; i++) if ($i <= $(i - 1)) exit 1 }' <<<"$got" ||
        order="OUT OF"
    lost=$(awk -v n="$sent" -v got="$got" 'BEGIN {
        k = split(got, g, " "); for (i = 1; i <= k; i++) seen[g[i]] = 1
        for (i = 1; i <= n; i++) if (!(i in seen)) { printf "%s%d", sep, i; sep = " " } }')
    printf '  %s: sent %d, received %d %s order: %s' "$proto" "$sent" \
        "$(wc -w <<<"$got")" "$order" "$got"
    if [[ -n $lost ]]; then
        printf '; lost: %s' "$lost"
    fi
    printf '\n'
}

# server_reads FROM_LINE - messages per read() of the TCP client on
# CLIENT_FD, from the server's trace after line FROM_LINE.
server_reads() {
    tail -n "+$(($1 + 1))" "$tmp/server.out" |
        awk -v fd="$CLIENT_FD" -v size="$MESSAGE_BYTES" '
            $1 == "fd" && $2 == fd ":" && $3 == "read" {
                printf "%s%g", sep, $4 / size; sep = " "
                if ($4 / size > most) { most = $4 / size; line = $0 }
            }
            END { printf "\n  (the largest read() carried %g message%s: \"%s\" in the server'"'"'s trace)\n",
                  most, most == 1 ? "" : "s", line }'
}

# counter HOST NAME - a kernel SNMP counter (absolute, nstat history untouched).
counter() {
    on "$1" nstat -asz "$2" | awk -v n="$2" '$1 == n { print $2 }'
}

# --- Part 1: the link fails ----------------------------------------------

"$NETNS" down >/dev/null         # leftovers of an interrupted run
"$NETNS" up
start_server

step "Part 1: the link between the router and the server LAN fails for ${BREAK}s"
echo "look at: which messages come back over TCP and over UDP, in what order,"
echo "  and how many messages each of the server's TCP reads carried"
echo "  sending $BREAK_MESSAGES messages, one every ${INTERVAL}s, over TCP and over UDP"
mark=$(wc -l <"$tmp/server.out")
client_retrans=$(counter lnxclient TcpRetransSegs)
start_clients part1
start_sender "$BREAK_MESSAGES"
poll 30 at_least 3 || die "the sender did not get to message 3"
sleep "$(awk -v i="$INTERVAL" 'BEGIN { print i / 2 }')"
# netns.sh prints a line right after it takes the link down, and another
# right after it brings it up: reading them as they come times the break.
exec {BREAK_OUT}< <(exec "$NETNS" break "$BREAK")
BREAK_PID=$!
pids+=("$BREAK_PID")
read -r -t 5 line <&"$BREAK_OUT" || die "netns.sh break did not start"
link_down=$EPOCHREALTIME
echo "  netns.sh break: $line"
# Partway through the break: what lnxclient's TCP socket holds.
sleep "$(awk -v b="$BREAK" 'BEGIN { print b * 0.6 }')"
on lnxclient ss -Htn state established "( dport = :$PORT )" |
    awk -v size="$MESSAGE_BYTES" '{ printf "  during the break: %d bytes (%g messages) wait in the TCP socket'"'"'s send queue\n", $2, $2 / size }'
read -r -t "$DRAIN_LIMIT" line <&"$BREAK_OUT" || die "netns.sh break did not end"
link_up=$EPOCHREALTIME
echo "  netns.sh break: $line"
exec {BREAK_OUT}<&-
wait "$BREAK_PID"
read -r first_in_break last_in_break < <(sent_between "$link_down" "$link_up") || true
if [[ -n ${first_in_break-} ]]; then
    echo "  sent during the break: messages $first_in_break to $last_in_break"
    # TCP learns that the link is back only when it next resends.
    first_late=$(printf 'message %03d' "$first_in_break")
    if poll "$DRAIN_LIMIT" grep -qx "$first_late" "$tmp/part1.tcp.out"; then
        echo "  TCP: '$first_late' came back $(seconds_between "$link_up" "$EPOCHREALTIME")s after the link was up again"
    fi
else
    echo "  sent during the break: no message (LAB_BREAK is shorter than LAB_INTERVAL)"
fi
finish_part
printf '  TCP segments resent by lnxclient: %d\n' \
    $(($(counter lnxclient TcpRetransSegs) - client_retrans))
report TCP "$BREAK_MESSAGES" "$tmp/part1.tcp.out"
report UDP "$BREAK_MESSAGES" "$tmp/part1.udp.out"
echo "  server's TCP reads, in messages per read():"
server_reads "$mark" | sed '1s/^/    /'
cat <<'EOF'
why: TCP numbers every byte and keeps a copy of each until the other side
  acknowledges it.  During the break nothing is acknowledged, so lnxclient's
  kernel keeps the messages in the socket's send queue and resends the
  oldest, waiting about twice as long each time.  Nothing tells it when the
  link is back: the next resend gets through, and everything follows, in
  order.  TCP is a byte stream: the messages held back travel together, and
  the server reads several at once.
  UDP keeps no copies: each datagram is sent once.  The ones sent while the
  router had no route to 10.10.11.0/24 were dropped there (with an ICMP
  "network unreachable" that a UDP socket ignores) and are gone for good.
EOF

# --- Part 2: random loss ---------------------------------------------------

step "Part 2: the router drops one packet in $LOSS_ONE_IN at random"
echo "look at: TCP still delivers every message in order; count the UDP losses"
mark=$(wc -l <"$tmp/server.out")
start_clients part2
# Connected before the loss starts, so no lost SYN delays the start by 1 s.
on router nft -f - <<EOF
table inet lab {
    chain forward {
        type filter hook forward priority filter; policy accept;
        counter
        numgen random mod $LOSS_ONE_IN 0 counter drop
    }
}
EOF
on router nft list chain inet lab forward | grep 'numgen' |
    sed 's/^[[:space:]]*/  router nft rule: /; s/ counter packets [0-9]* bytes [0-9]*//'
client_retrans=$(counter lnxclient TcpRetransSegs)
server_retrans=$(counter lnxserver TcpRetransSegs)
echo "  sending $LOSS_MESSAGES messages, one every ${INTERVAL}s, over TCP and over UDP"
start_sender "$LOSS_MESSAGES"
finish_part
on router nft list chain inet lab forward | grep -o 'packets [0-9]*' | awk '{ print $2 }' |
    tr '\n' ' ' | awk '{ printf "  the router forwarded %d packets and dropped %d of them\n", $1, $2 }'
printf '  TCP segments resent: %d by lnxclient, %d by lnxserver\n' \
    $(($(counter lnxclient TcpRetransSegs) - client_retrans)) \
    $(($(counter lnxserver TcpRetransSegs) - server_retrans))
report TCP "$LOSS_MESSAGES" "$tmp/part2.tcp.out"
report UDP "$LOSS_MESSAGES" "$tmp/part2.udp.out"
echo "  server's TCP reads, in messages per read():"
server_reads "$mark" | sed '1s/^/    /'
cat <<'EOF'
why: each lost TCP segment (a message or its echo) is missed - no
  acknowledgement comes, or the next segment arrives out of sequence - and
  resent, so TCP delivers every message, in order, some of them late.  A
  lost UDP datagram is simply lost: a message comes back only if it and its
  echo both survive, about 0.8 x 0.8 = 64% of the time.
EOF
