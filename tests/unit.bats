# unit.bats - the part of the server that is pure text handling, tested in
# C without a network: the UTF-8 decoder behind the chat's escaping (the
# classic decoder stress cases), the escaper, and the line splitter that
# the chat and the console share, fed every input in pieces of several
# sizes, as reads deliver them.  `make fuzz` throws random bytes at the
# same functions.

load test_helper

@test "text.c: UTF-8 decoding, escaping and line splitting pass every unit check" {
    run --separate-stderr "$BIN/tests/test_text"
    assert_success
    assert_output --regexp '^[0-9]+ checks, 0 failed$'
    assert_equal "$stderr" ""
}
