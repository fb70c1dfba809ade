/*
 * fuzz_text.c - a libFuzzer target for text.c: the line splitter and the
 * escaper, fed whatever bytes the fuzzer comes up with.  Besides crashes
 * and sanitizer reports, it checks what the functions promise:
 *
 *   - split_line, fed the input in pieces as reads would deliver it, finds
 *     exactly the lines a plain split at every '\n' finds: each line of at
 *     most max bytes whole, each longer one refused exactly once, a last
 *     line without '\n' only at EOF; and the caller never has to hold more
 *     than max bytes of a line;
 *   - escape_text writes at most 4 bytes for each byte in, and what it
 *     writes is valid UTF-8 with no control character but tab.
 *
 * Build and run: make fuzz (clang; FUZZ_SECONDS=N for longer than 60 s).
 * The first two bytes of an input choose the longest line (1-64) and the
 * size of the pieces (1-16); the rest is the text.
 */
#include "../text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - a broken promise is a crash, which libFuzzer reports and keeps. */
#define check(cond) do { if (!(cond)) abort(); } while (0)

/* expected_next - the reference: the next line of in[*pos, len) when the
 * whole input is split at '\n' at once (the last line, if it has no '\n',
 * counts: at the end of the input is EOF).  Returns what split_line should
 * say of it, or LINE_NONE when none is left. */
static enum line_kind
expected_next(const char *in, size_t len, size_t max, size_t *pos,
              size_t *line_start, size_t *line_len)
{
    const char *nl;
    size_t seg;

    if (*pos >= len)
        return LINE_NONE;
    nl = memchr(in + *pos, '\n', len - *pos);
    seg = nl ? (size_t)(nl - (in + *pos)) : len - *pos;
    *line_start = *pos;
    *line_len = seg;
    *pos += nl ? seg + 1 : seg;
    return seg > max ? LINE_TOO_LONG : LINE_OK;
}

static void
check_split(const char *in, size_t len, size_t max, size_t step)
{
    struct line_splitter ls = { .max = max };
    char *held = malloc(len + 1);
    size_t nheld = 0, fed = 0, ref_pos = 0;

    check(held != NULL);
    do {
        size_t add = len - fed < step ? len - fed : step;
        bool eof = fed + add == len;
        enum line_kind kind;
        size_t line_len, used;

        memcpy(held + nheld, in + fed, add);
        nheld += add;
        fed += add;
        while ((used = split_line(&ls, held, nheld, eof, &kind,
                                  &line_len)) > 0) {
            size_t ref_start, ref_len;

            check(used <= nheld && kind != LINE_NONE);
            if (kind != LINE_SKIPPED) {
                enum line_kind want = expected_next(in, len, max, &ref_pos,
                                                    &ref_start, &ref_len);
                check(kind == want);
                if (kind == LINE_OK)
                    check(line_len == ref_len && line_len <= max &&
                          memcmp(held, in + ref_start, line_len) == 0);
            }
            memmove(held, held + used, nheld - used);
            nheld -= used;
        }
        check(kind == LINE_NONE);
        /* What waits is part of one line, and never more than max of it. */
        check(nheld <= max && memchr(held, '\n', nheld) == NULL);
    } while (fed < len);
    /* At EOF every byte was used, and every line the reference found. */
    check(nheld == 0 && ref_pos >= len);
    free(held);
}

static void
check_escape(const char *in, size_t len)
{
    unsigned char *out = malloc(4 * len + 1);
    size_t n;

    check(out != NULL);
    n = escape_text(in, len, (char *)out);
    check(n <= 4 * len);
    for (size_t i = 0; i < n;) {
        size_t k = out[i] < 0x80 ? 1 : utf8_sequence(out + i, n - i);

        check(k > 0);                                   /* valid UTF-8 */
        check(out[i] >= 0x20 || out[i] == '\t');        /* no C0 */
        check(out[i] != 0x7f);                          /* no DEL */
        check(!(out[i] == 0xc2 && out[i + 1] < 0xa0));  /* no C1 */
        i += k;
    }
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t max, step;

    if (size < 2)
        return 0;
    max = data[0] % 64 + 1;
    step = data[1] % 16 + 1;
    check_split((const char *)data + 2, size - 2, max, step);
    check_escape((const char *)data + 2, size - 2);
    return 0;
}
