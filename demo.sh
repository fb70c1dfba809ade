#!/usr/bin/env bash
# demo.sh - a narrated, self-running tour of select_server and select_client
# (run it with `make demo`).  One chat server, three clients taking turns,
# the kernel's view of the connections, the operator console, and a shutdown
# that every client notices at once.  About 5 seconds; leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")"

tmp=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold= dim= off=; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$off"; }
ms_now() { date +%s%3N; }

# wait_until SECONDS COMMAND... - poll COMMAND every 20 ms, up to SECONDS.
wait_until() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 50; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.02
    done
    echo "demo: gave up waiting for: $*" >&2
    exit 1
}

# show_log - the server's log lines printed since the last call.
shown=0
show_log() {
    local total
    total=$(wc -l <"$tmp/server.log")
    sed -n "$((shown + 1)),${total}p" "$tmp/server.log" | sed 's/^/  server | /'
    shown=$total
}

step "1. Start one select_server in chat mode on a port the kernel chooses"
mkfifo "$tmp/console"
./select_server -p 0 --mode chat <"$tmp/console" >"$tmp/server.log" 2>&1 &
pids+=($!)
exec {console}>"$tmp/console"
wait_until 5 grep -q '^listening on' "$tmp/server.log"
port=$(sed -n '1s/.*:\([0-9]*\) (.*/\1/p' "$tmp/server.log")
show_log
note "One process, one thread: $(grep Threads /proc/"${pids[0]}"/status)"

step "2. Three clients connect; each select_client watches stdin AND its socket"
names=(alice bob carol)
declare -A in_fd client_pid
for name in "${names[@]}"; do
    mkfifo "$tmp/$name.in"
    ./select_client 127.0.0.1 "$port" <"$tmp/$name.in" >"$tmp/$name.out" \
        2>"$tmp/$name.err" &
    client_pid[$name]=$!
    pids+=($!)
    exec {fd}>"$tmp/$name.in"
    in_fd[$name]=$fd
    wait_until 5 grep -q 'connected to' "$tmp/$name.err"
    note "  $name: $(cat "$tmp/$name.err")"
done
wait_until 5 grep -q 'clients: 3' "$tmp/server.log"
show_log

step "3. They take turns; the server relays each line to the two others"
say() {
    printf '%s\n' "$2" >&"${in_fd[$1]}"
    note "  $1 types: $2"
    sleep 0.8                   # pacing for human eyes, not synchronisation
}
say alice "hi bob, hi carol"
say bob "hello alice"
say carol "hi both - one server, one thread, no fork"
say alice "and select() tells it who is ready"
for name in "${names[@]}"; do
    echo "  what $name's screen shows:"
    sed 's/^/      /' "$tmp/$name.out"
done

step "4. The kernel's view of port $port"
if command -v netstat >/dev/null; then
    note "  netstat -nat | grep :$port"
    netstat -nat | grep ":$port " | sed 's/^/  /'
else
    note "  ss -tan 'sport = :$port or dport = :$port'"
    ss -tan "sport = :$port or dport = :$port" | sed 's/^/  /'
fi
note "  One LISTEN socket, and each connection twice: once per end."

step "5. The operator types 'list' and 'stats' on the server's console"
echo list >&"$console"
echo stats >&"$console"
wait_until 5 grep -q 'select() calls' "$tmp/server.log"
show_log

step "6. The operator types 'quit': watch how fast each client notices"
start=$(ms_now)
echo quit >&"$console"
for name in "${names[@]}"; do
    status=0
    wait "${client_pid[$name]}" || status=$?
    note "  $name exited with status $status after $(($(ms_now) - start)) ms:" \
        "$(tail -n 1 "$tmp/$name.err")"
done
wait "${pids[0]}" && note "  the server exited with status 0"
show_log
note ""
note "No client was typing, yet each knew at once: its select() watches the"
note "socket as well as stdin.  Next: make test, and README.md."
