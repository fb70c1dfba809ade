#!/usr/bin/env bash
# 05-byte-order.sh - experiment 5: what a forgotten htons() does to a port.
#
# lab/byteorder is a tiny server with one deliberate bug: it puts the port
# number into sin_port without htons().  We ask it for port 9877 and look
# at the port the kernel really bound (its own getsockname() and ss), do the
# byte arithmetic, and show that a client dialling 9877 is refused while
# the byte-swapped port answers.  Never a switch in select_server: the
# reference programs always convert.
#
# Run from anywhere once the programs are built (make all lab/byteorder).
# Takes about a second, uses 127.0.0.1 only, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=05-byte-order.sh
require_built "make all lab/byteorder" select_client lab/byteorder

lab_setup

# swap16 N - N with its two bytes exchanged: what the kernel reads back.
swap16() {
    echo $(((($1 & 0xff) << 8) | ($1 >> 8)))
}

# port_free N - no TCP socket of any state uses local port N.
port_free() {
    [[ -z $(ss -Htan "sport = :$1") ]]
}

# started - the byteorder server has printed its listening line, or exited.
started() {
    grep -q '^listening on ' "$tmp/server.out" || ! running "$server_pid"
}

step "1. The bug, in lab/byteorder.c"
cmd "grep -n -B1 'THE BUG:' lab/byteorder.c"
grep -n -B1 'THE BUG:' lab/byteorder.c | indent
say "sin_port must hold the port in network byte order (big-endian, high byte"
say "first).  htons() - host to network, short - converts; here it is missing."
say "The address on the line above does get its htonl(): only the port is wrong."

step "2. Start it, asking for port 9877 (or the next free one)"
# A port is usable when neither it nor its byte-swapped twin is taken; a
# bind that fails anyway (someone was faster) moves on to the next one.
asked='' bound=''
for candidate in {9877..9886}; do
    swapped=$(swap16 "$candidate")
    if ! port_free "$candidate" || ! port_free "$swapped"; then
        say "    ($candidate or $swapped is in use: trying the next port)"
        continue
    fi
    : >"$tmp/server.out"
    lab/byteorder "$candidate" >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    pids+=("$server_pid")
    wait_until 5 "lab/byteorder to start" started
    if grep -q '^listening on ' "$tmp/server.out"; then
        asked=$candidate
        break
    fi
    wait "$server_pid" || true
    sed 's/^/    /' "$tmp/server.err"
    say "    (trying the next port)"
done
if [[ -z $asked ]]; then
    echo "$PROG: ports 9877-9886 or their byte-swapped twins are all taken" >&2
    exit 1
fi
cmd "lab/byteorder $asked &"
indent <"$tmp/server.out"
bound=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/server.out")
look "it asked for $asked, but getsockname() reports port $bound."

step "3. The kernel's view: who listens on which port"
cmd "ss -ltnp 'sport = :$bound'"
ss -ltnp "sport = :$bound" | indent
cmd "ss -ltnp 'sport = :$asked'"
ss -ltnp "sport = :$asked" | indent
look "byteorder (pid $server_pid) listens on $bound; nothing listens on $asked."

step "4. The arithmetic"
hi=$((asked >> 8)) lo=$((asked & 0xff))
printf '    %d = 0x%04x: high byte 0x%02x, low byte 0x%02x\n' "$asked" "$asked" "$hi" "$lo"
printf '    sin_port = %d on a little-endian CPU: bytes in memory %02x %02x\n' "$asked" "$lo" "$hi"
printf '    the kernel reads them as network order:  0x%02x%02x = %d\n' "$lo" "$hi" "$(swap16 "$asked")"
if ((bound == $(swap16 "$asked"))); then
    look "the bound port $bound is exactly $asked with its two bytes swapped."
elif ((bound == asked)); then
    look "no swap: this CPU is big-endian, host order IS network order, and"
    look "the bug hides here - until the code runs on a little-endian machine."
else
    echo "$PROG: bound port $bound is neither $asked nor its swap" >&2
    exit 1
fi

step "5. A client dials the port the programmer meant: $asked"
cmd "./select_client 127.0.0.1 $asked </dev/null"
status=0
./select_client 127.0.0.1 "$asked" </dev/null >"$tmp/c1.out" 2>"$tmp/c1.err" || status=$?
indent <"$tmp/c1.err"
say "    (exit status $status)"
if ((status != 2)); then
    echo "$PROG: expected select_client to fail to connect (status 2)" >&2
    exit 1
fi
look "refused: the kernel answered the SYN with a reset, as nothing listens on $asked."

step "6. The byte-swapped port answers"
cmd "./select_client -q 127.0.0.1 $bound </dev/null"
./select_client -q 127.0.0.1 "$bound" </dev/null | indent

step "What it shows"
say "Port numbers (and IPv4 addresses) travel in network byte order.  Every"
say "value you copy into a sockaddr needs htons()/htonl(), and every value you"
say "read out of one needs ntohs()/ntohl().  Forget one on a little-endian"
say "machine and the server listens somewhere else, silently: bind() succeeds,"
say "only the clients are refused.  The compiler cannot help - both are plain"
say "16-bit integers - but ss, netstat or getsockname() show the truth."
