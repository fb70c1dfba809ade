# lab_13_one_address_or_all.bats - experiment 13: a TCP server listens on
# an address and a port.  Bound to 127.0.0.1 it serves 127.0.0.1 and
# refuses 127.0.0.2 (both addresses of this machine); a second server may
# take 127.0.0.2 on the same port; on Linux a wildcard listener and a
# specific one never share a port, SO_REUSEADDR or not; bound to 0.0.0.0
# it serves both, each accepted socket bound to the address its client
# used.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
SCRIPT=$LAB/13-one-address-or-all.sh

# listening_on ADDR - ss shows exactly one TCP listener on PORT, at ADDR.
listening_on() {
    run ss -Htln "sport = :$PORT"
    assert_success
    assert_output --regexp "^LISTEN +0 +[0-9]+ +${1//./\\.}:$PORT +0\\.0\\.0\\.0:\\*"
    assert_equal "${#lines[@]}" 1
}

# idle_client NAME ADDR - a select_client connected to ADDR PORT that
# stays connected and silent (its stdin a FIFO this shell holds open).
idle_client() {
    local fifo=$BATS_TEST_TMPDIR/$1.in fd
    mkfifo "$fifo"
    exec {fd}<>"$fifo"
    hold "$fd"
    # Redirected here, not around start_bg: a background job's stdin
    # would be /dev/null otherwise.
    spawn "$CLIENT" "$2" "$PORT" <"$fifo" >"$BATS_TEST_TMPDIR/$1.out" \
        2>"$BATS_TEST_TMPDIR/$1.err" 3>&- &
    BG_PIDS+=("$!")
}

# client_connected NAME - the client NAME printed its "connected" line.
client_connected() {
    grep -q '^connected to ' "$BATS_TEST_TMPDIR/$1.err"
}

@test "bound to 127.0.0.1: a client of 127.0.0.1 is served, a client of 127.0.0.2 refused" {
    start_server -b 127.0.0.1 --no-udp
    assert_equal "$(head -n 1 "$SERVER_OUT")" "listening on 127.0.0.1:$PORT (tcp)"
    listening_on 127.0.0.1

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" <<<'first address'
    assert_success
    assert_output 'first address'
    [[ $stderr =~ ^connected\ to\ 127\.0\.0\.1:$PORT\ from\ 127\.0\.0\.1:[0-9]+$ ]]

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" 127.0.0.2 "$PORT" <<<'second address'
    assert_failure 2
    assert_output ''
    assert_equal "$stderr" "select_client: connection refused: nothing listening on 127.0.0.2:$PORT"
    # Only the first client got as far as the server.
    wait_for "the first client's close" server_says '^closed '
    assert_equal "$(count_lines '^accepted ' "$SERVER_OUT")" 1
}

@test "a second server takes 127.0.0.2 on the same port: each address reaches its own server" {
    start_server -b 127.0.0.1 --no-udp
    first_out=$SERVER_OUT
    start_bg "$BATS_TEST_TMPDIR/second" "$SERVER" -p "$PORT" -b 127.0.0.2 --no-udp </dev/null
    wait_for "the second server's listening line" grep -qxF "listening on 127.0.0.2:$PORT (tcp)" "$BATS_TEST_TMPDIR/second.out"

    run ss -Htln "sport = :$PORT"
    assert_equal "${#lines[@]}" 2
    assert_line --regexp "^LISTEN .* 127\\.0\\.0\\.1:$PORT "
    assert_line --regexp "^LISTEN .* 127\\.0\\.0\\.2:$PORT "

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.2 "$PORT" <<<'to the second'
    assert_success
    assert_output 'to the second'
    wait_for "the second server's accept" grep -q '^accepted 127\.0\.0\.1:' "$BATS_TEST_TMPDIR/second.out"
    run count_lines '^accepted ' "$first_out"
    assert_output 0
}

@test "a server on 0.0.0.0 cannot start on the port 127.0.0.1 listens on, SO_REUSEADDR or not" {
    start_server -b 127.0.0.1 --no-udp

    run --separate-stderr timeout "$WAIT_LIMIT" "$SERVER" -p "$PORT" -b 0.0.0.0 --no-udp </dev/null
    assert_failure 2
    assert_output ''
    assert_equal "${stderr_lines[0]}" "select_server: bind 0.0.0.0:$PORT: Address already in use"

    run --separate-stderr timeout "$WAIT_LIMIT" "$SERVER" -p "$PORT" -b 0.0.0.0 --no-udp --no-reuseaddr </dev/null
    assert_failure 2
    assert_equal "${stderr_lines[0]}" "select_server: bind 0.0.0.0:$PORT: Address already in use"
    listening_on 127.0.0.1
}

@test "nor can a server on 127.0.0.1 start on the port of a listener on 0.0.0.0" {
    start_server -b 0.0.0.0 --no-udp

    run --separate-stderr timeout "$WAIT_LIMIT" "$SERVER" -p "$PORT" -b 127.0.0.1 --no-udp </dev/null
    assert_failure 2
    assert_equal "${stderr_lines[0]}" "select_server: bind 127.0.0.1:$PORT: Address already in use"
    # 127.0.0.2 overlaps the wildcard as much as 127.0.0.1 does.
    run --separate-stderr timeout "$WAIT_LIMIT" "$SERVER" -p "$PORT" -b 127.0.0.2 --no-udp </dev/null
    assert_failure 2
    assert_equal "${stderr_lines[0]}" "select_server: bind 127.0.0.2:$PORT: Address already in use"
    listening_on 0.0.0.0
}

@test "Linux, both with SO_REUSEADDR: 127.0.0.1 and 0.0.0.0 bind while neither listens; the second listen() fails" {
    run --separate-stderr python3 - <<'EOF'
import errno, socket

def new_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return s

def attempt(call):
    try:
        call()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]

a, b = new_socket(), new_socket()
a.bind(("127.0.0.1", 0))
port = a.getsockname()[1]
print("bind", attempt(lambda: b.bind(("0.0.0.0", port))))
print("listen a", attempt(a.listen))
print("listen b", attempt(b.listen))
# Once one of them listens, a third cannot even bind.
c = new_socket()
print("bind c", attempt(lambda: c.bind(("0.0.0.0", port))))
# Without SO_REUSEADDR on both, the overlapping bind fails at once.
d, e = socket.socket(), new_socket()
d.bind(("127.0.0.1", 0))
print("bind e", attempt(lambda: e.bind(("0.0.0.0", d.getsockname()[1]))))
EOF
    assert_success
    assert_output "bind ok
listen a ok
listen b EADDRINUSE
bind c EADDRINUSE
bind e EADDRINUSE"
}

@test "bound to 0.0.0.0: both addresses are served, each accepted socket bound to the address its client used" {
    start_server -b 0.0.0.0 --no-udp
    listening_on 0.0.0.0

    idle_client one 127.0.0.1
    wait_for "the client of 127.0.0.1" client_connected one
    idle_client two 127.0.0.2
    wait_for "the client of 127.0.0.2" client_connected two
    wait_accepts 2

    one_from=$(sed -n 's/^connected to 127\.0\.0\.1:[0-9]* from \(.*\)$/\1/p' "$BATS_TEST_TMPDIR/one.err")
    two_from=$(sed -n "s/^connected to 127\\.0\\.0\\.2:$PORT from \\(.*\\)\$/\\1/p" "$BATS_TEST_TMPDIR/two.err")
    # Both come from 127.0.0.1: the peer address cannot tell them apart.
    [[ $one_from == 127.0.0.1:* && $two_from == 127.0.0.1:* ]]
    server_says "^accepted ${one_from//./\\.} on fd [0-9]+ \\(clients: 1\\)\$"
    server_says "^accepted ${two_from//./\\.} on fd [0-9]+ \\(clients: 2\\)\$"

    # The server's end of each: its local address is the one asked for.
    run ss -Htn state established "sport = :$PORT"
    assert_equal "${#lines[@]}" 2
    assert_line --regexp "^0 +0 +127\\.0\\.0\\.1:$PORT +$one_from *\$"
    assert_line --regexp "^0 +0 +127\\.0\\.0\\.2:$PORT +$two_from *\$"
}

@test "13-one-address-or-all.sh: refused on 127.0.0.2, a second server there, no wildcard beside it, both served on 0.0.0.0" {
    run --separate-stderr "$SCRIPT" 3>&-
    assert_success
    assert_equal "$stderr" ''
    all=$output
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. This machine has more than one address
== 2. A server bound to ONE address: 127.0.0.1
== 3. Connect to each address
== 4. A second server on 127.0.0.2, the same port
== 5. A server on the wildcard 0.0.0.0, the same port: refused
== 6. Where exactly Linux says no: two sockets, both with SO_REUSEADDR
== 7. The wildcard address: one server for all addresses
== What it shows"
    port=$(sed -n 's/^    server | listening on 127\.0\.0\.1:\([0-9]*\) (tcp)$/\1/p' <<<"$output")
    [[ $port =~ ^[0-9]+$ ]]

    run sed -n '/^== 2\./,/^== 4\./p' <<<"$all"
    assert_line --regexp "^    LISTEN 0 +[0-9]+ +127\\.0\\.0\\.1:$port "
    assert_line "    select_client: connection refused: nothing listening on 127.0.0.2:$port"
    assert_equal "$(grep -c '^    (exit status 0)$' <<<"$output")" 1
    assert_equal "$(grep -c '^    (exit status 2)$' <<<"$output")" 1

    run sed -n '/^== 4\./,/^== 5\./p' <<<"$all"
    assert_line "    server | listening on 127.0.0.2:$port (tcp)"
    assert_line --regexp "^    connected to 127\\.0\\.0\\.2:$port from 127\\.0\\.0\\.1:[0-9]+$"
    assert_line --regexp "^    server two \\| accepted 127\\.0\\.0\\.1:[0-9]+ on fd [0-9]+ \\(clients: 1\\)$"

    run sed -n '/^== 5\./,/^== 6\./p' <<<"$all"
    assert_equal "$(grep -c "^    select_server: bind 0\\.0\\.0\\.0:$port: Address already in use$" <<<"$output")" 2
    assert_equal "$(grep -c '^    (exit status 2)$' <<<"$output")" 2

    run sed -n '/^== 6\./,/^== 7\./p' <<<"$all"
    assert_line --regexp '^    b: bind 0\.0\.0\.0:[0-9]+: ok$'
    assert_line '    a: listen: ok'
    assert_line '    b: listen: EADDRINUSE (Address already in use)'

    run sed -n '/^== 7\./,/^== What/p' <<<"$all"
    wild=$(sed -n 's/^    server | listening on 0\.0\.0\.0:\([0-9]*\) (tcp)$/\1/p' <<<"$output")
    [[ $wild =~ ^[0-9]+$ ]]
    assert_line --regexp "^    connected to 127\\.0\\.0\\.1:$wild from 127\\.0\\.0\\.1:[0-9]+$"
    assert_line --regexp "^    connected to 127\\.0\\.0\\.2:$wild from 127\\.0\\.0\\.1:[0-9]+$"
    assert_line --regexp "^    ESTAB 0 +0 +127\\.0\\.0\\.1:$wild +127\\.0\\.0\\.1:[0-9]+$"
    assert_line --regexp "^    ESTAB 0 +0 +127\\.0\\.0\\.2:$wild +127\\.0\\.0\\.1:[0-9]+$"
}

@test "13-one-address-or-all.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/13-one-address-or-all.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "13-one-address-or-all.sh: ./select_server is missing: run make first"
}
