#!/usr/bin/env bash
# 12-udp-reply-address.sh - experiment 12: a UDP server with several
# addresses must answer from the one it was asked on.
#
# 127.0.0.1 and 127.0.0.2 are both addresses of this machine (all of
# 127.0.0.0/8 is loopback).  Two UDP echo servers listen on the wildcard
# address: lab/naive_udp_echo (recvfrom, sendto) and select_server (which
# asks for each datagram's destination with IP_PKTINFO and replies from
# it).  select_client -u, whose socket is connected, asks each of them on
# both addresses; a small unconnected socket then shows where each reply
# really comes from.
#
# Run from anywhere once the programs are built (make all lab).  Takes
# about three seconds, uses 127.0.0.1 and 127.0.0.2 only, needs no root,
# leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=12-udp-reply-address.sh
require_built "make all lab/naive_udp_echo" select_server select_client lab/naive_udp_echo
require_command python3 python3

lab_setup

# ask NAME ADDR PORT - select_client -u sends one line to ADDR PORT;
# show what it printed and its exit status.
ask() {
    local status=0
    cmd "echo 'hello $1' | ./select_client -q -u $2 $3"
    echo "hello $1" | ./select_client -q -u "$2" "$3" >"$tmp/ask.out" 2>&1 || status=$?
    sed 's/^/    /' "$tmp/ask.out"
    say "    (exit status $status)"
}

# who_answers ADDR PORT - an unconnected UDP socket (python3: bash cannot
# do UDP replies) sends one datagram to ADDR PORT and prints the address
# the reply came from.  An unconnected socket accepts replies from anyone.
who_answers() {
    cmd "python3: sendto(('$1', $2)), then recvfrom()  # unconnected"
    python3 - "$1" "$2" <<'EOF' | indent
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"who answers?\n", (sys.argv[1], int(sys.argv[2])))
try:
    data, (host, port) = s.recvfrom(100)
    print(f"sent to {sys.argv[1]}:{sys.argv[2]}, reply from {host}:{port}")
except socket.timeout:
    print("no reply within 2 s")
EOF
}

step "1. Two UDP echo servers, both on the wildcard address 0.0.0.0"
cmd "lab/naive_udp_echo -p 0 &"
spawn lab/naive_udp_echo -p 0 >"$tmp/naive.out" 2>&1 &
pids+=($!)
cmd "./select_server -p 0 -b 0.0.0.0 -q &"
spawn ./select_server -p 0 -b 0.0.0.0 -q </dev/null >"$tmp/ours.out" 2>&1 &
pids+=($!)
wait_5s "the naive server's first line" says "$tmp/naive.out" '^listening on '
wait_5s "select_server's first line" says "$tmp/ours.out" '^listening on '
naive_port=$(listening_port "$tmp/naive.out")
ours_port=$(listening_port "$tmp/ours.out")
head -n 1 "$tmp/naive.out" | sed 's/^/    naive | /'
head -n 1 "$tmp/ours.out" | sed 's/^/    ours  | /'

step "2. 127.0.0.2 is this machine too"
cmd "ip -4 addr show dev lo"
ip -4 addr show dev lo | grep -E 'inet |^[0-9]' | indent
cmd "ip route get 127.0.0.2"
ip route get 127.0.0.2 | head -n 1 | indent
look "lo holds 127.0.0.1/8: every address from 127.0.0.1 to 127.255.255.254 is"
look "local.  127.0.0.1 is the one the kernel prefers as a source."

step "3. Ask both servers on 127.0.0.1"
ask naive 127.0.0.1 "$naive_port"
ask ours 127.0.0.1 "$ours_port"

step "4. Ask both servers on 127.0.0.2"
ask naive 127.0.0.2 "$naive_port"
ask ours 127.0.0.2 "$ours_port"
look "the naive server did answer (its log below says echoed), yet select_client"
look "printed nothing and gave up: the reply did not come from 127.0.0.2."
grep '^echoed ' "$tmp/naive.out" | sed 's/^/    naive | /'

step "5. Where the replies come from: an unconnected socket takes any reply"
who_answers 127.0.0.2 "$naive_port"
who_answers 127.0.0.2 "$ours_port"
look "the naive server answers from 127.0.0.1, the address the kernel picks for"
look "a reply to 127.0.0.1; select_server answers from 127.0.0.2, where it was asked."

step "What it shows"
say "A UDP socket bound to the wildcard address does not know which of its"
say "host's addresses a datagram was sent to, and sendto() lets the kernel pick"
say "the source of the reply from the routing table.  A connected UDP client"
say "takes datagrams from the address it connected to, and drops any other:"
say "the reply from the 'wrong' address is lost, and the client cannot tell"
say "why.  Ask for the destination (IP_PKTINFO, IPV6_RECVPKTINFO) and reply"
say "from it (sendmsg() with the same control message), or bind one socket"
say "to each of the host's addresses (UNP, chapter 22)."
