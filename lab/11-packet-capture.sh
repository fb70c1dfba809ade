#!/usr/bin/env bash
# 11-packet-capture.sh - experiment 11: one echo exchange, packet by packet.
#
# tcpdump captures the loopback traffic of one select_server port while
# select_client connects, sends one line, reads its echo and ends its
# input.  The capture shows the three-way handshake (S, S., .), the data
# and its ACKs (P. and .), and the FIN exchange (F., F., .).  If tshark is
# installed, it summarises the same capture file.
#
# Needs root (capturing packets needs CAP_NET_RAW) and tcpdump
# (apt-get install tcpdump).  Run from anywhere once the programs are built
# (make all).  Takes about a second, uses 127.0.0.1 only, leaves nothing
# behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=11-packet-capture.sh
require_built "" select_server select_client
if ! command -v tcpdump >/dev/null; then
    echo "$PROG: tcpdump is not installed; install it with:" >&2
    echo "    sudo apt-get install tcpdump" >&2
    exit 1
fi
if [[ $(id -u) != 0 ]]; then
    echo "$PROG: capturing packets needs root: sudo $0" >&2
    exit 1
fi

lab_setup

gone() { ! running "$1"; }

# The capture file ends in .pcap: Debian's AppArmor profile for tcpdump
# lets it write only such files.
pcap=$tmp/echo.pcap

# packets - the capture as tcpdump prints it, TCP options cut for width.
packets() {
    tcpdump -r "$pcap" -n 2>/dev/null | sed -E 's/, options \[[^]]*\]//'
}

# capture_complete - both FINs are in the capture, and an ACK after them:
# the last packet of the conversation.
capture_complete() {
    packets | awk '/Flags \[F/ { fins++; next } fins >= 2 && /Flags \[\.\]/ { found = 1 }
                   END { exit !found }'
}

# annotate - one line per packet: number, direction, flags, meaning.
annotate() {
    packets | awk -v port="$port" '
    {
        src = $3; sub(/.*\./, "", src)
        from = (src == port) ? "server" : "client"
        to = (from == "server") ? "client" : "server"
        flags = $7; gsub(/[][,]/, "", flags)
        len = $NF
        if (flags == "S")
            what = "SYN      handshake 1/3: the client asks to connect"
        else if (flags == "S.")
            what = "SYN-ACK  handshake 2/3: the server agrees (its kernel, before accept())"
        else if (flags ~ /F/) {
            fins++
            what = (from == "client") ? \
                "FIN      the client has nothing more to send (end of its stdin)" : \
                "FIN      the server closes its end too"
            if (flags ~ /P/)
                what = what ", with " len " bytes of data"
        } else if (len > 0)
            what = (from == "client") ? \
                "data     the client sends its line: " len " bytes" : \
                "data     the server echoes it: " len " bytes"
        else if (prev == "S.")
            what = "ACK      handshake 3/3: connected"
        else if (fins >= 2)
            what = "ACK      of the last FIN: the client end waits in TIME-WAIT"
        else
            what = "ACK      the " from "'"'"'s kernel: received, up to here"
        printf "%3d  %s > %s  %-5s %s\n", NR, from, to, "[" flags "]", what
        prev = flags
    }'
}

step "1. Start select_server on a port the kernel chooses"
cmd "./select_server -p 0 </dev/null &"
./select_server -p 0 </dev/null >"$tmp/server.log" 2>&1 &
pids+=($!)
wait_until 5 "the server's listening line" says "$tmp/server.log" '^listening on '
port=$(listening_port "$tmp/server.log")
head -n 1 "$tmp/server.log" | sed 's/^/    server | /'

step "2. Start tcpdump on the loopback interface, for this port only"
say "At most 40 packets and at most 20 s; -U --immediate-mode writes each"
say "packet to the file as it arrives, so we can stop tcpdump at any moment."
cmd "timeout 20 tcpdump -i lo -n -U --immediate-mode -c 40 -w echo.pcap 'tcp port $port' &"
timeout 20 tcpdump -i lo -n -U --immediate-mode -c 40 -w "$pcap" "tcp port $port" \
    2>"$tmp/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
wait_until 5 "tcpdump to start capturing" says "$tmp/tcpdump.err" 'listening on'
indent <"$tmp/tcpdump.err"

step "3. One echo exchange: connect, send a line, read the echo, end the input"
mkfifo "$tmp/client.in"
cmd "./select_client 127.0.0.1 $port   (then type: hello, then end the input)"
./select_client 127.0.0.1 "$port" <"$tmp/client.in" >"$tmp/client.out" 2>"$tmp/client.err" &
client_pid=$!
pids+=("$client_pid")
exec {client_in}>"$tmp/client.in"
wait_until 5 "the client to connect" says "$tmp/client.err" '^connected to '
printf 'hello\n' >&"$client_in"
wait_until 5 "the echo" says "$tmp/client.out" '^hello$'
exec {client_in}>&-
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
cmd "tcpdump -r echo.pcap -n     (TCP options cut for width)"
packets | indent
say ""
say "The same packets, explained ([S] SYN, [.] ACK, [P.] PUSH+ACK: data,"
say "[F.] FIN+ACK; every packet after the first carries an ACK):"
annotate | indent
look "the handshake S, S., . ; then data from the client and its ACK, the"
look "echo and its ACK; then one FIN from each side, each acknowledged."
look "seq and ack count bytes: 'seq 1:7' is 6 bytes (hello and a newline),"
look "and 'ack 7' means 'everything before byte 7 arrived'.  A FIN takes one"
look "sequence number too, hence the final 'ack 8'."

step "6. tshark's summary of the same file"
if command -v tshark >/dev/null; then
    cmd "tshark -r echo.pcap -n"
    tshark -r "$pcap" -n 2>/dev/null | indent
    look "the same ten-or-so packets, with tshark's names for the flags."
else
    say "tshark is not installed: skipped.  (apt-get install tshark, then run"
    say "this script again; or open the capture in Wireshark.)"
fi

step "What it shows"
say "connect() is the three-way handshake; the kernel completes it before the"
say "server calls accept().  Every write() becomes data that the other side's"
say "kernel acknowledges, whether or not the program has read it yet.  Each"
say "direction is closed separately: the client's FIN came when its input"
say "ended (shutdown(SHUT_WR)), the server's when it saw EOF and closed.  The"
say "side that closes first - here the client - keeps its end in TIME-WAIT."
