#!/usr/bin/env bash
# 06-stream-vs-datagram.sh - experiment 6: TCP is a byte stream, UDP keeps
# messages.
#
# One select_server with --read-size 50 (each read() or recvmsg() asks for
# at most 50 bytes) and --trace (it logs "fd N: read M bytes" after every
# read).  Over TCP, one 100-byte write is read as 50 + 50, and five 10-byte
# writes that arrive while nobody reads come out of one read.  Over UDP,
# each 100-byte datagram is cut to 50: the rest is gone, and the log says
# so.
#
# Run from anywhere once the programs are built (make all).  Takes about a
# second, uses 127.0.0.1 only, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=06-stream-vs-datagram.sh
require_built "" select_server select_client

lab_setup

log=$tmp/server.log
# server_says ERE - a line of the server's log matches.
server_says() { grep -qE -- "$1" "$log"; }
# log_lines - how many lines the server has logged so far.
log_lines() { wc -l <"$log"; }
# says_since N ERE [COUNT] - at least COUNT (1) lines after line N match.
says_since() {
    (($(tail -n "+$(($1 + 1))" "$log" | grep -cE -- "$2") >= ${3:-1}))
}
# show_reads FROM - the read and datagram lines logged after line FROM.
show_reads() {
    tail -n "+$(($1 + 1))" "$log" |
        grep -E '^(accepted |fd [0-9]+: read |udp |closed )' | sed 's/^/    server | /'
}
# newest_fd - the fd of the newest accepted client.
newest_fd() {
    grep '^accepted ' "$log" | tail -n 1 | sed 's/.* on fd \([0-9]*\) .*/\1/'
}
# queued BYTES - the server's end of the connection holds BYTES unread.
queued() {
    [[ $(ss -Htn state established "( sport = :$port )" | awk '{ print $1 }') == "$1" ]]
}

step "1. Start select_server --read-size 50 --trace on a port the kernel chooses"
mkfifo "$tmp/console"
cmd "./select_server -p 0 --read-size 50 --trace"
./select_server -p 0 --read-size 50 --trace <"$tmp/console" >"$log" 2>&1 &
pids+=($!)
exec {console}>"$tmp/console"
wait_until 5 "the server's listening line" server_says '^listening on '
port=$(listening_port "$log")
head -n 1 "$log" | sed 's/^/    server | /'
say "Every read() of a TCP socket and every recvmsg() of the UDP socket now"
say "asks for at most 50 bytes.  The trace logs each read as 'fd N: read M bytes'."

step "2. TCP: one write() of 100 bytes"
say "bash opens a TCP connection; each printf into it is exactly one write()."
msg100=$(printf 'a%.0s' {1..50})$(printf 'b%.0s' {1..50})
mark=$(log_lines)
cmd "exec {conn}<>/dev/tcp/127.0.0.1/$port"
exec {conn}<>"/dev/tcp/127.0.0.1/$port"
cmd "printf '%s' 'aaaa...(50 a)bbbb...(50 b)' >&\$conn      # 100 bytes, one write"
printf '%s' "$msg100" >&"$conn"
read -r -N 100 -t 5 -u "$conn" echo1 || { echo "$PROG: no echo within 5 s" >&2; exit 1; }
exec {conn}>&-
wait_until 5 "the server to close the first connection" says_since "$mark" '^closed '
cfd=$(newest_fd)
show_reads "$mark"
say "    echo received: ${#echo1} bytes, $( [[ $echo1 == "$msg100" ]] && echo identical || echo DIFFERENT)"
look "one write of 100 bytes, two reads of 50 ('fd $cfd: read 50 bytes' twice),"
look "and the echo is still the 100 bytes, in order: TCP delivers bytes, not writes."

step "3. TCP: five writes of 10 bytes, sent while the server is not reading"
say "The console command 'pause' stops accept(), like a server busy elsewhere."
say "The connection completes in the kernel's backlog, and whatever the client"
say "writes piles up in the socket's receive queue, one byte stream."
mark=$(log_lines)
cmd "pause   (on the server's console)"
echo pause >&"$console"
wait_until 5 "the server to pause" server_says '^paused'
exec {conn}<>"/dev/tcp/127.0.0.1/$port"
for i in 1 2 3 4 5; do
    cmd "printf 'message $i\\n' >&\$conn      # 10 bytes, one write"
    printf 'message %d\n' "$i" >&"$conn"
done
wait_until 5 "50 bytes waiting in the socket" queued 50
cmd "ss -tn 'sport = :$port'"
ss -tn "sport = :$port" | indent
look "Recv-Q 50: five writes wait as 50 bytes in one queue."
cmd "resume"
echo resume >&"$console"
wait_until 5 "the server to read them" says_since "$mark" '^fd [0-9]+: read 50 bytes$'
read -r -N 50 -t 5 -u "$conn" echo2 || { echo "$PROG: no echo within 5 s" >&2; exit 1; }
exec {conn}>&-
wait_until 5 "the server to close the second connection" says_since "$mark" '^closed '
cfd=$(newest_fd)
show_reads "$mark"
look "five writes, ONE read: 'fd $cfd: read 50 bytes' - the message boundaries are gone."
say "    the echo, as it came back:"
printf '%s' "$echo2" | indent

step "4. UDP: two datagrams of 100 bytes"
say "select_client -u sends each line as one datagram (without the newline):"
say "50 'a' + 50 'b', then 50 'c' + 50 'd'."
mark=$(log_lines)
msg100b=$(printf 'c%.0s' {1..50})$(printf 'd%.0s' {1..50})
cmd "printf 'aaa..bbb\\nccc..ddd\\n' | ./select_client -q -u 127.0.0.1 $port"
printf '%s\n%s\n' "$msg100" "$msg100b" | ./select_client -q -u 127.0.0.1 "$port" >"$tmp/udp.out"
wait_until 5 "the truncation notices" says_since "$mark" ' truncated ' 2
show_reads "$mark"
say "    the replies, one line each:"
indent <"$tmp/udp.out"
look "each recvmsg() took ONE datagram and kept its first 50 bytes; MSG_TRUNC"
look "told the server the rest was lost.  The b's and d's never come back: the"
look "second recvmsg() got the next datagram, not the tail of the first."

step "What it shows"
say "TCP is a byte stream: the receiver's read() returns whatever bytes have"
say "arrived, up to the size asked for.  One write can take several reads, and"
say "several writes can come out of one read.  A protocol over TCP needs its own"
say "framing (a newline, a length prefix) to find its messages again."
say "UDP keeps each datagram whole or not at all: one recvmsg() is one datagram,"
say "and a buffer too small for it loses the rest for good."
