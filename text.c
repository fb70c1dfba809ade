/*
 * text.c - line splitting and escaping for select_server (see text.h).
 */
#include "text.h"

#include <string.h>

/*
 * split_line - find the first line in data[0, len).  TCP is a byte stream:
 * a line may arrive in pieces, or many lines in one read, so the caller
 * keeps unconsumed bytes and calls again when more arrive.
 *
 * Returns how many bytes of data the caller may now discard, with *kind
 * saying what they were; 0 (and LINE_NONE) means "no complete line yet".
 * For LINE_OK the line is data[0, *line_len), without its newline; at_eof
 * says no more bytes will come, so a last line without a newline counts.
 * A line longer than ls->max is LINE_TOO_LONG as soon as that is certain,
 * even before its newline arrives; what follows of it is LINE_SKIPPED up
 * to and including the newline.  The caller never holds more than max
 * bytes of one line.
 */
size_t
split_line(struct line_splitter *ls, const char *data, size_t len,
           bool at_eof, enum line_kind *kind, size_t *line_len)
{
    const char *nl = len > 0 ? memchr(data, '\n', len) : NULL;
    size_t seg = nl != NULL ? (size_t)(nl - data) : len;

    *kind = LINE_NONE;
    *line_len = 0;
    if (ls->skipping) {
        if (len == 0)
            return 0;
        ls->skipping = nl == NULL;
        *kind = LINE_SKIPPED;
        return nl != NULL ? seg + 1 : len;
    }
    if (seg > ls->max) {
        ls->skipping = nl == NULL;
        *kind = LINE_TOO_LONG;
        return nl != NULL ? seg + 1 : len;
    }
    if (nl == NULL && !(at_eof && len > 0))
        return 0;
    *kind = LINE_OK;
    *line_len = seg;
    return nl != NULL ? seg + 1 : len;
}

/*
 * escape_text - copy text so that it cannot drive a terminal: C0 controls
 * except tab, DEL, C1 controls and bytes that are not valid UTF-8 become
 * "\x1b"-style escapes; valid UTF-8 text passes through unchanged.  `out`
 * needs room for 4 * len bytes.  Returns the length written.
 */
size_t
escape_text(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;

    for (size_t i = 0; i < len;) {
        size_t k = p[i] < 0x80 ? 1 : utf8_sequence(p + i, len - i);
        bool control = (p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f ||
                       (p[i] == 0xc2 && k == 2 && p[i + 1] < 0xa0);

        if (k == 0 || control) {
            for (size_t j = 0; j < (k ? k : 1); j++) {
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[p[i + j] >> 4];
                out[o++] = hex[p[i + j] & 0xf];
            }
            i += k ? k : 1;
        } else {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

/*
 * utf8_sequence - length (2-4) of the well-formed UTF-8 sequence at p, or 0
 * if it is not one: bad lead or continuation byte, truncated, overlong,
 * a surrogate, or beyond U+10FFFF.
 */
size_t
utf8_sequence(const unsigned char *p, size_t len)
{
    size_t k = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;

    if (k == 0 || p[0] > 0xf4 || len < k)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return k;
}
