/*
 * test_text.c - unit tests of text.c: the UTF-8 decoder, the escaper, and
 * the line splitter that the chat and the console share.
 *
 * The UTF-8 cases follow the classic decoder stress tests (Markus Kuhn's
 * UTF-8-test.txt): the first and last sequence of each length, overlong
 * forms, surrogates, the U+10FFFF edge, truncated sequences and stray
 * continuation bytes.  Each failed check prints one line; the exit status
 * is 1 if any failed.  tests/unit.bats runs this program.
 */
#include "../text.h"

#include <stdio.h>
#include <string.h>

static int failures, checks;

/* expect - one check: prints "not ok" and counts it when cond is false. */
static void
expect(int cond, const char *what)
{
    checks++;
    if (!cond) {
        failures++;
        printf("not ok: %s\n", what);
    }
}

/* escaped - escape_text() of len bytes of s, as a C string. */
static const char *
escaped(const char *s, size_t len)
{
    static char out[4 * 256 + 1];

    out[escape_text(s, len, out)] = '\0';
    return out;
}

static void
test_utf8_sequence(void)
{
    static const struct {
        const char *bytes;
        size_t len, want;
        const char *what;
    } cases[] = {
        /* Valid: the first and last of each length. */
        { "\xc2\x80", 2, 2, "U+0080, first 2-byte" },
        { "\xdf\xbf", 2, 2, "U+07FF, last 2-byte" },
        { "\xe0\xa0\x80", 3, 3, "U+0800, first 3-byte" },
        { "\xef\xbf\xbf", 3, 3, "U+FFFF, last 3-byte" },
        { "\xf0\x90\x80\x80", 4, 4, "U+10000, first 4-byte" },
        { "\xf4\x8f\xbf\xbf", 4, 4, "U+10FFFF, the last code point" },
        { "\xed\x9f\xbf", 3, 3, "U+D7FF, just below the surrogates" },
        { "\xee\x80\x80", 3, 3, "U+E000, just above the surrogates" },
        /* Beyond U+10FFFF. */
        { "\xf4\x90\x80\x80", 4, 0, "U+110000" },
        { "\xf5\x80\x80\x80", 4, 0, "lead byte F5" },
        { "\xf7\xbf\xbf\xbf", 4, 0, "U+1FFFFF" },
        { "\xf8\x88\x80\x80\x80", 5, 0, "a 5-byte form" },
        { "\xfc\x84\x80\x80\x80\x80", 6, 0, "a 6-byte form" },
        { "\xfe", 1, 0, "byte FE" },
        { "\xff", 1, 0, "byte FF" },
        /* Overlong forms. */
        { "\xc0\xaf", 2, 0, "'/' overlong in 2 bytes" },
        { "\xc1\xbf", 2, 0, "U+007F overlong in 2 bytes" },
        { "\xe0\x80\xaf", 3, 0, "'/' overlong in 3 bytes" },
        { "\xe0\x9f\xbf", 3, 0, "U+07FF overlong in 3 bytes" },
        { "\xf0\x80\x80\xaf", 4, 0, "'/' overlong in 4 bytes" },
        { "\xf0\x8f\xbf\xbf", 4, 0, "U+FFFF overlong in 4 bytes" },
        { "\xc0\x80", 2, 0, "NUL overlong (modified UTF-8)" },
        /* UTF-16 surrogates, alone or in pairs. */
        { "\xed\xa0\x80", 3, 0, "U+D800, first surrogate" },
        { "\xed\xbf\xbf", 3, 0, "U+DFFF, last surrogate" },
        { "\xed\xa0\x80\xed\xb0\x80", 6, 0, "a surrogate pair" },
        /* Truncated: the sequence ends early. */
        { "\xc2", 1, 0, "2-byte lead, nothing after" },
        { "\xe2\x9c", 2, 0, "3-byte sequence, one byte short" },
        { "\xf0\x9f\x98", 3, 0, "4-byte sequence, one byte short" },
        { "\xe2\x41\x41", 3, 0, "3-byte lead, ASCII after" },
        { "\xf0\x9f\x98\x41", 4, 0, "4-byte sequence, ASCII last" },
        /* Continuation bytes with no lead. */
        { "\x80", 1, 0, "a lone continuation byte 80" },
        { "\xbf", 1, 0, "a lone continuation byte BF" },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[128];

        snprintf(what, sizeof what, "utf8_sequence: %s", cases[i].what);
        expect(utf8_sequence((const unsigned char *)cases[i].bytes,
                             cases[i].len) == cases[i].want, what);
    }
}

static void
test_escape_text(void)
{
    /* Text passes unchanged; tab too. */
    expect(strcmp(escaped("plain text", 10), "plain text") == 0,
           "escape: ASCII text unchanged");
    expect(strcmp(escaped("a\tb", 3), "a\tb") == 0, "escape: tab unchanged");
    expect(strcmp(escaped("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", 15),
                  "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80") == 0,
           "escape: UTF-8 of 2, 3 and 4 bytes unchanged");
    expect(strcmp(escaped("\xf4\x8f\xbf\xbf", 4), "\xf4\x8f\xbf\xbf") == 0,
           "escape: U+10FFFF unchanged");
    expect(strcmp(escaped("\xc2\xa0", 2), "\xc2\xa0") == 0,
           "escape: U+00A0, the first after C1, unchanged");
    /* Controls: C0 (but tab), DEL, C1, NUL. */
    expect(strcmp(escaped("\x1b[31m", 5), "\\x1b[31m") == 0,
           "escape: ESC of a colour sequence");
    expect(strcmp(escaped("\r\n\a\x7f", 4), "\\x0d\\x0a\\x07\\x7f") == 0,
           "escape: CR, LF, BEL, DEL");
    expect(strcmp(escaped("a\0b", 3), "a\\x00b") == 0, "escape: NUL");
    expect(strcmp(escaped("\xc2\x9b", 2), "\\xc2\\x9b") == 0,
           "escape: C1 CSI (U+009B), both bytes");
    expect(strcmp(escaped("\xc2\x80", 2), "\\xc2\\x80") == 0,
           "escape: U+0080, the first C1");
    /* Invalid UTF-8: each bad byte on its own, the rest kept. */
    expect(strcmp(escaped("\xff", 1), "\\xff") == 0, "escape: FF");
    expect(strcmp(escaped("\xc0\xaf", 2), "\\xc0\\xaf") == 0,
           "escape: an overlong '/', byte by byte");
    expect(strcmp(escaped("\xed\xa0\x80", 3), "\\xed\\xa0\\x80") == 0,
           "escape: a surrogate, byte by byte");
    expect(strcmp(escaped("\xf4\x90\x80\x80", 4), "\\xf4\\x90\\x80\\x80")
           == 0, "escape: U+110000, byte by byte");
    expect(strcmp(escaped("\xe2\x9c", 2), "\\xe2\\x9c") == 0,
           "escape: a truncated sequence at the end");
    expect(strcmp(escaped("\xe2\x9c" "A", 3), "\\xe2\\x9cA") == 0,
           "escape: a truncated sequence, then ASCII kept");
    expect(strcmp(escaped("\x80\xe2\x9c\x93", 4), "\\x80\xe2\x9c\x93") == 0,
           "escape: a stray continuation byte, then a valid check mark");
    /* The worst case fits in the documented 4 * len. */
    expect(escape_text("\x01\x02\x03", 3, (char[13]){ 0 }) == 12,
           "escape: 4 bytes out for each control byte in");
}

/*
 * split_all - feed data to a splitter in pieces of `step` bytes, as reads
 * would, and write what it found to out: "L<len>:<text>|" for a line, "T|"
 * for one refused as too long, then the bytes left over as "[rest]".  (The
 * skipped rest of a long line is silent: where it ends depends on how the
 * bytes were cut into pieces.)  Returns the length of out.
 */
static size_t
split_all(const char *data, size_t len, size_t max, size_t step, bool at_eof,
          char *out)
{
    struct line_splitter ls = { .max = max };
    char held[256];
    size_t nheld = 0, o = 0, fed = 0;

    do {
        size_t add = len - fed < step ? len - fed : step;
        bool eof = at_eof && fed + add == len;
        enum line_kind kind;
        size_t line_len, used;

        memcpy(held + nheld, data + fed, add);
        nheld += add;
        fed += add;
        while ((used = split_line(&ls, held, nheld, eof, &kind,
                                  &line_len)) > 0) {
            if (kind == LINE_OK) {
                o += (size_t)sprintf(out + o, "L%zu:", line_len);
                memcpy(out + o, held, line_len);
                o += line_len;
                out[o++] = '|';
            } else if (kind == LINE_TOO_LONG) {
                o += (size_t)sprintf(out + o, "T|");
            }
            memmove(held, held + used, nheld - used);
            nheld -= used;
        }
    } while (fed < len);
    out[o++] = '[';
    memcpy(out + o, held, nheld);
    o += nheld;
    out[o++] = ']';
    return o;
}

/* BYTES - a string literal and its length, NUL bytes included. */
#define BYTES(s) s, sizeof s - 1

static void
test_split_line(void)
{
    static const struct {
        const char *in;
        size_t len, max;
        bool eof;
        const char *want;
        size_t want_len;
        const char *what;
    } cases[] = {
        { BYTES("one\ntwo\n"), 8, false, BYTES("L3:one|L3:two|[]"),
          "two lines" },
        { BYTES("one\ntw"), 8, false, BYTES("L3:one|[tw]"),
          "a line waits for its end" },
        { BYTES("one\ntw"), 8, true, BYTES("L3:one|L2:tw|[]"),
          "at EOF, a last line without a newline counts" },
        { BYTES("\n\n"), 8, false, BYTES("L0:|L0:|[]"), "empty lines" },
        { BYTES("12345678\n"), 8, false, BYTES("L8:12345678|[]"),
          "a line of exactly max bytes" },
        { BYTES("123456789\nok\n"), 8, false, BYTES("T|L2:ok|[]"),
          "max + 1 bytes: too long, then the next line" },
        { BYTES("123456789abc\nok\n"), 8, false, BYTES("T|L2:ok|[]"),
          "too long before its newline came: the rest is skipped" },
        { BYTES("123456789"), 8, false, BYTES("T|[]"),
          "too long is said at once, without waiting for the newline" },
        { BYTES("a\r\n"), 8, false, BYTES("L2:a\r|[]"),
          "a CR is kept: the caller decides" },
        { BYTES("nul\0byte\n"), 16, false, BYTES("L8:nul\0byte|[]"),
          "a NUL byte is data, not an end" },
    };
    static const size_t steps[] = { 1, 2, 3, 5, 64 };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t j = 0; j < sizeof steps / sizeof steps[0]; j++) {
            char got[512], what[160];
            size_t got_len = split_all(cases[i].in, cases[i].len,
                                       cases[i].max, steps[j], cases[i].eof,
                                       got);

            snprintf(what, sizeof what, "split_line: %s (pieces of %zu)",
                     cases[i].what, steps[j]);
            expect(got_len == cases[i].want_len &&
                   memcmp(got, cases[i].want, got_len) == 0, what);
        }
}

int
main(void)
{
    test_utf8_sequence();
    test_escape_text();
    test_split_line();
    printf("%d checks, %d failed\n", checks, failures);
    return failures != 0;
}
