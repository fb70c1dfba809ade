# lab_07_link_failure.bats - experiment 7 (lab/07-link-failure.sh): numbered
# messages go to an echo server over TCP and over UDP while the network
# fails.  Across a pulled cable, TCP delivers every message, late and in
# order, several in one read(); UDP loses those sent during the break and
# nothing else.  Under random loss, TCP still delivers everything in order
# (it resends), while UDP's losses are simply gone.  Not as root, the
# experiment runs in a user namespace of its own.

load test_helper

EXPERIMENT=$BATS_TEST_DIRNAME/../lab/07-link-failure.sh

# The experiment runs once for the whole file, fast (a message every 0.1 s,
# a 2 s break); each test then checks one thing it printed.  Its own prefix
# comes from this bats process, so no other test or lab shares it.
setup_file() {
    export RUN_DIR=$BATS_FILE_TMPDIR
    if userns_missing; then
        echo "needs root or user namespaces (unshare --user fails here)" >"$RUN_DIR/skip"
    elif ! ip netns list >/dev/null 2>&1; then
        echo "needs 'ip netns' (iproute2)" >"$RUN_DIR/skip"
    elif ! command -v nft >/dev/null; then
        echo "needs nft (apt-get install nftables)" >"$RUN_DIR/skip"
    else
        run_experiment_once "$EXPERIMENT" LAB_INTERVAL=0.1 LAB_BREAK=2
    fi
}

teardown_file() {
    experiment_down 7
}

# part N - `run` on what the experiment printed for part N.
part() {
    run sed -n "/^== Part $1:/,/^why:/p" "$RUN_DIR/out"
}

# received PROTO - from part's output: the message numbers PROTO brought
# back, in the order they came, into GOT (an array) and IN_ORDER (in|OUT OF).
received() {
    local line
    line=$(grep "^  $1: sent " <<<"$output")
    [[ $line =~ ^\ \ $1:\ sent\ ([0-9]+),\ received\ ([0-9]+)\ (in|OUT\ OF)\ order:\ ([0-9 ]*)(\;\ lost:\ [0-9 ]+)?$ ]] ||
        fail "unexpected line: $line"
    SENT=${BASH_REMATCH[1]}
    IN_ORDER=${BASH_REMATCH[3]}
    read -r -a GOT <<<"${BASH_REMATCH[4]}"
    assert_equal "${#GOT[@]}" "${BASH_REMATCH[2]}"
}

# increasing N... - each number is greater than the one before.
increasing() {
    local prev=0 n
    for n; do
        ((n > prev)) || return 1
        prev=$n
    done
}

@test "the experiment ends by itself, in under 20 s at these settings, and leaves no namespace behind" {
    experiment_succeeded
    (($(cat "$RUN_DIR/ms") < 20000)) || fail "took $(cat "$RUN_DIR/ms") ms"
    if [[ $(id -u) == 0 ]]; then
        run ip netns list
        refute_output --partial "${FILE_PREFIX}7-"
    else
        # Its namespaces were in a user namespace of its own, gone with it.
        run head -n 1 "$RUN_DIR/out"
        assert_output "(07-link-failure.sh: not root, so it runs in a user namespace of its own)"
    fi
}

@test "a 2 s break: TCP delivers every message, late but all of them and in order" {
    experiment_succeeded
    part 1

    received TCP
    assert_equal "$SENT" 26
    assert_equal "${GOT[*]}" "$(seq -s ' ' 1 26)"
    assert_equal "$IN_ORDER" in
    # The first message held back came back only after the link was up.
    assert_line --regexp "^  TCP: 'message [0-9]{3}' came back [0-9]+\\.[0-9]{2}s after the link was up again\$"
}

@test "a 2 s break: UDP loses the messages sent during the break, and only those" {
    experiment_succeeded
    part 1
    [[ $(grep '^  sent during the break: ' <<<"$output") =~ messages\ ([0-9]+)\ to\ ([0-9]+)$ ]] ||
        fail "no 'sent during the break' line"
    first=${BASH_REMATCH[1]} last=${BASH_REMATCH[2]}

    received UDP
    assert_equal "$SENT" 26
    ((${#GOT[@]} < 26)) || fail "UDP lost nothing across the break"
    increasing "${GOT[@]}" || fail "UDP messages out of order: ${GOT[*]}"
    assert_equal "$IN_ORDER" in
    # What came back: everything before the break and after it (allowing
    # one message at each edge, sent within a millisecond of the switch).
    for ((n = 1; n <= 26; n++)); do
        if [[ " ${GOT[*]} " != *" $n "* ]]; then
            ((n >= first - 1 && n <= last + 1)) ||
                fail "message $n was lost, but sent outside the break ($first to $last)"
        elif ((n > first && n < last)); then
            fail "message $n came back, but was sent during the break ($first to $last)"
        fi
    done
}

@test "after the break, one read() gives the server several messages at once: TCP is a byte stream" {
    experiment_succeeded
    part 1

    # The line after the heading: messages per read(), adding up to 26.
    total=$(grep -A 1 "^  server's TCP reads, in messages per read():" <<<"$output" |
        awk 'NR == 2 { for (i = 1; i <= NF; i++) sum += $i; print sum }')
    assert_equal "$total" 26
    # The server's trace says it in bytes: 12 bytes a message.
    assert_line --regexp '^  \(the largest read\(\) carried ([2-9]|[1-9][0-9]) messages: "fd [0-9]+: read [0-9]+ bytes" in the server.s trace\)$'
    [[ $(grep '^  (the largest read() carried' <<<"$output") =~ carried\ ([0-9]+)\ messages:\ \"fd\ [0-9]+:\ read\ ([0-9]+)\ bytes ]]
    assert_equal "${BASH_REMATCH[2]}" $((BASH_REMATCH[1] * 12))
}

@test "random loss (1 packet in 5): TCP still delivers all 15 messages in order; UDP's survivors stay in order" {
    experiment_succeeded
    part 2

    assert_line "  router nft rule: numgen random mod 5 0 drop"
    assert_line --regexp '^  the router forwarded [0-9]+ packets and dropped [1-9][0-9]* of them$'
    received TCP
    assert_equal "$SENT" 15
    assert_equal "${GOT[*]}" "$(seq -s ' ' 1 15)"
    received UDP
    assert_equal "$SENT" 15
    increasing "${GOT[@]}" || fail "UDP messages out of order: ${GOT[*]}"
}

@test "bad LAB_INTERVAL or LAB_BREAK: one line, exit 1, before anything is built" {
    LAB_INTERVAL=0 run --separate-stderr "$EXPERIMENT"
    assert_failure 1
    assert_equal "$stderr" "07-link-failure.sh: LAB_INTERVAL must be from 0.05 to 5 seconds, not '0'"

    LAB_BREAK=soon run --separate-stderr "$EXPERIMENT"
    assert_failure 1
    assert_equal "$stderr" "07-link-failure.sh: LAB_BREAK must be from 0.5 to 30 seconds, not 'soon'"
}

@test "not root where user namespaces are disabled: exit 4 before building anything, saying why and what to run" {
    # As nobody, where user namespaces are off (or seem to be).
    without_userns "$EXPERIMENT"

    run --separate-stderr "${NO_USERNS[@]}" "$EXPERIMENT"

    assert_failure 4
    assert_output ""
    assert_equal "${stderr_lines[0]}" "07-link-failure.sh: needs root, or a user namespace of its own, and this user cannot create one:"
    assert_equal "${stderr_lines[-1]}" "Run it as root instead: sudo $EXPERIMENT"
}
