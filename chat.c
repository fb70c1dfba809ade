/*
 * chat.c - chat mode: cut each client's byte stream into lines and relay
 * every line to every other client as "[fd 5 127.0.0.1:43210] text".
 *
 * In chat one client's bytes become work and memory for all the others,
 * so two limits keep one client from hurting the rest:
 *
 *   - a reader that falls CHAT_MAX_PENDING bytes behind is dropped as a
 *     "slow consumer" (queue_output() in select_server.c): what piles up
 *     for it is other people's lines, and nobody else can slow down for it;
 *
 *   - a sender has a budget, as IRC servers do ("fake lag").  Each line
 *     costs 1/--chat-lines of a second, plus 1/--chat-bytes of a second for
 *     every byte it puts in each other client's queue.  The costs add up on
 *     the sender's own clock, chat_clock_us, which never lags behind real
 *     time.  While that clock runs at most CHAT_BURST_US ahead, lines are
 *     relayed at once: typing, or pasting a screenful, goes straight
 *     through.  Further ahead, the client is "throttled": what it has
 *     already sent waits in its input buffer, its socket leaves the read
 *     set, the kernel's receive buffer fills up and TCP's flow control
 *     stops the sender.  A flooder slows down only itself, nobody is
 *     disconnected for typing fast, and the honest readers stay far from
 *     the slow-consumer limit.
 */
#include "server.h"

static bool over_budget(const struct client *c, int64_t now);
static void charge(const struct server *s, struct client *c, int64_t now,
                   size_t bytes);
static size_t chat_line(struct server *s, struct client *from,
                        const char *line, size_t len);

/* chat_input - bytes read from c: queue them behind what it sent before,
 * and relay the lines its budget allows. */
void
chat_input(struct server *s, struct client *c, const char *data, size_t len)
{
    if (buf_append(&c->in, data, len) < 0) {
        log_error(s, ENOMEM, "buffering input for fd %d", c->fd);
        mark_closing(s, c, "out of memory");
        return;
    }
    chat_relay(s, c, now_us());
}

/*
 * chat_relay - relay the complete lines waiting in c->in while c is within
 * its budget (after its EOF, an unfinished last line too).  A line longer
 * than MAX_LINE is refused with a notice to its sender, who stays; the
 * rest of it is skipped.  Then c is throttled if it has run over budget.
 */
void
chat_relay(struct server *s, struct client *c, int64_t now)
{
    static const char too_long[] =
        "*** line too long (over " STR(MAX_LINE) " bytes): not sent\n";
    bool was_throttled = c->throttled;

    while (!c->close_reason && !over_budget(c, now)) {
        const char *data = c->in.data + c->in.start;
        enum line_kind kind;
        size_t len, used = split_line(&c->lines, data, buf_len(&c->in),
                                      c->peer_eof, &kind, &len);

        if (used == 0)
            break;              /* the rest of the line is still to come */
        if (kind == LINE_OK) {
            charge(s, c, now, chat_line(s, c, data, len));
        } else {                /* too long, or more of one: not relayed */
            if (kind == LINE_TOO_LONG)
                queue_output(s, c, too_long, sizeof too_long - 1);
            charge(s, c, now, used);
        }
        buf_consume(&c->in, used);
        c->last_active_us = now;
    }
    c->throttled = over_budget(c, now);
    if (c->throttled != was_throttled)
        s->chat_throttled += c->throttled ? 1 : -1;
}

/*
 * chat_resume - a deadline of the loop: each throttled client whose clock
 * real time has caught up with gets its waiting lines relayed and, unless
 * they put it over budget again, its socket back in the read set.
 */
void
chat_resume(struct server *s, int64_t now)
{
    for (int fd = 0; s->chat_throttled > 0 && fd <= s->max_client_fd; fd++) {
        struct client *c = &s->clients[fd];

        if (c->fd < 0 || !c->throttled || c->close_reason ||
            chat_resume_time(c) > now)
            continue;
        chat_relay(s, c, now);
        close_if_finished(s, c);
    }
}

/* chat_resume_time - when a throttled client is back within its budget. */
int64_t
chat_resume_time(const struct client *c)
{
    return c->chat_clock_us - CHAT_BURST_US;
}

/* over_budget - c's clock has run more than the burst ahead of now. */
static bool
over_budget(const struct client *c, int64_t now)
{
    return c->chat_clock_us > now + CHAT_BURST_US;
}

/* charge - one line of `bytes` bytes: advance c's clock by its cost.  The
 * clock never lags behind real time, so idle time is saved up only as far
 * as the burst. */
static void
charge(const struct server *s, struct client *c, int64_t now, size_t bytes)
{
    if (c->chat_clock_us < now)
        c->chat_clock_us = now;
    c->chat_clock_us += 1000000 / s->opt.chat_lines +
                        (int64_t)bytes * 1000000 / s->opt.chat_bytes;
}

/*
 * chat_line - "[fd 5 127.0.0.1:43210] text" to the console and to every
 * other client.  A trailing CR (from telnet or nc -C) is dropped.  Returns
 * the length of the line each of them gets.
 */
static size_t
chat_line(struct server *s, struct client *from, const char *line, size_t len)
{
    int n;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    n = sprintf(s->linebuf, "[fd %d %s] ", from->fd, from->peer);
    n += (int)escape_text(line, len, s->linebuf + n);
    s->linebuf[n++] = '\n';
    if (!s->opt.quiet)
        print_bytes(s, s->linebuf, (size_t)n);
    broadcast(s, from, s->linebuf, (size_t)n);
    return (size_t)n;
}

/* broadcast - queue text for every client except one (NULL: everyone). */
void
broadcast(struct server *s, const struct client *except, const char *text,
          size_t len)
{
    for (int fd = 0; fd <= s->max_client_fd; fd++) {
        struct client *c = &s->clients[fd];

        if (c->fd >= 0 && c != except)
            queue_output(s, c, text, len);
    }
}
