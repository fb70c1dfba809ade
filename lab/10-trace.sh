#!/usr/bin/env bash
# lab/10-trace.sh - read select()'s own story: with --trace the server
# prints every select() call before and after, so you can watch the read
# set grow and shrink as clients come and go, the write set appear only
# while output is pending, and timeout=none while nothing is due.
#
# Run it from anywhere once the programs are built (make).  It starts its
# own server on a port the kernel chooses, talks to it over loopback, stops
# everything it started, and takes about a second.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=${0##*/}
require_built "" select_server select_client

lab_setup

log=$tmp/server.out

# since_mark ERE - a line printed since the last mark matches ERE.
since_mark() {
    tail -n "+$((mark + 1))" "$log" | grep -qE -- "$1"
}

# settled ERE - since the last mark, a line matched ERE and the server
# has gone back to sleep in select() after it.
settled() {
    tail -n "+$((mark + 1))" "$log" |
        awk -v re="$1" '$0 ~ re { seen = 1; next } seen && /^select\(/ { ok = 1 } END { exit !ok }'
}

# show_trace - the server's lines since the last mark; then a new mark.
mark=0
show_trace() {
    local total
    total=$(wc -l <"$log")
    sed -n "$((mark + 1)),${total}p" "$log" | sed 's/^/  server | /'
    mark=$total
}

# first_write FD - the number (counted from the mark) of the first select()
# line with FD in its write set; fails if there is none yet.
first_write() {
    tail -n "+$((mark + 1))" "$log" |
        awk -v fd="$1" '/^select\(/ && in_set($0, "write", fd) { print NR; found = 1; exit }
                        END { exit !found }
                        function in_set(line, set, fd,   s, n, a, i) {
                            s = line; sub(".*" set "=[{]", "", s); sub("[}].*", "", s)
                            n = split(s, a, ",")
                            for (i = 1; i <= n; i++) if (a[i] == fd) return 1
                            return 0
                        }'
}

# first_throttled FD - the same for the first select() line with FD in its
# write set but not in its read set.
first_throttled() {
    tail -n "+$((mark + 1))" "$log" |
        awk -v fd="$1" '/^select\(/ && in_set($0, "write", fd) && !in_set($0, "read", fd) {
                            print NR; found = 1; exit }
                        END { exit !found }
                        function in_set(line, set, fd,   s, n, a, i) {
                            s = line; sub(".*" set "=[{]", "", s); sub("[}].*", "", s)
                            n = split(s, a, ",")
                            for (i = 1; i <= n; i++) if (a[i] == fd) return 1
                            return 0
                        }'
}

# excerpt FROM TO - lines FROM to TO (counted from the mark) of the log.
excerpt() {
    tail -n "+$((mark + 1))" "$log" | sed -n "$1,$2p" | sed 's/^/  server | /'
}

# accepted_fd - the fd of the newest accepted client.
accepted_fd() {
    grep '^accepted ' "$log" | tail -n 1 | sed 's/.* on fd \([0-9]*\) .*/\1/'
}

# read_set - the read set of the newest select() call, e.g. {0,3,5,6}.
read_set() {
    grep '^select(' "$log" | tail -n 1 | sed 's/.* read=\({[^}]*}\).*/\1/'
}

step "1. A server with --trace: every select() call, before and after"
mkfifo "$tmp/console"
spawn ./select_server -p 0 -b 0.0.0.0 --trace --read-size 16384 <"$tmp/console" \
    >"$log" 2>"$tmp/server.err" &
server_pid=$!
pids+=("$server_pid")
exec {console}>"$tmp/console"
held+=("$console")
wait_5s "the first select() line" grep -q '^select(' "$log"
port=$(listening_port "$log")
show_trace
base=$(read_set)
tcp_fd=$(ss -Hltnp "( sport = :$port )" | sed -n 's/.*fd=\([0-9]*\).*/\1/p')
udp_fd=$(ss -Hlunp "( sport = :$port )" | sed -n 's/.*fd=\([0-9]*\).*/\1/p')
pipe_fd=$(find "/proc/$server_pid/fd" -lname 'pipe:*' -printf '%f\n' | sort -n | head -n 1)
say "What is behind each number:"
say "  \$ ls -l /proc/$server_pid/fd      (trimmed: fd -> what it is)"
find "/proc/$server_pid/fd" -mindepth 1 -printf '%f -> %l\n' | sort -n | sed 's/^/  /'
say "  \$ ss -tulnp 'sport = :$port'"
ss -tulnp "sport = :$port" | sed 's/ *$//; s/^/  /'
say ""
say "Look at: read=$base - the descriptors select() watches for input:"
say "  0 = the console (stdin), $pipe_fd = the self-pipe's read end (a signal writes"
say "  a byte there), $tcp_fd = the TCP listener, $udp_fd = the UDP socket.  The other"
say "  open descriptors (stdout, stderr, the pipe's write end, a spare one kept"
say "  for EMFILE) are never watched."
say "  nfds is the highest watched descriptor plus one: select() scans 0..nfds-1."
say "  write={}: no output is pending for anyone, so no write interest."
say "  timeout=none: nothing is due, so select() sleeps until a descriptor is"
say "  ready - no periodic wake-ups."

step "2. Client a connects: the listener is ready, the read set grows"
mark=$(wc -l <"$log")
mkfifo "$tmp/a.in" "$tmp/b.in"
exec {a_in}<>"$tmp/a.in"
held+=("$a_in")
spawn ./select_client -q 127.0.0.1 "$port" <"$tmp/a.in" >"$tmp/a.out" 2>"$tmp/a.err" &
pids+=($!)
wait_5s "a's accept" settled '^accepted '
a_fd=$(accepted_fd)
show_trace
say "Look at: '-> 1 ready: read={$tcp_fd}': the listener is readable, which means"
say "  a connection waits in the accept queue; accept() gives it fd $a_fd."
say "  The next call watches $(read_set): fd $a_fd joined the read set, and nfds"
say "  grew to $((a_fd + 1)).  The sets are rebuilt from the client table every pass."

step "3. Client a types 'hello': its fd is ready, the echo goes out at once"
mark=$(wc -l <"$log")
printf 'hello\n' >&"$a_in"
wait_5s "a's echo" grep -qx hello "$tmp/a.out"
wait_5s "the read of a's line" settled "^fd $a_fd: read "
show_trace
say "Look at: 'read={$a_fd}' after the call: a's socket has data.  One read() of"
say "  6 bytes ('hello' and the newline), sent back at once with send().  The"
say "  socket took all of it, so nothing is pending and the write set stays {}."

step "4. Client b connects: a second client fd in the read set"
mark=$(wc -l <"$log")
exec {b_in}<>"$tmp/b.in"
held+=("$b_in")
spawn ./select_client -q 127.0.0.1 "$port" <"$tmp/b.in" >"$tmp/b.out" 2>"$tmp/b.err" &
pids+=($!)
wait_5s "b's accept" settled '^accepted '
b_fd=$(accepted_fd)
show_trace
say "Look at: read=$(read_set), nfds=$((b_fd + 1)).  One thread, one select(),"
say "  and each new client is one more bit in the read set."

step "5. Client a leaves: its EOF is 'readable' too, then it leaves the set"
mark=$(wc -l <"$log")
release "$a_in"
wait_5s "a's close" settled "^closed fd $a_fd "
show_trace
say "Look at: 'read={$a_fd}' although a sent no data: a FIN makes the socket"
say "  readable, and read() returns 0 (end of file).  The server closes fd $a_fd,"
say "  and the next call no longer watches it: read=$(read_set).  nfds stays"
say "  $((b_fd + 1)) while fd $b_fd is the highest."

step "6. Client b leaves: back to where we started"
mark=$(wc -l <"$log")
release "$b_in"
wait_5s "b's close" settled "^closed fd $b_fd "
show_trace
say "Look at: read=$(read_set) and nfds back to its first value.  The highest"
say "  descriptor is recomputed on every pass; a maxfd that only grew would"
say "  make select() scan closed descriptors forever."

step "7. Nobody does anything for half a second"
mark=$(wc -l <"$log")
sleep 0.5
quiet=$(($(wc -l <"$log") - mark))
say "  new trace lines in 0.5 s: $quiet"
say "Look at: nothing.  With timeout=none the server sleeps inside select()"
say "  and costs no CPU until a descriptor is ready.  (With --idle-timeout the"
say "  timeout shows the time left until the nearest client's deadline.)"

step "8. A peer that sends without reading: the write set appears"
say "This script becomes the peer: bash's /dev/tcp, and head writing 64 MiB of"
say "zeros into it while nobody reads the echo."
mark=$(wc -l <"$log")
exec {peer}<>"/dev/tcp/127.0.0.1/$port"
held+=("$peer")
spawn head -c 64M /dev/zero >&"$peer" &
head_pid=$!
pids+=("$head_pid")
wait_5s "the peer's accept" since_mark '^accepted '
p_fd=$(accepted_fd)
wait_5s "fd $p_fd in the write set" first_write "$p_fd"
wait_5s "fd $p_fd out of the read set" first_throttled "$p_fd"
sleep 0.1
lines=$(($(wc -l <"$log") - mark))
first_w=$(first_write "$p_fd")
first_t=$(first_throttled "$p_fd")
say "  ($lines trace lines so far; the interesting ones:)"
excerpt 1 6
say "  ..."
excerpt $((first_w - 3)) $((first_w + 2))
say "  ..."
excerpt $((first_t - 3)) $((first_t + 1))
say "Look at: at first, each pass reads 16 KiB (--read-size 16384 here; the"
say "  default, 512 KiB, would fill the buffer in one go) and sends it back."
say "  Once the peer's receive buffer and the server's send buffer are full,"
say "  send() takes only part: the rest waits in the server's buffer, and"
say "  write={$p_fd} asks select() to say when the socket can take more.  When"
say "  256 KiB are pending, fd $p_fd leaves the READ set: the server stops reading"
say "  a client that does not read its echo (backpressure).  The write set"
say "  stays, but the socket never becomes writable, so select() sleeps."
mark=$(wc -l <"$log")
kill "$head_pid"
wait "$head_pid" 2>/dev/null || true
release "$peer"
wait_5s "the peer's close" settled "^closed fd $p_fd "
say ""
say "The peer closes with unread data, so its kernel sends RST:"
show_trace
say "Look at: 'write={$p_fd}' ready: an error (here the RST) makes a socket"
say "  writable, so that the next send() can report it.  send() fails, and the"
say "  server closes that client only (reason: reset)."

step "9. The operator types 'quit'"
mark=$(wc -l <"$log")
printf 'quit\n' >&"$console"
wait "$server_pid" && status=0 || status=$?
show_trace
say "  (the server exited with status $status)"
say "Look at: the console's line arrived as 'read={0}'.  quit closes the"
say "  listener; with no client output left to flush, the loop ends at once,"
say "  without another select() call."
