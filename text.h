/*
 * text.h - cutting a byte stream into lines, and making text safe to show.
 *
 * select_server's chat relays lines from strangers, and its console reads
 * commands from the operator: both cut a byte stream into lines of bounded
 * length, and both must show arbitrary bytes without letting them drive a
 * terminal.  These functions depend on their arguments alone (no server
 * state, no I/O), so the unit tests (tests/test_text.c) and the fuzzer
 * (tests/fuzz_text.c) can call them directly.
 */
#ifndef TEXT_H
#define TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* What split_line() found at the front of the bytes it was given. */
enum line_kind {
    LINE_NONE,          /* no complete line yet: wait for more bytes */
    LINE_OK,            /* a line of *line_len bytes (newline not counted) */
    LINE_TOO_LONG,      /* a line over the limit: refuse it, once */
    LINE_SKIPPED,       /* more of a line already refused: drop silently */
};

/* One stream's splitter: its longest line, and whether the rest of a line
 * that was too long is still being skipped. */
struct line_splitter {
    size_t max;
    bool skipping;
};

size_t split_line(struct line_splitter *ls, const char *data, size_t len,
                  bool at_eof, enum line_kind *kind, size_t *line_len);
size_t escape_text(const char *in, size_t len, char *out);
size_t utf8_sequence(const unsigned char *p, size_t len);

#endif /* TEXT_H */
