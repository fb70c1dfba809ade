#!/usr/bin/env bash
# 20-bind-without-listen.sh - experiment 20: bind() without listen().
#
# lab/bug_no_listen binds 127.0.0.1:PORT, prints "listening on", and calls
# accept() without ever calling listen().  accept() fails with EINVAL; ss
# and netstat list nothing on the port, yet the process holds a socket
# bound to it; select_client is refused at once, because the kernel answers
# its SYN with a RST (the TcpOutRsts counter, and as root a capture, show
# it).  A second server then binds the same port: without SO_REUSEADDR it
# gets EADDRINUSE; with it, as bug_no_listen has it too, Linux lets it
# bind, and its listen() makes it the port's server.
#
# Run from anywhere once the programs are built (make all
# lab/bug_no_listen).  Takes about a second, uses 127.0.0.1 only, leaves
# nothing behind.  Root is needed only for the packet capture, which is
# skipped otherwise.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=20-bind-without-listen.sh
require_built "make all lab/bug_no_listen" select_server select_client lab/bug_no_listen
require_command nstat iproute2

lab_setup

# out_rsts - the kernel's count of TCP segments sent with RST (absolute;
# -s leaves nstat's history file alone).
out_rsts() {
    nstat -asz TcpOutRsts | awk '$1 == "TcpOutRsts" { print $2 }'
}

# gone PID - the process has exited.
gone() { ! running "$1"; }

# capture_start - as root with tcpdump, capture the port's first two
# packets on lo: sets capturer (tcpdump's PID), or leaves it empty and says
# why not.  The file name ends in .pcap: Debian's AppArmor profile for
# tcpdump lets it write only such files.
capture_start() {
    capturer=
    if [[ $(id -u) != 0 ]]; then
        say "    (a packet capture needs root: skipped; run with sudo to see it)"
        return 0
    fi
    if ! command -v tcpdump >/dev/null; then
        say "    (tcpdump is not installed: capture skipped)"
        return 0
    fi
    cmd "timeout 10 tcpdump -i lo -n -U --immediate-mode -c 2 -w refused.pcap 'tcp port $port' &"
    timeout 10 tcpdump -i lo -n -U --immediate-mode -c 2 -w "$tmp/refused.pcap" \
        "tcp port $port" 2>"$tmp/tcpdump.err" &
    capturer=$!
    pids+=("$capturer")
    if ! poll 5 says "$tmp/tcpdump.err" 'listening on'; then
        sed 's/^/    (tcpdump: /; s/$/)/' "$tmp/tcpdump.err" | head -n 2
        capturer=
    fi
}

# capture_show - wait for tcpdump's two packets and print them, the TCP
# options cut for width.
capture_show() {
    [[ -n $capturer ]] || return 0
    if ! poll 5 gone "$capturer"; then
        say "    (tcpdump saw fewer than 2 packets)"
        return 0
    fi
    cmd "tcpdump -r refused.pcap -n"
    tcpdump -r "$tmp/refused.pcap" -n 2>/dev/null | sed -E 's/, options \[[^]]*\]//' | indent
}

step "1. The flaw, in lab/bug_no_listen.c"
cmd "grep -n -E 'bind\\(fd|listen\\(fd|= accept\\(' lab/bug_no_listen.c"
grep -n -E 'bind\(fd|listen\(fd|= accept\(' lab/bug_no_listen.c | indent
say "socket(), bind(), accept(): the listen() that belongs between bind()"
say "and accept() is missing."

step "2. Start lab/bug_no_listen"
cmd "lab/bug_no_listen -p 0 &"
spawn lab/bug_no_listen -p 0 </dev/null >"$tmp/bug.out" 2>"$tmp/bug.err" &
bug_pid=$!
pids+=("$bug_pid")
wait_5s "its first line" says "$tmp/bug.out" '^listening on '
wait_5s "its first accept()" says "$tmp/bug.err" 'accept'
port=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9]*\) (tcp)$/\1/p' "$tmp/bug.out")
[[ $port =~ ^[0-9]+$ ]] || { echo "$PROG: no port in bug_no_listen's first line" >&2; exit 1; }
sed 's/^/    bug_no_listen | /' "$tmp/bug.out"
head -n 1 "$tmp/bug.err" | sed 's/^/    bug_no_listen | /'
look "bind() succeeded and the program says it is listening; accept() says"
look "EINVAL: this socket is not listening.  It tries again every second."

step "3. What ss and netstat see on port $port"
cmd "ss -tan 'sport = :$port'"
ss -tan "sport = :$port" | indent
if command -v netstat >/dev/null; then
    cmd "netstat -tan | grep ':$port '"
    netstat -tan | grep ":$port " | indent || say "    (nothing)"
else
    say "    (netstat is not installed: skipped)"
fi
cmd "ls -l /proc/$bug_pid/fd | grep socket"
# shellcheck disable=SC2010  # the names in /proc/PID/fd are numbers
ls -l "/proc/$bug_pid/fd" | grep socket | sed -E 's/^.* ([0-9]+ -> socket)/\1/' | indent
look "no LISTEN line, no line at all: ss and netstat list listening sockets"
look "and connections, and this socket is neither.  Yet the process has it."

step "4. A client connects"
capture_start
before=$(out_rsts)
cmd "./select_client 127.0.0.1 $port"
start=$(ms_now)
status=0
./select_client 127.0.0.1 "$port" </dev/null >"$tmp/client.out" 2>&1 || status=$?
took=$(($(ms_now) - start))
indent <"$tmp/client.out"
say "    (exit status $status after $took ms)"
say "    TcpOutRsts, the kernel's count of RSTs sent: $before -> $(out_rsts)"
capture_show
look "refused at once: the kernel found no listening socket on port $port and"
look "answered the SYN itself, with a RST.  bug_no_listen never heard of it."

step "5. A second server binds the same port"
cmd "./select_server -p $port -b 127.0.0.1 --no-udp --no-reuseaddr"
status=0
./select_server -p "$port" -b 127.0.0.1 --no-udp --no-reuseaddr </dev/null >"$tmp/second.out" 2>&1 || status=$?
head -n 1 "$tmp/second.out" | indent
say "    (exit status $status)"
look "EADDRINUSE: the port is taken, by a socket nobody can see."
cmd "./select_server -p $port -b 127.0.0.1 --no-udp &      (SO_REUSEADDR: the default)"
spawn ./select_server -p "$port" -b 127.0.0.1 --no-udp </dev/null >"$tmp/third.out" 2>&1 &
pids+=($!)
wait_5s "the second server's listening line" says "$tmp/third.out" '^listening on '
sed 's/^/    server | /' "$tmp/third.out"
cmd "ss -tln 'sport = :$port'"
ss -tln "sport = :$port" | indent
cmd "echo hello | ./select_client -q 127.0.0.1 $port"
echo hello | ./select_client -q 127.0.0.1 "$port" | indent
if running "$bug_pid"; then
    say "    (bug_no_listen still runs, bound and not listening)"
fi
look "both sockets set SO_REUSEADDR and neither was listening, so Linux let"
look "the second bind(); its listen() made it the server of port $port."

step "What it shows"
say "bind() gives a socket its address; only listen() makes the kernel accept"
say "connections for it.  Without listen(), every SYN to the port is answered"
say "with a RST, so clients see \"connection refused\" exactly as if no program"
say "ran at all, and the program's own accept() fails with EINVAL.  The port"
say "is held nonetheless, invisibly: ss and netstat do not list a socket that"
say "is only bound.  \"Invalid argument\" from accept() means: listen() was"
say "never called on this socket."
