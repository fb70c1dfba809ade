#!/usr/bin/env bash
# 11-packet-capture.sh - experiment 11: an echo conversation, packet by
# packet, as it crosses a router.
#
# On the lab network (lab/netns.sh, prefix ${LAB_NS_PREFIX:-lab}11),
# select_server runs on lnxserver (10.10.11.2) and tcpdump on the router,
# on its port to the client's LAN.  select_client on lnxclient (10.10.12.2)
# connects, sends two lines half a second apart ("hello", then "bye"), reads
# each echo and ends its input.  The capture shows ARP finding the router,
# the three-way handshake with an Ethernet MSS of 1460, each line and its
# echo, and the close.  The script prints the capture, each packet
# explained, a ladder diagram drawn from it (lab/ladder.awk), the ends' TCP
# states according to ss, and, if tshark is installed, tshark's summary.
#
#   lab/11-packet-capture.sh        (as root, or as yourself: see below)
#
# Not run as root, it runs itself again in a user namespace of its own
# (lib.sh, lab_privileges), where everything it builds is private and goes
# with it; where user namespaces are disabled it says why and exits with 4.
# Needs tcpdump (apt-get install tcpdump) and the programs built (make
# all).  About 2 seconds; the namespaces are removed at the end, even on
# Ctrl-C.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NETNS=$LAB/netns.sh
cd "$LAB/.."

PROG=11-packet-capture.sh
SERVER_IP=10.10.11.2
PORT=9877
PAUSE=0.5               # seconds between the echo of one line and the next

require_built "" select_server select_client
if ! command -v tcpdump >/dev/null; then
    echo "$PROG: tcpdump is not installed; install it with:" >&2
    echo "    sudo apt-get install tcpdump" >&2
    exit 1
fi
lab_privileges "$0" "$@"
# Our own namespaces, apart from any lab built by hand (set after
# lab_privileges, which may start this script over, adding it twice).
export LAB_NS_PREFIX=${LAB_NS_PREFIX:-lab}11
CAPTURE_IF=$LAB_NS_PREFIX-rtc   # the router's port on the client's LAN

netns_lab_setup

gone() { ! running "$1"; }

# The capture file ends in .pcap: Debian's AppArmor profile for tcpdump
# lets it write only such files.
pcap=$tmp/echo.pcap

# packets - the capture as tcpdump prints it; of the TCP options only the
# MSS is kept, for width.
packets() {
    tcpdump -r "$pcap" -n 2>/dev/null |
        sed -E 's/, options \[([^m][^]]*)?\]//; s/, options \[(mss [0-9]+)[^]]*\]/, options [\1,...]/'
}

# conversation - one line per TCP segment: sender, flags, seq, ack, length
# ("client P. 1:7 1 6"; "-" for what a segment does not carry).
conversation() {
    packets | awk -v port="$PORT" '$2 == "IP" {
        from = ($3 ~ "\\." port "$") ? "server" : "client"
        flags = $7; gsub(/[][,]/, "", flags)
        seq = "-"; ack = "-"
        for (i = 8; i < NF; i++) {
            if ($i == "seq") { seq = $(i + 1); sub(/,$/, "", seq) }
            if ($i == "ack") { ack = $(i + 1); sub(/,$/, "", ack) }
        }
        print from, flags, seq, ack, $NF
    }'
}

# capture_complete - both FINs are in the capture, and an ACK after them:
# the last packet of the conversation.
capture_complete() {
    conversation | awk '$2 ~ /F/ { fins++; next } fins >= 2 && $2 == "." { found = 1 }
                        END { exit !found }'
}

# annotate - one line per packet: number, direction, flags, meaning.
annotate() {
    packets | awk -v port="$PORT" '
    $2 == "ARP," {
        n++
        if ($3 == "Request")
            printf "%3d  client > all     ARP   who has %s (the router)?\n", n, $5
        else
            printf "%3d  router > client  ARP   %s is at %s\n", n, $4, substr($6, 1, length($6) - 1)
        next
    }
    $2 == "IP" {
        n++
        from = ($3 ~ "\\." port "$") ? "server" : "client"
        to = (from == "server") ? "client" : "server"
        flags = $7; gsub(/[][,]/, "", flags)
        len = $NF; ack = ""; seq = ""
        for (i = 8; i < NF; i++) {
            if ($i == "ack") { ack = $(i + 1); sub(/,$/, "", ack) }
            if ($i == "seq") { seq = $(i + 1); sub(/,$/, "", seq) }
        }
        # Does this segment acknowledge data that no ACK has covered yet?
        acks_new = (flags !~ /S/ && ack != "" && ack + 0 > acked[from] + 0 && sent_to[from] + 0 >= ack + 0)
        if (flags !~ /S/ && ack != "" && ack + 0 > acked[from] + 0)
            acked[from] = ack
        if (flags == "S")
            what = "SYN      handshake 1/3: the client asks to connect"
        else if (flags == "S.")
            what = "SYN-ACK  handshake 2/3: the server'"'"'s kernel agrees (before accept())"
        else if (flags ~ /F/) {
            what = (from == "client") ? \
                "FIN      the client has nothing more to send (end of its stdin)" : \
                "FIN      the server closes its end too"
            if (from == "server" && fin_client != "" && ack + 0 == fin_client + 1)
                what = what ", and acknowledges the client'"'"'s FIN"
            if (from == "client")
                fin_client = seq
            fins++
        } else if (len > 0) {
            what = (from == "client") ? \
                "data     a line from the client: " len " bytes" : \
                "data     its echo: " len " bytes"
            if (acks_new)
                what = what ", carrying the ACK of the line (delayed ACK)"
        } else if (prev == "S.")
            what = "ACK      handshake 3/3: connected"
        else if (fins >= 2)
            what = "ACK      of the server'"'"'s FIN: the client end is in TIME_WAIT"
        else if (fins == 1)
            what = "ACK      of the client'"'"'s FIN, on its own"
        else
            what = "ACK      the " from "'"'"'s kernel: received, at once (quick ACK)"
        # Remember how far each side'"'"'s data reaches, for acks_new above.
        if (len > 0) {
            split(seq, part, ":")
            sent_to[to] = part[2]
        }
        printf "%3d  %s > %s  %-5s %s\n", n, from, to, "[" flags "]", what
        prev = flags
    }'
}

# how_acked - for each line the client sent, how the server acknowledged
# it, and how the close went, in a sentence each.
how_acked() {
    conversation | awk '
        { from[NR] = $1; flags[NR] = $2; seq[NR] = $3; ack[NR] = $4; len[NR] = $5 }
        END {
            for (i = 1; i <= NR; i++) {
                if (from[i] == "client" && len[i] > 0) {
                    lines++
                    split(seq[i], part, ":")
                    for (j = i + 1; j <= NR; j++)
                        if (from[j] == "server" && ack[j] + 0 >= part[2] + 0)
                            break
                    how = "never acknowledged"
                    if (j <= NR && flags[j] ~ /F/)
                        how = "acknowledged by the server'"'"'s FIN"
                    else if (j <= NR && len[j] > 0)
                        how = "acknowledged by its echo (a delayed ACK, riding on data)"
                    else if (j <= NR)
                        how = "acknowledged at once, by an ACK of its own (a quick ACK)"
                    printf "line %d (%d bytes): %s\n", lines, len[i], how
                }
                if (flags[i] ~ /F/ && !first_fin)
                    first_fin = i
            }
            n = NR - first_fin + 1
            printf "the close: %d segments", n
            if (n == 3)
                print "; the server'"'"'s FIN also acknowledges the client'"'"'s"
            else
                print "; the server'"'"'s kernel acknowledged the client'"'"'s FIN before the server closed"
        }'
}

# count_segments - how many TCP segments the handshake, the two lines and
# the close took: "13 TCP segments: 3 to connect, 7 for the two lines, 3 to close".
count_segments() {
    conversation | awk '
        closing || $2 ~ /F/ { closing = 1; close_n++; next }
        $2 ~ /S/ || (prev ~ /S/ && $2 == ".") { open_n++; prev = $2; next }
        { data_n++; prev = $2 }
        END { printf "%d TCP segments: %d to connect, %d for the two lines, %d to close\n",
                     open_n + data_n + close_n, open_n, data_n, close_n }'
}

step "1. Build the lab network and start select_server on lnxserver"
cmd "lab/netns.sh up"
"$NETNS" down >/dev/null         # leftovers of an interrupted run
"$NETNS" up | indent
cmd "lab/netns.sh exec lnxserver ./select_server -p $PORT </dev/null &"
# netns.sh execs `ip netns exec`, which execs the server: $! is its PID.
"$NETNS" exec lnxserver ./select_server -p "$PORT" </dev/null >"$tmp/server.log" 2>&1 &
pids+=($!)
wait_until 5 "the server's listening line" says "$tmp/server.log" '^listening on '
head -n 1 "$tmp/server.log" | sed 's/^/    server | /'

step "2. Start tcpdump on the router, on its port to the client's LAN ($CAPTURE_IF)"
say "ARP and this port only, at most 40 packets and 20 s; -U --immediate-mode"
say "writes each packet to the file as it arrives, so we can stop it at any time."
cmd "lab/netns.sh exec router timeout 20 tcpdump -i $CAPTURE_IF -n -U --immediate-mode -c 40 -w echo.pcap 'arp or tcp port $PORT' &"
"$NETNS" exec router timeout 20 tcpdump -i "$CAPTURE_IF" -n -U --immediate-mode -c 40 \
    -w "$pcap" "arp or tcp port $PORT" 2>"$tmp/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
wait_until 5 "tcpdump to start capturing" says "$tmp/tcpdump.err" 'listening on'
indent <"$tmp/tcpdump.err"

step "3. On lnxclient: connect, send two lines, read each echo, end the input"
mkfifo "$tmp/client.in"
cmd "lab/netns.sh exec lnxclient ./select_client $SERVER_IP $PORT"
say "    (then type: hello; half a second after its echo: bye; then end the input)"
"$NETNS" exec lnxclient ./select_client "$SERVER_IP" "$PORT" \
    <"$tmp/client.in" >"$tmp/client.out" 2>"$tmp/client.err" &
client_pid=$!
pids+=("$client_pid")
exec {client_in}>"$tmp/client.in"
held+=("$client_in")
wait_until 5 "the client to connect" says "$tmp/client.err" '^connected to '
printf 'hello\n' >&"$client_in"
wait_until 5 "the first echo" says "$tmp/client.out" '^hello$'
# Not for synchronisation: a pause, as between two lines a person types,
# long enough for the kernels' delayed-ACK timers (at most 200 ms).
sleep "$PAUSE"
printf 'bye\n' >&"$client_in"
wait_until 5 "the second echo" says "$tmp/client.out" '^bye$'
release "$client_in"
wait_until 5 "the client to finish" gone "$client_pid"
status=0
wait "$client_pid" || status=$?
sed 's/^/    client | /' "$tmp/client.err"
sed 's/^/    client | /' "$tmp/client.out"
say "    (select_client exited with status $status)"
sed 's/^/    server | /' "$tmp/server.log" | tail -n 2

step "4. Stop tcpdump (by its PID) once the last ACK is in the file"
wait_until 5 "the last packet of the conversation" capture_complete
cmd "kill $tcpdump_pid"
kill "$tcpdump_pid"
wait "$tcpdump_pid" || true
tail -n 3 "$tmp/tcpdump.err" | indent

step "5. What tcpdump saw"
cmd "tcpdump -r echo.pcap -n     (of the TCP options, only the MSS is kept)"
packets | indent
say ""
say "The same packets, explained ([S] SYN, [.] ACK, [P.] PUSH+ACK: data,"
say "[F.] FIN+ACK; every TCP segment after the first carries an ACK):"
annotate | indent
say ""
say "    $(count_segments)"
look "ARP first: lnxclient must learn the router's MAC address before the SYN"
look "can leave.  mss 1460 in both SYNs: Ethernet's 1500-byte MTU, less 40 bytes"
look "of IP and TCP headers (on loopback, whose MTU is 65536, a SYN says mss 65495)."
how_acked | while IFS= read -r line; do look "$line"; done

step "6. The same conversation as a ladder diagram (lab/ladder.awk)"
cmd "tcpdump -r echo.pcap -n -tt | awk -f lab/ladder.awk"
tcpdump -r "$pcap" -n -tt 2>/dev/null | awk -f "$LAB/ladder.awk" | indent
look "each state is worked out from the segments, as RFC 9293's state diagram"
look "says; the kernel agrees, as ss shows:"
cmd "lab/netns.sh exec lnxclient ss -tan    and the same on lnxserver"
"$NETNS" exec lnxclient ss -tan "( dport = :$PORT )" | sed 's/^/    lnxclient | /'
"$NETNS" exec lnxserver ss -tan "( sport = :$PORT )" | sed 's/^/    lnxserver | /'

step "7. tshark's summary of the same file"
if command -v tshark >/dev/null; then
    cmd "tshark -r echo.pcap -n"
    tshark -r "$pcap" -n 2>/dev/null | indent
    look "the same packets, with tshark's names for the flags and the MSS in full."
else
    say "tshark is not installed: skipped.  (apt-get install tshark, then run"
    say "this script again; or open the capture in Wireshark.)"
fi

step "What it shows"
say "connect() is the three-way handshake; the kernel completes it before the"
say "server calls accept().  Every write() becomes data that the other side's"
say "kernel acknowledges, whether or not the program has read it yet: at once"
say "while the connection is new, later (riding on the reply) once the kernel"
say "sees an interactive exchange.  Each direction is closed separately: the"
say "client's FIN came when its input ended (shutdown(SHUT_WR)), the server's"
say "when it read EOF and closed.  The side that closed first - here the"
say "client - keeps its end in TIME_WAIT."
