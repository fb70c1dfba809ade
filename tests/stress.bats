# stress.bats - bench/stress, the seeded stress run, checked on a short
# run: it passes against a sound server and says so in one key=value line,
# and it fails - naming why - when the server writes anything unexpected on
# stderr or cannot start.  A bad command line is exit status 2.  The long
# runs (60 s, or 15 s against the sanitizer build) are not for this suite.

load test_helper

# The driver, built by make test; $SERVER is the build under test (ASan in
# `make sanitize`).
STRESS=$BATS_TEST_DIRNAME/../bench/stress

# summary - the last line of stdout: the key=value summary.
summary() {
    printf '%s\n' "${lines[${#lines[@]} - 1]}"
}

@test "stress: a short run of echo then chat passes, with one key=value summary line" {
    run --separate-stderr timeout 40 "$STRESS" --seed 42 --seconds 4 \
        --clients 40 --server "$SERVER" 3>&-
    assert_success
    assert_equal "$stderr" ""
    assert_line --index 0 --regexp '^stress: seed=42 seconds=4 mode=both .*; re-run: .* --seed 42 --seconds 4 --clients 40 --mode both --server '
    run summary
    assert_output --regexp '^seed=42 seconds=4 mode=both clients=40 .* round_trips=[1-9][0-9]* chat_lines=[1-9][0-9]* .* result=pass$'
}

@test "stress: an unexpected line on the server's stderr fails the run and is shown" {
    # A server that says something odd before it starts serving.
    printf '#!/bin/sh\necho "select_server: something odd" >&2\nexec "%s" "$@"\n' \
        "$SERVER" >"$BATS_TEST_TMPDIR/odd_server"
    chmod +x "$BATS_TEST_TMPDIR/odd_server"
    run --separate-stderr timeout 40 "$STRESS" --seconds 2 --mode echo \
        --clients 10 --server "$BATS_TEST_TMPDIR/odd_server" 3>&-
    assert_failure 1
    assert_regex "$stderr" "stress: FAIL: the server wrote 1 unexpected line on stderr"
    assert_regex "$stderr" "    select_server: something odd"
    run summary
    assert_output --regexp ' result=fail$'
}

@test "stress: a server that cannot start fails the run with its reason" {
    run --separate-stderr timeout 40 "$STRESS" --seconds 2 --mode echo \
        --server "$BATS_TEST_TMPDIR/no-such-server" 3>&-
    assert_failure 1
    assert_regex "$stderr" "stress: FAIL: echo: the server exited before its first line: exit status 127"
    assert_regex "$stderr" "stress: exec [^ ]*/no-such-server: No such file or directory"
}

@test "stress: a bad command line is exit status 2, with a hint" {
    local bad
    for bad in "--seconds 0" "--mode fast" "--clients x" "--bogus" \
               "--seed" "stray" "--mode both --seconds 2"; do
        # shellcheck disable=SC2086  # split on purpose
        run --separate-stderr "$STRESS" $bad
        assert_failure 2
        assert_output ""
        assert_regex "$stderr" "^stress: .*
Try 'stress --help' for more information\.$"
    done
    run "$STRESS" --help
    assert_success
    assert_line --index 0 "Usage: stress [options]"
}
