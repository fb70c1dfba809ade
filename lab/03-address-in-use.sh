#!/usr/bin/env bash
# lab/03-address-in-use.sh - "Address already in use": a second server on a
# busy port fails with EADDRINUSE; a server restarted while its old
# connections sit in TIME_WAIT fails too, unless it sets SO_REUSEADDR
# (select_server's default; --no-reuseaddr turns it off).
#
# Run it from anywhere once the programs are built (make).  It starts its
# own servers (the first on a port the kernel chooses, the restarts on that
# same port), uses loopback only, stops everything it started, and takes
# under a second.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=${0##*/}
require_built "" select_server select_client

lab_setup

# count_in STATE FILTER N - ss sees exactly N connections so.
count_in() {
    [[ $(ss -Htan state "$1" "$2" | wc -l) == "$3" ]]
}

# port_of_client NAME - the ephemeral port the client NAME connected from.
port_of_client() {
    sed -n 's/^connected to .* from .*:\([0-9]*\)$/\1/p' "$tmp/$1.err"
}

accepts() {
    (($(grep -c '^accepted ' "$tmp/$1.out" || true) >= $2))
}

# start_server NAME [OPTIONS...] - a server in the background with its
# console on a FIFO; sets PID and CONSOLE (the FIFO's write end) and waits
# for its first line.
start_server() {
    local name=$1
    shift
    mkfifo "$tmp/$name.console"
    spawn ./select_server "$@" <"$tmp/$name.console" >"$tmp/$name.out" \
        2>"$tmp/$name.err" &
    PID=$!
    pids+=("$PID")
    exec {CONSOLE}>"$tmp/$name.console"
    held+=("$CONSOLE")
    say "  \$ ./select_server $*"
    wait_5s "$name's listening line" grep -q '^listening on ' "$tmp/$name.out"
    sed 's/^/  /' "$tmp/$name.out"
}

# try_server OPTIONS... - run a server that should fail at once: show its
# output and exit status (sets STATUS).
try_server() {
    say "  \$ ./select_server $*"
    STATUS=0
    timeout 5 ./select_server "$@" </dev/null >"$tmp/try.out" 2>"$tmp/try.err" ||
        STATUS=$?
    sed 's/^/  /' "$tmp/try.out" "$tmp/try.err"
    say "  (exit status $STATUS)"
}

# quit_server PID CONSOLE - type quit, wait for the exit; sets STATUS.
quit_server() {
    printf 'quit\n' >&"$2"
    STATUS=0
    wait "$1" || STATUS=$?
}

# show_port PORT - the port's connections, as ss -tan (and netstat -nat,
# when installed) show them.
show_port() {
    if command -v netstat >/dev/null; then
        say "  \$ netstat -nat | grep ':$1 '"
        netstat -nat | sed -n '2s/ *$//p' | sed 's/^/  /'
        netstat -nat | grep -- ":$1 " | sed 's/ *$//; s/^/  /' || true
    fi
    say "  \$ ss -tan '( sport = :$1 or dport = :$1 )'"
    ss -tan "( sport = :$1 or dport = :$1 )" | sed 's/ *$//; s/^/  /'
}

# idle_client NAME PORT - a select_client that stays connected and silent.
idle_client() {
    spawn ./select_client 127.0.0.1 "$2" <"$tmp/idle" >"$tmp/$1.out" \
        2>"$tmp/$1.err" &
    pids+=($!)
}

mkfifo "$tmp/idle"
exec {idle}<>"$tmp/idle"        # the idle clients' keyboard: open, silent
held+=("$idle")

step "1. A server on a port the kernel chooses"
start_server first -p 0 -b 0.0.0.0
first_pid=$PID first_console=$CONSOLE
port=$(listening_port "$tmp/first.out")

step "2. A second server on the same port: EADDRINUSE"
try_server -p "$port" -b 0.0.0.0
say "Look at: bind() failed with EADDRINUSE, and the server exits with status 2"
say "(\"cannot start\").  Only one socket may listen on 0.0.0.0:$port; SO_REUSEADDR"
say "(which this server sets) does not change that - it only concerns"
say "connections that are closing.  (SO_REUSEPORT, set on both sockets, would"
say "let them share the port.)  The hint names the tool to find the owner:"
say "ss -tulnp shows the process that holds the port."

step "3. Two clients connect to the first server"
for name in a b; do
    n=$(grep -c '^accepted ' "$tmp/first.out" || true)
    idle_client "$name" "$port"
    wait_5s "client $name's accept" accepts first $((n + 1))
done
sed -n '2,$s/^/  server | /p' "$tmp/first.out"
show_port "$port"

step "4. The server quits with the clients still connected"
quit_server "$first_pid" "$first_console"
say "  \$ quit          (typed on the server's console; exit status $STATUS)"
wait_5s "the server ends' TIME-WAIT" count_in time-wait "( sport = :$port )" 2
for name in a b; do
    wait_5s "client $name's close" \
        conn_gone "( sport = :$(port_of_client "$name") and dport = :$port )"
done
sed -n '/^shutting down/,$s/^/  server | /p' "$tmp/first.out"
show_port "$port"
say "Look at: no LISTEN line - nothing listens on $port any more - but the"
say "server closed each connection first (the active closer), so the server"
say "ends, local port $port, now wait in TIME_WAIT for 60 s."

step "5. Restart at once WITHOUT SO_REUSEADDR: it fails"
try_server -p "$port" -b 0.0.0.0 --no-reuseaddr
say "Look at: EADDRINUSE again, although no process uses the port: the"
say "TIME_WAIT connections still hold local port $port, and a plain bind() to"
say "that port fails while any socket still uses it.  The hint says so."

step "6. Restart at once WITH SO_REUSEADDR (the default): it works"
start_server second -p "$port" -b 0.0.0.0
second_pid=$PID second_console=$CONSOLE
show_port "$port"
say "Look at: a LISTEN line next to the old TIME-WAIT lines.  SO_REUSEADDR"
say "allows a bind() while the port is held only by connections in TIME_WAIT"
say "(on Linux only if the old server had set it too: its connections inherit"
say "the flag from its listener).  That is why every TCP server should set it"
say "before bind(): otherwise a restart after a crash or an upgrade fails for"
say "a minute."
quit_server "$second_pid" "$second_console"

step "7. For contrast: the client closes first, and the port stays free"
start_server third -p 0 -b 0.0.0.0
third_pid=$PID third_console=$CONSOLE
port3=$(listening_port "$tmp/third.out")
say "  \$ echo hello | ./select_client 127.0.0.1 $port3"
echo hello | timeout 5 ./select_client 127.0.0.1 "$port3" >"$tmp/c.err" 2>&1
sed 's/^/  /' "$tmp/c.err"
wait_5s "the client end's TIME-WAIT" \
    in_state time-wait "( sport = :$(port_of_client c) and dport = :$port3 )"
quit_server "$third_pid" "$third_console"
say "  \$ quit          (typed on the server's console; exit status $STATUS)"
wait_5s "the server's sockets to close" conn_gone "( sport = :$port3 )"
show_port "$port3"
start_server fourth -p "$port3" -b 0.0.0.0 --no-reuseaddr
quit_server "$PID" "$CONSOLE"
say "Look at: the only TIME-WAIT is the client's end (local port: its ephemeral"
say "port, not $port3): the client sent the first FIN.  So even --no-reuseaddr"
say "restarts on $port3 without trouble.  Only TIME_WAIT on the server's own"
say "port gets in the way - and a server that closes first puts it there."
