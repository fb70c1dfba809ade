# lab_netns.bats - the lab network (lab/netns.sh) that experiments 4, 7, 11
# and 15 run on: three network namespaces, lnxclient 10.10.12.2 and
# lnxserver 10.10.11.2 on two LANs, joined by a router.  A packet between
# the LANs gets across only because the router forwards it; `break` pulls
# the server LAN's cable for exactly that long and always plugs it back;
# `down` leaves nothing behind.  Each test builds its own lab under its own
# prefix.  Not as root, the tests run in a user namespace of their own; an
# ordinary user gets one with `netns.sh shell`, and is told why not where
# user namespaces are disabled.

load test_helper

# our_namespaces - this test's namespaces, one a line, sorted.
our_namespaces() {
    "${IN_LAB[@]}" ip netns list | awk '{ print $1 }' | { grep "^$P-" || true; } | sort
}

# connects - a select_client on lnxclient gets through to the server.
connects() {
    timeout 5 "${LAB_NETNS[@]}" exec lnxclient "$CLIENT" -q -w 1 10.10.11.2 "$PORT" </dev/null
}

# ms_now - the time in milliseconds.
ms_now() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
}

@test "up builds lnxclient, router and lnxserver; the client reaches the server only through the router" {
    needs_lab

    run "${LAB_NETNS[@]}" up
    assert_success
    assert_output "lab up (prefix $P): lnxclient 10.10.12.2 -- router -- lnxserver 10.10.11.2"
    run our_namespaces
    assert_output "$P-lnxclient"$'\n'"$P-lnxserver"$'\n'"$P-router"

    # 10.10.11.2 is not on lnxclient's LAN: the route says "via the router".
    run "${LAB_NETNS[@]}" exec lnxclient ip -4 route get 10.10.11.2
    assert_line --index 0 --regexp "^10\\.10\\.11\\.2 via 10\\.10\\.12\\.1 dev $P-cli src 10\\.10\\.12\\.2 "

    # TCP and UDP both cross, and the server sees the client's own address:
    # the router forwards packets, it does not rewrite them.
    start_lab_server
    run --separate-stderr timeout "$WAIT_LIMIT" "${LAB_NETNS[@]}" exec lnxclient \
        "$CLIENT" -q 10.10.11.2 "$PORT" <<<"across the router"
    assert_success
    assert_output "across the router"
    wait_for "the accept" server_says "^accepted \\[::ffff:10\\.10\\.12\\.2\\]:[0-9]+ on fd [0-9]+ \\(clients: 1\\)\$"
    run --separate-stderr timeout "$WAIT_LIMIT" "${LAB_NETNS[@]}" exec lnxclient \
        "$CLIENT" -q -u 10.10.11.2 "$PORT" <<<"a datagram"
    assert_success
    assert_output "a datagram"

    # A router that does not forward drops what is not addressed to it.
    "${LAB_NETNS[@]}" exec router sysctl -qw net.ipv4.ip_forward=0
    run --separate-stderr timeout "$WAIT_LIMIT" "${LAB_NETNS[@]}" exec lnxclient \
        "$CLIENT" -w 1 10.10.11.2 "$PORT" </dev/null
    assert_failure 2
    assert_equal "$stderr" "select_client: connect to 10.10.11.2:$PORT: timed out after 1s"
}

@test "up twice is fine; status shows each host's links, addresses and routes" {
    needs_lab
    "${LAB_NETNS[@]}" up >/dev/null

    run "${LAB_NETNS[@]}" up
    assert_success

    run "${LAB_NETNS[@]}" status
    assert_success
    assert_output "lnxclient (namespace $P-lnxclient)
  link   $(printf '%-15s' "$P-cli") UP             10.10.12.2/24
  route  default via 10.10.12.1 dev $P-cli
  route  10.10.12.0/24 dev $P-cli proto kernel scope link src 10.10.12.2
router (namespace $P-router)
  link   $(printf '%-15s' "$P-rtc") UP             10.10.12.1/24
  link   $(printf '%-15s' "$P-rts") UP             10.10.11.1/24
  route  10.10.11.0/24 dev $P-rts proto kernel scope link src 10.10.11.1
  route  10.10.12.0/24 dev $P-rtc proto kernel scope link src 10.10.12.1
  ip_forward = 1
lnxserver (namespace $P-lnxserver)
  link   $(printf '%-15s' "$P-srv") UP             10.10.11.2/24
  route  default via 10.10.11.1 dev $P-srv
  route  10.10.11.0/24 dev $P-srv proto kernel scope link src 10.10.11.2"
}

@test "break 2: the server LAN is unreachable for 2 s (the router has no route), then everything works again" {
    needs_lab
    "${LAB_NETNS[@]}" up >/dev/null
    start_lab_server
    connects

    start_bg "$BATS_TEST_TMPDIR/break" "${LAB_NETNS[@]}" break 2
    break_pid=$BG_PID
    wait_for "the link to go down" grep -qx 'link router -- server LAN down for 2s' \
        "$BATS_TEST_TMPDIR/break.out"
    down_ms=$(ms_now)

    # The router's port is down, and its route to 10.10.11.0/24 with it.
    run "${LAB_NETNS[@]}" status
    assert_line --regexp "^  link +$P-rts +DOWN +10\\.10\\.11\\.1/24\$"
    refute_line --partial "10.10.11.0/24 dev $P-rts"
    # So the router answers at once: ICMP "network unreachable".
    run --separate-stderr timeout "$WAIT_LIMIT" "${LAB_NETNS[@]}" exec lnxclient \
        "$CLIENT" -w 1 10.10.11.2 "$PORT" </dev/null
    assert_failure 2
    assert_equal "$stderr" "select_client: connect to 10.10.11.2:$PORT: network unreachable (Network is unreachable)"

    # Try every 50 ms: no connect gets through until the 2 s are over, and
    # one does soon after.  How soon is not asserted: on a busy machine each
    # try costs a few process starts, and a SYN lost in the instant the
    # link comes back is resent only a second later.  How long the link
    # was down is checked below, from break's own report.
    local reached=false
    while (($(ms_now) - down_ms < WAIT_LIMIT * 1000)); do
        if connects 2>/dev/null; then
            reached=true
            break
        fi
        sleep 0.05
    done
    up_ms=$(ms_now)
    $reached || fail "the server was still unreachable ${WAIT_LIMIT}s after the link went down"
    ((up_ms - down_ms >= 1900)) ||
        fail "a connect got through $((up_ms - down_ms)) ms after the link went down for 2 s"
    wait_exit 5 "$break_pid"
    assert_equal "$EXIT_STATUS" 0
    run cat "$BATS_TEST_TMPDIR/break.out"
    assert_line --index 1 --regexp '^link router -- server LAN up again after 2\.[0-4][0-9]s$'
    run "${LAB_NETNS[@]}" status
    assert_line --regexp "^  link +$P-rts +UP +10\\.10\\.11\\.1/24\$"
    assert_line "  route  10.10.11.0/24 dev $P-rts proto kernel scope link src 10.10.11.1"
}

@test "break restores the link even when it is interrupted (a trap on exit)" {
    needs_lab
    "${LAB_NETNS[@]}" up >/dev/null
    start_lab_server

    start_bg "$BATS_TEST_TMPDIR/break" "${LAB_NETNS[@]}" break 30
    wait_for "the link to go down" grep -q 'down for 30s' "$BATS_TEST_TMPDIR/break.out"
    run connects
    assert_failure 2

    kill -TERM "$BG_PID"
    wait_exit 2 "$BG_PID"
    assert_equal "$EXIT_STATUS" 143
    run "${LAB_NETNS[@]}" status
    assert_line --regexp "^  link +$P-rts +UP +10\\.10\\.11\\.1/24\$"
    connects
}

@test "down removes the namespaces and their cables; down again, and status, say so" {
    needs_lab
    "${LAB_NETNS[@]}" up >/dev/null

    run "${LAB_NETNS[@]}" down
    assert_success
    assert_output "lab down (prefix $P)"
    run our_namespaces
    assert_output ""
    # The cables were made inside the namespaces and went with them: the
    # machine's own interfaces never saw these names.
    run "${IN_LAB[@]}" ip -o link show
    refute_output --partial "$P-"

    run "${LAB_NETNS[@]}" down
    assert_success
    run "${LAB_NETNS[@]}" status
    assert_failure 3
    assert_output "lnxclient: not up (no namespace $P-lnxclient)
router: not up (no namespace $P-router)
lnxserver: not up (no namespace $P-lnxserver)"
    run --separate-stderr "${LAB_NETNS[@]}" exec lnxclient true
    assert_failure 1
    assert_equal "$stderr" "netns.sh: the lab (prefix $P) is not up: run '$NETNS up' first"
}

@test "usage: a missing or unknown command, a bad HOST, SECONDS or prefix: exit 1; -h: exit 0" {
    run --separate-stderr "$NETNS" -h
    assert_success
    assert_line --index 0 "Usage: netns.sh up|down|status"

    for args in "" "frob" "up now" "status please" "exec" "exec lnxclient" \
        "exec nowhere true" "break" "break soon" "break 0" "break 601" "break 1 2"; do
        # shellcheck disable=SC2086 # split the arguments on purpose
        run --separate-stderr "$NETNS" $args
        assert_failure 1
        assert_equal "${stderr_lines[1]}" "Usage: netns.sh up|down|status"
    done
    run --separate-stderr "$NETNS" exec nowhere true
    assert_equal "${stderr_lines[0]}" "netns.sh: exec: unknown host 'nowhere' (lnxclient, lnxserver or router)"
    run --separate-stderr "$NETNS" break 601
    assert_equal "${stderr_lines[0]}" "netns.sh: break: SECONDS must be more than 0 and at most 600, not 601"

    LAB_NS_PREFIX=much-too-long-prefix run --separate-stderr "$NETNS" up
    assert_failure 1
    assert_equal "$stderr" "netns.sh: LAB_NS_PREFIX must be 1 to 11 letters, digits or '_' (interface names have at most 15 characters), not 'much-too-long-prefix'"
}

@test "not root, outside a lab shell: one line saying to start 'netns.sh shell' (or sudo), exit 1, nothing built" {
    as_nobody "$NETNS"
    "${AS_USER[@]}" unshare --user --map-current-user --keep-caps --net --mount true 2>/dev/null ||
        skip "user namespaces are not available here (the next tests cover that)"
    prefix=t$(($$ % 100000))x$BATS_TEST_NUMBER

    LAB_NS_PREFIX=$prefix run --separate-stderr "${AS_USER[@]}" "$NETNS" up

    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "netns.sh: not root: run it in a lab shell, '$NETNS shell' (a user namespace of your own, where the lab lives until you exit), or as root: sudo $NETNS up"
    run ip netns list
    refute_output --partial "$prefix-"
}

@test "not root: in 'netns.sh shell' an ordinary user builds the lab, crosses the router, and it all goes with the shell" {
    as_nobody "$NETNS"
    "${AS_USER[@]}" unshare --user --map-current-user --keep-caps --net --mount true 2>/dev/null ||
        skip "needs user namespaces (unshare --user fails here)"
    prefix=t$(($$ % 100000))x$BATS_TEST_NUMBER

    # shellcheck disable=SC2016 # expanded by the shell inside
    LAB_NS_PREFIX=$prefix run --separate-stderr timeout "$WAIT_LIMIT" "${AS_USER[@]}" \
        "$NETNS" shell bash -c '
        set -e
        netns=$1 server=$2 client=$3
        id -u
        "$netns" up
        dir=$(mktemp -d)
        "$netns" exec lnxserver "$server" -p 0 </dev/null >"$dir/server.out" 2>&1 &
        for ((i = 0; i < 250; i++)); do
            grep -q "^listening on " "$dir/server.out" && break
            sleep 0.02
        done
        port=$(sed -n "1s/^listening on .*:\([0-9][0-9]*\) (.*\$/\1/p" "$dir/server.out")
        echo "across the router" | "$netns" exec lnxclient "$client" -q 10.10.11.2 "$port"
        kill $!
        wait $! || true
        rm -r "$dir"
        ip netns list | cut -d " " -f 1 | sort
        "$netns" shell true' - "$NETNS" "$SERVER" "$CLIENT"

    assert_failure 1
    # Ourselves, not root: the user namespace maps our own uid.
    assert_line --index 0 "$("${AS_USER[@]}" id -u)"
    assert_line --index 1 "lab up (prefix $prefix): lnxclient 10.10.12.2 -- router -- lnxserver 10.10.11.2"
    assert_line --index 2 "across the router"
    assert_line --index 3 "$prefix-lnxclient"
    assert_line --index 4 "$prefix-lnxserver"
    assert_line --index 5 "$prefix-router"
    assert_equal "${#lines[@]}" 6
    # No lab shell inside a lab shell: the last command failed, alone.
    assert_equal "$stderr" "netns.sh: shell: this is a lab shell already (it says so in \$LAB_SHELL): exit it first"
    # Its namespaces had their names in the shell's own /run/netns: the
    # machine never saw them, and they went with the shell's last process.
    run ip netns list
    refute_output --partial "$prefix-"
}

@test "no user namespaces: shell and up say why (here user.max_user_namespaces = 0) and to use sudo, exit 4" {
    without_userns "$NETNS"

    run --separate-stderr "${NO_USERNS[@]}" "$NETNS" shell

    assert_failure 4
    assert_output ""
    assert_equal "${stderr_lines[0]}" "netns.sh: not root, and this user cannot create a user namespace:"
    assert_equal "${stderr_lines[-1]}" "Run it as root instead: sudo $NETNS shell"
    if ((IMITATED)); then
        assert_equal "$stderr" "netns.sh: not root, and this user cannot create a user namespace:
  user namespaces are switched off (user.max_user_namespaces = 0);
  the administrator can allow them: sysctl -w user.max_user_namespaces=10000
Run it as root instead: sudo $NETNS shell"
    fi

    run --separate-stderr "${NO_USERNS[@]}" "$NETNS" up
    assert_failure 4
    assert_output ""
    assert_equal "${stderr_lines[-1]}" "Run it as root instead: sudo $NETNS up"
}

@test "no user namespaces: the message names what forbids them (Debian's switch, AppArmor's restriction)" {
    without_userns "$NETNS"
    # Settings as those systems have them, in a tree of our own that
    # LAB_PROC_SYS points lib.sh at.
    FAKE_SYS=$(mktemp -d)
    chmod 755 "$FAKE_SYS"
    mkdir -p "$FAKE_SYS/kernel" "$FAKE_SYS/user"
    echo 0 >"$FAKE_SYS/kernel/unprivileged_userns_clone"
    echo 15000 >"$FAKE_SYS/user/max_user_namespaces"

    LAB_PROC_SYS=$FAKE_SYS run --separate-stderr "${NO_USERNS[@]}" "$NETNS" shell

    assert_failure 4
    assert_equal "${stderr_lines[1]}" "  this kernel lets only root create user namespaces (kernel.unprivileged_userns_clone = 0);"
    assert_equal "${stderr_lines[2]}" "  the administrator can allow them: sysctl -w kernel.unprivileged_userns_clone=1"

    rm "$FAKE_SYS/kernel/unprivileged_userns_clone"
    echo 1 >"$FAKE_SYS/kernel/apparmor_restrict_unprivileged_userns"
    LAB_PROC_SYS=$FAKE_SYS run --separate-stderr "${NO_USERNS[@]}" "$NETNS" shell
    rm -r "$FAKE_SYS"

    assert_failure 4
    assert_equal "${stderr_lines[1]}" "  AppArmor takes the rights away inside user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1);"
    assert_equal "${stderr_lines[2]}" "  the administrator can allow them: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
}
