/*
 * common.h - what select_server and select_client share.
 *
 * Header-only on purpose: every function is `static inline`, so each program
 * is a single .c file plus this header, builds with one compiler call, and a
 * student reading either program finds every helper one file away.  (The
 * `inline` only keeps the compiler quiet about the helpers one of the two
 * programs does not use.)  Nothing
 * here is written twice in the programs, and nothing here belongs to only one
 * of them.
 *
 * Contents, in order:
 *   errors and usage     report_error(), usage_error(), exit_usage()
 *   standard fds         open_std_fds()
 *   strict parsing       parse_long(), parse_port(), parse_seconds()
 *   descriptors          set_nonblocking(), write_all()
 *   stdout, never blocked  struct out_fd: out_fd_open(), out_fd_write()
 *   time                 now_us(), format_seconds()
 *   addresses            format_sockaddr(), format_socket_address()
 *   the byte buffer      struct buffer and buf_*()
 *   select() tracing     format_fdset(), format_select_call/result()
 *
 * Each program defines PROGNAME and _POSIX_C_SOURCE before including this.
 */
#ifndef COMMON_H
#define COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PROGNAME
#error "define PROGNAME before including common.h"
#endif

#define VERSION "1.0.0"

/* A numeric host: an IPv6 address, "%", an interface name (scope). */
#define HOST_STRLEN (INET6_ADDRSTRLEN + 1 + 16)
/* "[" + host + "]:" + a port + NUL, with room to spare. */
#define ADDR_STRLEN (HOST_STRLEN + 16)

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

/* ------------------------------------------------------------------ */
/* Error reporting                                                     */
/* ------------------------------------------------------------------ */

/*
 * report_error - print "PROGNAME: message[: strerror(errnum)]" on stderr.
 * Pass errnum 0 for a message without a system error.  Callers save errno
 * in a local before formatting anything, since any library call may change it.
 */
static inline void PRINTF_LIKE(2, 3)
report_error(int errnum, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (errnum != 0)
        fprintf(stderr, "%s: %s: %s\n", PROGNAME, msg, strerror(errnum));
    else
        fprintf(stderr, "%s: %s\n", PROGNAME, msg);
}

/* Exit status for a bad command line, in both programs.  The measuring
 * instruments in bench/, whose status 1 means "the measurement failed",
 * define their own before including this. */
#ifndef EXIT_USAGE
#define EXIT_USAGE 1
#endif

/* exit_usage - the --help hint after a command-line error, then exit 1. */
static inline _Noreturn void
exit_usage(void)
{
    fprintf(stderr, "Try '%s --help' for more information.\n", PROGNAME);
    exit(EXIT_USAGE);
}

/* usage_error - one line naming what is wrong, the hint, and exit 1. */
static inline _Noreturn void PRINTF_LIKE(1, 2)
usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report_error(0, "%s", msg);
    exit_usage();
}

/*
 * open_std_fds - put /dev/null in place of stdin, stdout or stderr if the
 * program was started with one closed.  Otherwise a socket would become
 * fd 0, 1 or 2: the console would read a client, or logs would go to one.
 * Returns 0, or -1 with errno set.
 */
static inline int
open_std_fds(void)
{
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        if (open("/dev/null", O_RDWR) != fd)    /* the lowest free: fd */
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Strict number parsing: the whole string must be the number.         */
/* ------------------------------------------------------------------ */

/* parse_long - decimal integer in [min, max]; returns 0, or -1 if invalid. */
static inline int
parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0' || !(*s == '-' || (*s >= '0' && *s <= '9')))
        return -1;              /* strtol would skip spaces and accept '+' */
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* parse_port - a TCP/UDP port in [min, 65535]; returns 0, or -1. */
static inline int
parse_port(const char *s, long min, unsigned short *port)
{
    long v;

    if (parse_long(s, min, 65535, &v) < 0)
        return -1;
    *port = (unsigned short)v;
    return 0;
}

/*
 * parse_seconds - a duration such as "30" or "0.25", at most `max` seconds,
 * into microseconds.  Only digits and one point are accepted (no signs,
 * exponents, "inf" or hex, all of which strtod would take).  Returns 0 or -1.
 */
static inline int
parse_seconds(const char *s, long max, int64_t *out_us)
{
    int64_t whole = 0, frac = 0, scale = 1000000;
    bool digits = false;

    for (; *s >= '0' && *s <= '9'; s++) {
        digits = true;
        whole = whole * 10 + (*s - '0');
        if (whole > max)
            return -1;
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++) {
            digits = true;
            if (scale > 1) {
                scale /= 10;
                frac += (*s - '0') * scale;
            }
        }
    }
    if (!digits || *s != '\0' || (whole == max && frac > 0))
        return -1;
    *out_us = whole * 1000000 + frac;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Descriptors                                                         */
/* ------------------------------------------------------------------ */

/* set_nonblocking - add O_NONBLOCK to fd's flags; returns 0, or -1 (errno). */
static inline int
set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/*
 * write_all - write every byte to a *blocking* descriptor, resuming after
 * partial writes and EINTR.  Returns 0, or -1 with errno set.  Never used on
 * a non-blocking socket: that is what the buffers and the write set are for.
 */
static inline int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* stdout, never blocked                                               */
/* ------------------------------------------------------------------ */

/*
 * struct out_fd - how to write to stdout (or stderr) so that a write
 * never blocks, while the descriptor stays blocking for everyone else.
 *
 * O_NONBLOCK belongs to the open file description, not to the descriptor,
 * and the descriptions behind stdin, stdout and stderr are shared with the
 * shell and with every program it runs in the same terminal or pipeline:
 * set it on fd 1 and they find their output non-blocking too, and fail
 * with EAGAIN.  So:
 *   OUT_ANY       a regular file or /dev/null never waits for a reader:
 *                 write all of it.  A pipe, FIFO or terminal is opened a
 *                 second time, which makes a description of our own, and
 *                 that one is made non-blocking: write until EAGAIN.
 *                 Linux reaches any descriptor's object through
 *                 /proc/self/fd/N, anonymous pipes included; elsewhere a
 *                 terminal can be opened by its name.
 *   OUT_SOCKET    a socket (a service manager's log stream, or inetd):
 *                 send() with MSG_DONTWAIT.
 *   OUT_PIPE_BUF  a pipe or terminal we may not open again (no /proc, no
 *                 permission): select() calls a pipe writable when
 *                 PIPE_BUF bytes fit, and a blocking write of at most that
 *                 much then cannot wait.  For a terminal that is a good
 *                 guess, not a promise.
 */
struct out_fd {
    int fd;                     /* the descriptor to write */
    bool own;                   /* fd is our own copy: close it at the end */
    enum { OUT_ANY, OUT_SOCKET, OUT_PIPE_BUF } how;
};

/* out_fd_open - decide how to write fd (see struct out_fd). */
static inline void
out_fd_open(struct out_fd *o, int fd)
{
    const int flags = O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    struct stat st;
    char path[32];
    const char *name;
    int own;

    *o = (struct out_fd){ .fd = fd, .how = OUT_ANY };
    if (fstat(fd, &st) < 0)
        return;                 /* cannot happen after open_std_fds() */
    if (S_ISSOCK(st.st_mode)) {
        o->how = OUT_SOCKET;
        return;
    }
    if (!S_ISFIFO(st.st_mode) && !isatty(fd))
        return;                 /* a file: writing it never waits */
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    own = open(path, flags);
    if (own < 0 && isatty(fd) && (name = ttyname(fd)) != NULL)
        own = open(name, flags);
    if (own >= 0 && own < FD_SETSIZE) {
        o->fd = own;
        o->own = true;
        return;
    }
    if (own >= 0)
        close(own);
    o->how = OUT_PIPE_BUF;      /* no /proc, no permission, no reader */
}

/*
 * out_fd_write - one write of up to len bytes that cannot block.  For
 * OUT_PIPE_BUF call it only when select() has said writable, once.
 * Returns what write() returns: -1 with EAGAIN means "not now".
 */
static inline ssize_t
out_fd_write(const struct out_fd *o, const void *data, size_t len)
{
    if (o->how == OUT_SOCKET)
        return send(o->fd, data, len, MSG_DONTWAIT);
    if (o->how == OUT_PIPE_BUF && len > PIPE_BUF)
        len = PIPE_BUF;
    return write(o->fd, data, len);
}

/* out_fd_close - close our own copy, if we made one. */
static inline void
out_fd_close(struct out_fd *o)
{
    if (o->own)
        close(o->fd);
    o->own = false;
}

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

/*
 * now_us - microseconds on the monotonic clock.  Never the wall clock: it
 * jumps when the administrator or NTP sets the time, and a deadline computed
 * from it would then fire hours early or never.
 */
static inline int64_t
now_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
        report_error(errno, "clock_gettime CLOCK_MONOTONIC");
        exit(EXIT_FAILURE);     /* cannot happen on POSIX systems */
    }
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* format_seconds - "29.7s", "0.004s", "1s": microseconds, trailing zeros cut. */
static inline const char *
format_seconds(int64_t us, char *out, size_t len)
{
    char *p;

    snprintf(out, len, "%lld.%06lld", (long long)(us / 1000000),
             (long long)(us % 1000000));
    p = out + strlen(out) - 3;  /* keep milliseconds at most */
    *p = '\0';
    while (p[-1] == '0')
        *--p = '\0';
    if (p[-1] == '.')
        *--p = '\0';
    strcat(out, "s");
    return out;
}

/* ------------------------------------------------------------------ */
/* Addresses                                                           */
/* ------------------------------------------------------------------ */

/*
 * format_sockaddr - "127.0.0.1:9877" or "[::1]:9877", numeric, never a DNS
 * lookup (a slow resolver must not stall the select() loop).  An IPv4 client
 * of a dual-stack socket shows as [::ffff:127.0.0.1]:PORT, exactly as the
 * kernel (and netstat) sees it.  Returns out.
 */
static inline const char *
format_sockaddr(const struct sockaddr *sa, socklen_t salen, char *out,
                size_t len)
{
    char host[HOST_STRLEN], serv[8];
    int rc = getnameinfo(sa, salen, host, sizeof host, serv, sizeof serv,
                         NI_NUMERICHOST | NI_NUMERICSERV);

    if (rc != 0)
        snprintf(out, len, "(unknown address: %s)", gai_strerror(rc));
    else if (sa->sa_family == AF_INET6)
        snprintf(out, len, "[%s]:%s", host, serv);
    else
        snprintf(out, len, "%s:%s", host, serv);
    return out;
}

/*
 * format_socket_address - one end of a connected or bound socket, named by
 * the call that fetches it: getsockname (ours) or getpeername (theirs).
 * "?" if the call fails.  Returns out.
 */
static inline const char *
format_socket_address(int fd, int (*get)(int, struct sockaddr *, socklen_t *),
                      char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;

    if (get(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(out, len, "?");
        return out;
    }
    return format_sockaddr((struct sockaddr *)&ss, sslen, out, len);
}

/* ------------------------------------------------------------------ */
/* The byte buffer                                                     */
/* ------------------------------------------------------------------ */

/*
 * A growable FIFO of bytes: data[start, end) is pending.  Memory is
 * allocated on first use and freed as soon as the buffer drains, so a
 * thousand idle connections cost no buffer memory at all.
 */
struct buffer {
    char *data;
    size_t start;               /* first pending byte */
    size_t end;                 /* one past the last pending byte */
    size_t cap;                 /* bytes allocated at data */
};

static inline size_t
buf_len(const struct buffer *b)
{
    return b->end - b->start;
}

static inline void
buf_free(struct buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

/*
 * buf_reserve - make room for `want` more bytes after end, moving pending
 * bytes to the front or growing as needed.  Returns a pointer to the free
 * space, or NULL if out of memory (the buffer is unchanged).
 */
static inline char *
buf_reserve(struct buffer *b, size_t want)
{
    size_t pending = buf_len(b);

    if (b->cap - b->end >= want)
        return b->data + b->end;
    if (b->start > 0 && b->cap - pending >= want) {
        memmove(b->data, b->data + b->start, pending);
    } else {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap - pending < want) {
            if (cap > SIZE_MAX / 2)
                return NULL;
            cap *= 2;
        }
        if ((p = malloc(cap)) == NULL)
            return NULL;
        if (pending > 0)
            memcpy(p, b->data + b->start, pending);
        free(b->data);
        b->data = p;
        b->cap = cap;
    }
    b->start = 0;
    b->end = pending;
    return b->data + b->end;
}

/* buf_append - queue len bytes; returns 0, or -1 if out of memory. */
static inline int
buf_append(struct buffer *b, const void *p, size_t len)
{
    char *dst;

    if (len == 0)
        return 0;
    if ((dst = buf_reserve(b, len)) == NULL)
        return -1;
    memcpy(dst, p, len);
    b->end += len;
    return 0;
}

/* buf_consume - forget the first n pending bytes; frees an emptied buffer. */
static inline void
buf_consume(struct buffer *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        buf_free(b);
}

/*
 * buf_flush - send pending bytes to a non-blocking socket until it would
 * block.  MSG_NOSIGNAL: a peer that has gone away yields EPIPE, not SIGPIPE.
 * Returns 0 (all sent, or the rest waits for select() to say writable), or
 * -1 with errno set for a real error such as EPIPE or ECONNRESET.
 */
static inline int
buf_flush(int fd, struct buffer *b)
{
    while (buf_len(b) > 0) {
        ssize_t n = send(fd, b->data + b->start, buf_len(b), MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        buf_consume(b, (size_t)n);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* select() tracing: the teaching view of each call                    */
/* ------------------------------------------------------------------ */

/*
 * format_fdset - "{0,3,4,6,7}" for the descriptors below nfds that are in
 * set; runs of three or more are shortened to "{3-9}".  Returns out.
 */
static inline const char *
format_fdset(const fd_set *set, int nfds, char *out, size_t len)
{
    size_t used = 0;
    bool first = true;

    used += (size_t)snprintf(out, len, "{");
    for (int fd = 0; fd < nfds && used < len; fd++) {
        int last = fd;

        if (!FD_ISSET(fd, set))
            continue;
        while (last + 1 < nfds && FD_ISSET(last + 1, set))
            last++;
        if (last - fd >= 2)
            used += (size_t)snprintf(out + used, len - used, "%s%d-%d",
                                     first ? "" : ",", fd, last);
        else
            last = fd, used += (size_t)snprintf(out + used, len - used,
                                                 "%s%d", first ? "" : ",", fd);
        first = false;
        fd = last;
    }
    if (used < len)
        snprintf(out + used, len - used, "}");
    return out;
}

/* Room for a set of FD_SETSIZE descriptors written out in full. */
#define FDSET_STRLEN (FD_SETSIZE * 6 + 4)
/* Room for a whole line of format_select_call() or _result(). */
#define SELECT_TRACE_STRLEN (2 * FDSET_STRLEN + 96)

/*
 * format_select_call - the call about to be made, as one line (no newline):
 *   select(nfds=8, read={0,3,4,6,7}, write={7}, timeout=29.7s)
 * timeout_us < 0 means NULL: block until something is ready.  out needs
 * SELECT_TRACE_STRLEN bytes.  Returns out.
 */
static inline const char *
format_select_call(char *out, int nfds, const fd_set *rset,
                   const fd_set *wset, int64_t timeout_us)
{
    char r[FDSET_STRLEN], w[FDSET_STRLEN], t[32];

    snprintf(out, SELECT_TRACE_STRLEN,
             "select(nfds=%d, read=%s, write=%s, timeout=%s)", nfds,
             format_fdset(rset, nfds, r, sizeof r),
             format_fdset(wset, nfds, w, sizeof w),
             timeout_us < 0 ? "none" : format_seconds(timeout_us, t, sizeof t));
    return out;
}

/* format_select_result - "-> 2 ready: read={3,6} write={} after 1.2s" */
static inline const char *
format_select_result(char *out, int nready, int nfds, const fd_set *rset,
                     const fd_set *wset, int64_t waited_us)
{
    char r[FDSET_STRLEN], w[FDSET_STRLEN], t[32];

    snprintf(out, SELECT_TRACE_STRLEN, "-> %d ready: read=%s write=%s after %s",
             nready, format_fdset(rset, nfds, r, sizeof r),
             format_fdset(wset, nfds, w, sizeof w),
             format_seconds(waited_us, t, sizeof t));
    return out;
}

#endif /* COMMON_H */
