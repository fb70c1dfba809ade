/*
 * output.c - everything the server prints: log lines, console replies, the
 * chat shown to the operator, the trace, error messages.
 *
 * The operator's screen is one more slow client.  stdout may be a terminal
 * stopped with Ctrl-S, a pipe into `less` that nobody pages through, a FIFO
 * nobody reads, an ssh session whose network has gone quiet.  A single
 * blocking write() to any of them - and printf() makes such writes sooner
 * or later - would stop the whole select() loop: every client, and even
 * SIGTERM, would wait for that reader.  So the server never writes a line
 * directly.  Each line goes into a bounded queue (struct output), and the
 * loop writes the queue only as far as that cannot block: a file at once;
 * a pipe, FIFO or terminal through a non-blocking description of our own,
 * never by making the shell's non-blocking; a socket with MSG_DONTWAIT
 * (struct out_fd in common.h says why and how; select_client writes its
 * stdout the same way).  The descriptor joins the write set only while
 * lines wait for it.
 *
 * Past OUTPUT_CAP bytes queued, lines are dropped and counted; once the
 * queue has drained to half of that, one line says how many were lost.
 * (One more way a terminal can stop a writer: with `stty tostop`, a
 * background job that writes to it gets SIGTTOU, which stops it.  The
 * server ignores SIGTTOU, so it writes rather than stop: see setup_signals.)
 */
#include "server.h"

static void output_write(struct server *s, struct output *o);
static void output_failed(struct server *s, struct output *o, int err);
static void output_vprintf(struct server *s, struct output *o,
                           const char *prefix, const char *fmt, va_list ap,
                           int errnum);
static void output_append(struct server *s, struct output *o,
                          const char *text, size_t len);
static bool output_room(struct server *s, struct output *o, size_t len,
                        size_t lines);
static size_t count_lines(const char *text, size_t len);
static size_t output_streams(struct server *s, struct output *streams[2]);

/*
 * output_open - set up stdout and stderr.  When both are the same file,
 * pipe or terminal (`2>&1 | less`, or simply a terminal), they share one
 * queue, so the lines come out in the order they were made.
 */
void
output_open(struct server *s)
{
    struct stat out, err;

    out_fd_open(&s->out.dst, STDOUT_FILENO);
    if (fstat(STDOUT_FILENO, &out) == 0 && fstat(STDERR_FILENO, &err) == 0 &&
        out.st_dev == err.st_dev && out.st_ino == err.st_ino) {
        s->err = &s->out;
    } else {
        out_fd_open(&s->err_stream.dst, STDERR_FILENO);
        s->err = &s->err_stream;
    }
}

/* output_streams - stderr's queue, then stdout's (an error must not be
 * overtaken by the reply printed after it), or just the one when they are
 * the same file.  Returns how many. */
static size_t
output_streams(struct server *s, struct output *streams[2])
{
    if (s->err == &s->out) {
        streams[0] = &s->out;
        return 1;
    }
    streams[0] = s->err;
    streams[1] = &s->out;
    return 2;
}

/* ------------------------------------------------------------------ */
/* What the rest of the server calls                                   */
/* ------------------------------------------------------------------ */

/* print_line - one line on stdout: a console reply, a trace line. */
void
print_line(struct server *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    output_vprintf(s, &s->out, "", fmt, ap, 0);
    va_end(ap);
}

/* print_bytes - text already formatted, ending in a newline, on stdout. */
void
print_bytes(struct server *s, const char *text, size_t len)
{
    output_append(s, &s->out, text, len);
}

/* log_event - one line on stdout for accepts, closes and the like;
 * --quiet turns these off. */
void
log_event(struct server *s, const char *fmt, ...)
{
    va_list ap;

    if (s->opt.quiet)
        return;
    va_start(ap, fmt);
    output_vprintf(s, &s->out, "", fmt, ap, 0);
    va_end(ap);
}

/*
 * log_error - "select_server: message[: strerror(errnum)]" on stderr, as
 * report_error() in common.h prints it, but queued.  Pass errnum 0 for a
 * message without a system error.
 */
void
log_error(struct server *s, int errnum, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    output_vprintf(s, s->err, PROGNAME ": ", fmt, ap, errnum);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* The loop's side: when and how much to write                         */
/* ------------------------------------------------------------------ */

/* output_flush - write what can go now. */
void
output_flush(struct server *s)
{
    struct output *streams[2];
    size_t n = output_streams(s, streams);

    for (size_t i = 0; i < n; i++)
        output_write(s, streams[i]);
}

/* output_watch - into the write set go the streams that still hold
 * lines; select() then says when they can take more. */
void
output_watch(struct server *s, fd_set *wset, int *maxfd)
{
    struct output *streams[2];
    size_t n = output_streams(s, streams);

    for (size_t i = 0; i < n; i++)
        if (buf_len(&streams[i]->queue) > 0 && !streams[i]->broken) {
            FD_SET(streams[i]->dst.fd, wset);
            if (streams[i]->dst.fd > *maxfd)
                *maxfd = streams[i]->dst.fd;
        }
}

/* output_writable - select() says these streams can take more: write. */
void
output_writable(struct server *s, const fd_set *wset)
{
    struct output *streams[2];
    size_t n = output_streams(s, streams);

    for (size_t i = 0; i < n; i++)
        if (buf_len(&streams[i]->queue) > 0 &&
            FD_ISSET(streams[i]->dst.fd, wset)) {
            streams[i]->ready = true;
            output_write(s, streams[i]);
        }
}

/* output_pending - lines still waiting that a reader could yet take. */
bool
output_pending(const struct server *s)
{
    return (buf_len(&s->out.queue) > 0 && !s->out.broken) ||
           (buf_len(&s->err->queue) > 0 && !s->err->broken);
}

/*
 * output_drain - on the way out: the last lines ("bye"), for as long as
 * the shutdown deadline allows, and no longer.  Whatever a reader has not
 * taken by then is lost: a server must not hang at exit for its log.
 */
void
output_drain(struct server *s, int64_t deadline_us)
{
    for (;;) {
        int64_t left;
        struct timeval tv;
        fd_set wset;
        int maxfd = -1;

        output_flush(s);
        if (!output_pending(s) || (left = deadline_us - now_us()) <= 0)
            return;
        FD_ZERO(&wset);
        output_watch(s, &wset, &maxfd);
        tv.tv_sec = (time_t)(left / 1000000);
        tv.tv_usec = (suseconds_t)(left % 1000000);
        if (select(maxfd + 1, NULL, &wset, NULL, &tv) < 0) {
            if (errno == EINTR)
                continue;       /* the set says nothing: ask again */
            return;
        }
        output_writable(s, &wset);
    }
}

/* output_close - the end: what is still queued is lost, and our own
 * copies of stdout and stderr are closed. */
void
output_close(struct server *s)
{
    struct output *streams[2];
    size_t n = output_streams(s, streams);

    for (size_t i = 0; i < n; i++) {
        buf_free(&streams[i]->queue);
        out_fd_close(&streams[i]->dst);
    }
}

/* ------------------------------------------------------------------ */
/* The queue                                                           */
/* ------------------------------------------------------------------ */

/* output_write - write o's queue as far as that cannot block. */
static void
output_write(struct server *s, struct output *o)
{
    char notice[64];
    int len;

    while (buf_len(&o->queue) > 0 && !o->broken) {
        ssize_t n;

        if (o->dst.how == OUT_PIPE_BUF && !o->ready)
            break;              /* select() has not said so */
        o->ready = false;       /* OUT_PIPE_BUF: one write per readiness */
        n = out_fd_write(&o->dst, o->queue.data + o->queue.start,
                         buf_len(&o->queue));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                output_failed(s, o, errno);
            break;
        }
        buf_consume(&o->queue, (size_t)n);
    }
    /* Drained far enough after dropping: say how much was lost. */
    if (o->dropping && buf_len(&o->queue) <= OUTPUT_CAP / 2) {
        o->dropping = false;
        len = snprintf(notice, sizeof notice, "*** %llu log line%s dropped\n",
                       (unsigned long long)o->dropped,
                       plural((long)o->dropped));
        o->dropped = 0;
        output_append(s, o, notice, (size_t)len);
    }
}

/*
 * output_failed - the reader is gone (EPIPE: `| head` has exited), or the
 * file cannot grow (ENOSPC).  The server keeps serving its clients; this
 * stream's lines are discarded from now on, and the other stream says so.
 */
static void
output_failed(struct server *s, struct output *o, int err)
{
    o->broken = true;
    buf_free(&o->queue);
    if (o == &s->out && s->err != &s->out)
        log_error(s, 0, "write stdout: %s (the log is discarded from now on;"
                  " clients are still served)", strerror(err));
}

/*
 * output_vprintf - queue one line: prefix, fmt and, if errnum is not 0,
 * ": " and its message.  vsnprintf() runs once to measure the line, and
 * once to format it straight into the queue.
 */
static void
output_vprintf(struct server *s, struct output *o, const char *prefix,
               const char *fmt, va_list ap, int errnum)
{
    const char *why = errnum != 0 ? strerror(errnum) : "";
    size_t plen = strlen(prefix), wlen = errnum != 0 ? strlen(why) + 2 : 0;
    size_t len;
    va_list again;
    char *p;
    int n;

    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    len = plen + (size_t)(n < 0 ? 0 : n) + wlen + 1;
    /* + 1 in the room asked for: vsnprintf() ends with a NUL. */
    if (n < 0 || !output_room(s, o, len + 1, 1) ||
        (p = buf_reserve(&o->queue, len + 1)) == NULL) {
        va_end(again);
        return;
    }
    memcpy(p, prefix, plen);
    vsnprintf(p + plen, (size_t)n + 1, fmt, again);
    va_end(again);
    if (errnum != 0)
        snprintf(p + plen + (size_t)n, wlen + 1, ": %s", why);
    p[len - 1] = '\n';
    o->queue.end += len;
}

/* output_append - queue text that is already whole lines. */
static void
output_append(struct server *s, struct output *o, const char *text,
              size_t len)
{
    if (output_room(s, o, len, count_lines(text, len)) &&
        buf_append(&o->queue, text, len) < 0)
        s->lines_dropped += count_lines(text, len);
}

/*
 * output_room - may len more bytes (holding `lines` lines) be queued?  If
 * not, they are counted as dropped.  Over OUTPUT_CAP, dropping begins, and
 * it goes on until output_write() has drained the queue to half the cap:
 * what comes out has one gap with a notice, not a line lost here and there.
 */
static bool
output_room(struct server *s, struct output *o, size_t len, size_t lines)
{
    if (o->broken)
        return false;
    if (!o->dropping && buf_len(&o->queue) + len > OUTPUT_CAP)
        o->dropping = true;
    if (o->dropping) {
        o->dropped += lines;
        s->lines_dropped += lines;
        return false;
    }
    return true;
}

/* count_lines - newlines in text: how many lines it holds. */
static size_t
count_lines(const char *text, size_t len)
{
    size_t n = 0;
    const char *end = text + len;

    while ((text = memchr(text, '\n', (size_t)(end - text))) != NULL) {
        n++;
        text++;
    }
    return n;
}
