# lab_15_hidden_states.bats - experiment 15 (lab/15-hidden-states.sh): the
# TCP states a normal run passes through too fast to see, held still by a
# firewall rule on the router and seen with ss and netstat on each host.
# Without the client's last handshake ACK, the client is ESTABLISHED and
# the server end SYN_RECV, with nothing to accept; without the ACKs of the
# FINs, the client waits in FIN_WAIT1 and the server in LAST_ACK; when both
# close at once, the client is in CLOSING and the server in FIN_WAIT1, and
# both end in TIME_WAIT.  Each time, removing the rule lets the states go.
# Needs nft, and root or user namespaces; skipped, saying so, without them.

load test_helper

EXPERIMENT=$BATS_TEST_DIRNAME/../lab/15-hidden-states.sh

# The experiment runs once for the whole file (about 5 s); each test checks
# one part of what it printed.
setup_file() {
    export RUN_DIR=$BATS_FILE_TMPDIR
    if ! command -v nft >/dev/null; then
        echo "needs nft (apt-get install nftables)" >"$RUN_DIR/skip"
    elif userns_missing; then
        echo "needs root or user namespaces (unshare --user fails here)" >"$RUN_DIR/skip"
    else
        run_experiment_once "$EXPERIMENT"
    fi
}

teardown_file() {
    experiment_down 15
}

# ran_experiment - skip if the experiment could not run here; otherwise
# fail unless it succeeded with nothing on stderr.
ran_experiment() {
    experiment_succeeded
    assert_equal "$(cat "$RUN_DIR/err")" ""
}

# held N / let_go N - `run` on what part N printed while the router's rule
# held the states, or after it was removed.
held() {
    run sed -n "/^== $1\\. /,/ Rule removed:\$/p" "$RUN_DIR/out"
}
let_go() {
    run sed -n "/^== $1\\. /,/^== /p" "$RUN_DIR/out"
    run sed -n '/ Rule removed:$/,$p' <<<"$output"
}

# with_netstat - netstat is installed (the script shows it only then).
with_netstat() {
    command -v netstat >/dev/null
}

# A connection as ss and netstat print it on each host, in a state (%s);
# ss adds its timer (the second %s).
declare -gA LOOKS=(
    [ss,client]='^    lnxclient \| %s +0 +[01] +10\.10\.12\.2:[0-9]+ +10\.10\.11\.2:9877%s$'
    [netstat,client]='^    lnxclient \| tcp +0 +[01] 10\.10\.12\.2:[0-9]+ +10\.10\.11\.2:9877 +%s$'
    [ss,server]='^    lnxserver \| %s +0 +[0-9]+ +10\.10\.11\.2:9877 +10\.10\.12\.2:[0-9]+%s$'
    [netstat,server]='^    lnxserver \| tcp +0 +[0-9]+ 10\.10\.11\.2:9877 +10\.10\.12\.2:[0-9]+ +%s$'
)
# ss's retransmission timer: time left (ss writes 1.5 s as 1.500ms, and
# nothing at all for a resend due this very moment), count.
ON=' timer:\(on,([0-9.]+(ms|sec))?,[0-9]+\)'
TIMEWAIT=' timer:\(timewait,[0-9]+sec,0\)'

# shows HOST SS_STATE TIMER [NETSTAT_STATE] - the output has the line ss
# prints for a connection on HOST in SS_STATE, and netstat's, if installed.
shows() {
    local re
    # shellcheck disable=SC2059 # the patterns are the formats
    printf -v re "${LOOKS[ss,$1]}" "$2" "$3"
    assert_line --regexp "$re"
    if [[ -n ${4-} ]] && with_netstat; then
        # shellcheck disable=SC2059
        printf -v re "${LOOKS[netstat,$1]}" "$4"
        assert_line --regexp "$re"
    fi
}

@test "the experiment ends by itself in under 15 s, and leaves no namespace behind" {
    ran_experiment
    (($(cat "$RUN_DIR/ms") < 15000)) || fail "took $(cat "$RUN_DIR/ms") ms"
    if [[ $(id -u) == 0 ]]; then
        run ip netns list
        refute_output --partial "${FILE_PREFIX}15-"
    else
        run head -n 1 "$RUN_DIR/out"
        assert_output "(15-hidden-states.sh: not root, so it runs in a user namespace of its own)"
    fi
}

@test "no ACK for the SYN-ACK: the client is ESTABLISHED, the server end SYN_RECV and resending, nothing to accept" {
    ran_experiment
    held 1
    assert_line "    router nft rule: ip saddr 10.10.12.2 tcp dport 9877 tcp flags != syn drop"
    assert_line --regexp '^    client \| connected to 10\.10\.11\.2:9877 from 10\.10\.12\.2:[0-9]+$'
    shows client ESTAB '' ESTABLISHED
    shows server SYN-RECV "$ON" SYN_RECV
    assert_line --regexp '^    lnxserver TcpExtTCPSynRetrans: 0 -> [1-9][0-9]*$'
    assert_line "    select_server has accepted 0 connections"
    # The client answered each SYN-ACK; the router dropped every answer.
    assert_line --regexp '^The router dropped [2-9][0-9]* segments\.  Rule removed:$'
}

@test "the client's first line completes the handshake: the server end is ESTABLISHED, accepts, echoes" {
    ran_experiment
    let_go 1
    shows server ESTAB '' ESTABLISHED
    assert_line --regexp '^    server \| accepted 10\.10\.12\.2:[0-9]+ on fd [0-9]+ \(clients: 1\)$'
    assert_line "    client | hello"
    refute_line --regexp 'SYN'
}

@test "no ACK for either FIN: the client waits in FIN_WAIT1, the server, which closed, in LAST_ACK" {
    ran_experiment
    held 2
    assert_line "    router nft rule: ip saddr 10.10.11.2 tcp sport 9877 drop"
    shows client FIN-WAIT-1 "$ON" FIN_WAIT1
    shows server LAST-ACK "$ON" LAST_ACK
    assert_line --regexp '^    server \| closed fd [0-9]+ 10\.10\.12\.2:[0-9]+: eof \(clients: 0\)$'
    assert_line --regexp '^    lnxserver ss -ti: rto:[0-9]+ rtt:[0-9.]+/[0-9.]+$'
    assert_line --regexp '^The router dropped [1-9][0-9]* segments?\.  Rule removed:$'
}

@test "the FINs get through once the rule goes: the server end is gone, the client's in TIME_WAIT" {
    ran_experiment
    let_go 2
    shows client TIME-WAIT "$TIMEWAIT" TIME_WAIT
    refute_line --regexp '^    lnxserver \| [A-Z-]+ +[0-9]'
    refute_line --regexp '^    lnxserver \| tcp '
    assert_line "    (select_client exited with status 0)"
}

@test "both close at once: the client in CLOSING, the server in FIN_WAIT1" {
    ran_experiment
    held 3
    assert_line "    router nft rule: ip saddr 10.10.12.2 tcp dport 9877 drop"
    assert_line --regexp '^\$ \(on the server.s console: kick [0-9]+ - the server closes too, and its FIN gets through\)$'
    shows client CLOSING "$ON" CLOSING
    shows server FIN-WAIT-1 "$ON" FIN_WAIT1
    # The client program is done: it read the notice and the server's EOF.
    assert_line "    client | *** disconnected by the server operator"
}

@test "a simultaneous close ends with both ends in TIME_WAIT" {
    ran_experiment
    let_go 3
    # Two on lnxclient: part 2's connection is still there.
    assert_equal "$(grep -cE '^    lnxclient \| TIME-WAIT ' <<<"$output")" 2
    shows server TIME-WAIT "$TIMEWAIT" TIME_WAIT
    refute_line --regexp 'CLOSING|FIN-WAIT'
}

@test "not root where user namespaces are disabled: exit 4 before building anything, saying why and what to run" {
    command -v nft >/dev/null || skip "needs nft (apt-get install nftables)"
    # As nobody, where user namespaces are off (or seem to be).
    without_userns "$EXPERIMENT"

    run --separate-stderr "${NO_USERNS[@]}" "$EXPERIMENT"

    assert_failure 4
    assert_output ""
    assert_equal "${stderr_lines[0]}" "15-hidden-states.sh: needs root, or a user namespace of its own, and this user cannot create one:"
    assert_equal "${stderr_lines[-1]}" "Run it as root instead: sudo $EXPERIMENT"
}
