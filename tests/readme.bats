# readme.bats - the README is documentation students trust: the usage text
# it shows must be exactly what the programs print, and every console
# command the server knows must be in its table.

load test_helper

# readme_block NAME - the fenced block that follows <!-- usage:NAME -->.
readme_block() {
    awk -v marker="<!-- usage:$1 -->" '
        $0 == marker { found = 1; next }
        found && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }
    ' "$BATS_TEST_DIRNAME/../README.md"
}

@test "the README shows exactly what select_server --help prints" {
    run --separate-stderr "$SERVER" --help
    assert_success
    [ -n "$output" ]
    assert_equal "$(readme_block select_server)" "$output"
}

@test "the README shows exactly what select_client --help prints" {
    run --separate-stderr "$CLIENT" --help
    assert_success
    [ -n "$output" ]
    assert_equal "$(readme_block select_client)" "$output"
}

@test "every console command in the server's help is in the README's table" {
    start_server
    console help
    wait_for "the help text" server_says '^  quit '
    local commands
    commands=$(sed -n 's/^  \([a-z]*\) .*/\1/p' "$SERVER_OUT")
    [ "$(wc -w <<<"$commands")" -eq 10 ]
    for cmd in $commands; do
        grep -q "^| \`$cmd" "$BATS_TEST_DIRNAME/../README.md" ||
            fail "console command '$cmd' is missing from the README"
    done
}
