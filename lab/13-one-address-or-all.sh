#!/usr/bin/env bash
# 13-one-address-or-all.sh - experiment 13: a server on a host with
# several addresses listens on one of them, or on all (the wildcard).
#
# 127.0.0.1 and 127.0.0.2 are both addresses of this machine (all of
# 127.0.0.0/8 is loopback).  select_server -b 127.0.0.1 serves clients
# that connect to 127.0.0.1 and refuses those that connect to 127.0.0.2;
# a second server can take 127.0.0.2 on the same port; a server on the
# wildcard 0.0.0.0 cannot start on that port while the first one
# listens, SO_REUSEADDR or not (Linux; UNP's BSD allows it); and a server on
# 0.0.0.0 serves both addresses, each accepted socket bound to the one
# its client asked for.
#
# Run from anywhere once the programs are built (make all).  Needs
# python3 (step 6).  Takes about a second, uses 127.0.0.1 and 127.0.0.2
# only, needs no root, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=13-one-address-or-all.sh
require_built "" select_server select_client
require_command python3 python3

lab_setup

# start_server NAME OPTIONS... - a select_server in the background with
# its console on a FIFO: sets PID and CONSOLE (the FIFO's write end),
# waits for its first line and shows it.
start_server() {
    local name=$1
    shift
    mkfifo "$tmp/$name.console"
    cmd "./select_server $* &"
    spawn ./select_server "$@" <"$tmp/$name.console" >"$tmp/$name.out" \
        2>"$tmp/$name.err" &
    PID=$!
    pids+=("$PID")
    exec {CONSOLE}>"$tmp/$name.console"
    held+=("$CONSOLE")
    wait_5s "$name's listening line" says "$tmp/$name.out" '^listening on '
    sed 's/^/    server | /' "$tmp/$name.out"
}

# quit_server PID CONSOLE - type quit on its console and wait for the exit.
quit_server() {
    printf 'quit\n' >&"$2"
    wait "$1" || true
}

# try_server OPTIONS... - a select_server that should fail at once: show
# what it printed and its exit status.
try_server() {
    local status=0
    cmd "./select_server $*"
    timeout 5 ./select_server "$@" </dev/null >"$tmp/try.out" 2>&1 || status=$?
    indent <"$tmp/try.out"
    say "    (exit status $status)"
}

# ask ADDR PORT - one line to ADDR PORT through select_client: show what
# it printed and its exit status.
ask() {
    local status=0
    cmd "echo hello | ./select_client $1 $2"
    echo hello | timeout 5 ./select_client "$1" "$2" >"$tmp/ask.out" 2>&1 || status=$?
    indent <"$tmp/ask.out"
    say "    (exit status $status)"
}

# listeners PORT - what ss shows listening on TCP port PORT.
listeners() {
    cmd "ss -tln 'sport = :$1'"
    ss -tln "sport = :$1" | sed 's/ *$//' | indent
}

# accepts LOG N - the server with log LOG has accepted at least N clients.
accepts() {
    (($(grep -c '^accepted ' "$1" || true) >= $2))
}

# connected NAME - the idle client NAME has printed its "connected" line.
connected() {
    says "$tmp/$1.err" '^connected to '
}

step "1. This machine has more than one address"
cmd "ip -4 addr show dev lo"
ip -4 addr show dev lo | grep -E '^[0-9]|inet ' | indent
look "lo holds 127.0.0.1/8: every address from 127.0.0.1 to 127.255.255.254"
look "is this machine.  127.0.0.2 is as local as 127.0.0.1."

step "2. A server bound to ONE address: 127.0.0.1"
start_server one -p 0 -b 127.0.0.1 --no-udp
one_pid=$PID one_console=$CONSOLE
port=$(listening_port "$tmp/one.out")
listeners "$port"
look "Local Address 127.0.0.1:$port: the listening socket is bound to one"
look "address and one port."

step "3. Connect to each address"
ask 127.0.0.1 "$port"
ask 127.0.0.2 "$port"
look "127.0.0.1 is served; 127.0.0.2 is refused, although it is this machine"
look "and port $port has a server: no socket listens on 127.0.0.2:$port, so the"
look "kernel answers the SYN with a RST, and connect() fails (ECONNREFUSED)."

step "4. A second server on 127.0.0.2, the same port"
start_server two -p "$port" -b 127.0.0.2 --no-udp
two_pid=$PID two_console=$CONSOLE
listeners "$port"
ask 127.0.0.2 "$port"
grep '^accepted ' "$tmp/two.out" | sed 's/^/    server two | /'
look "two listeners on port $port, one per address: a server is found by its"
look "address AND its port, and these two do not overlap."
quit_server "$two_pid" "$two_console"

step "5. A server on the wildcard 0.0.0.0, the same port: refused"
try_server -p "$port" -b 0.0.0.0 --no-udp
try_server -p "$port" -b 0.0.0.0 --no-udp --no-reuseaddr
look "0.0.0.0:$port would overlap 127.0.0.1:$port, which is listening: bind()"
look "fails with EADDRINUSE, with SO_REUSEADDR (select_server sets it) as"
look "without it.  That is Linux; UNP describes BSD, where SO_REUSEADDR allows it."

step "6. Where exactly Linux says no: two sockets, both with SO_REUSEADDR"
cmd "python3: a binds 127.0.0.1:0, b binds 0.0.0.0:(a's port), then each listens"
python3 - <<'EOF' | indent
import errno, socket

def new_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return s

def attempt(what, call):
    try:
        call()
        print(f"{what}: ok")
    except OSError as e:
        print(f"{what}: {errno.errorcode[e.errno]} ({e.strerror})")

a, b = new_socket(), new_socket()
a.bind(("127.0.0.1", 0))
port = a.getsockname()[1]
print(f"a: bind 127.0.0.1:{port}: ok")
attempt(f"b: bind 0.0.0.0:{port}", lambda: b.bind(("0.0.0.0", port)))
attempt("a: listen", a.listen)
attempt("b: listen", b.listen)
EOF
look "both binds succeed while neither socket listens; the second listen()"
look "fails.  SO_REUSEADDR lets a bind() overlap sockets that are not listening"
look "and set it too (TIME_WAIT ones, experiment 3), never a listener."

quit_server "$one_pid" "$one_console"

step "7. The wildcard address: one server for all addresses"
start_server all -p 0 -b 0.0.0.0 --no-udp
port=$(listening_port "$tmp/all.out")
listeners "$port"
mkfifo "$tmp/idle"
exec {idle}<>"$tmp/idle"        # the clients' keyboard: open and silent
held+=("$idle")
for addr in 127.0.0.1 127.0.0.2; do
    n=$(grep -c '^accepted ' "$tmp/all.out" || true)
    cmd "./select_client $addr $port &      # stays connected"
    spawn ./select_client "$addr" "$port" <"$tmp/idle" >"$tmp/$addr.out" \
        2>"$tmp/$addr.err" &
    pids+=($!)
    wait_5s "the accept of the client of $addr" accepts "$tmp/all.out" $((n + 1))
    wait_5s "the client of $addr to connect" connected "$addr"
    indent <"$tmp/$addr.err"
done
sed -n '2,$s/^/    server | /p' "$tmp/all.out"
cmd "ss -tn 'sport = :$port'"
ss -tn "sport = :$port" | sed 's/ *$//' | indent
look "the listener is 0.0.0.0:$port, yet each accepted socket has one real"
look "local address: the one its client connected to (getsockname() returns"
look "it; ss shows it as Local Address).  The peer addresses cannot tell the"
look "two apart: both clients come from 127.0.0.1."

step "What it shows"
say "A TCP server listens on an address and a port.  Bound to one address,"
say "it gets only the connections made to that address; a connection to any"
say "other address of the host is refused, and another server may take the"
say "same port there.  Bound to the wildcard 0.0.0.0, it gets the port on"
say "every address, and getsockname() on each accepted socket tells which"
say "address the client used.  On Linux a wildcard listener and a specific"
say "one cannot share a port, SO_REUSEADDR or not; the BSD kernels of UNP allow"
say "it with SO_REUSEADDR, and give each connection to the most specific match."
