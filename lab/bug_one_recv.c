/*
 * bug_one_recv.c - a line server that takes each recv() for one line.
 *
 * Experiment 18 of the lab (lab/18-one-recv-one-message.sh).  The protocol
 * is lines of text: the client sends lines, and the server answers each
 * one with its number, "1: hello", "2: world".  It serves one client at a
 * time, with blocking calls, and logs every recv() it makes.
 *
 * THE BUG: serve_recvs() answers each recv() as one line.  TCP carries a
 * stream of bytes and keeps no trace of the writes that made it: one recv()
 * returns whatever has arrived, up to the size asked for.  Three lines
 * that arrive while the server is busy come out of one recv() and get one
 * answer, "1: one\ntwo\nthree"; a line written in two pieces, with a pause
 * between, comes out of two recv()s and gets two answers, "1: hel" and
 * "2: lo".  On an idle machine, with a client that writes a line at a time,
 * the bug never shows.
 *
 * THE FIX, in this file: run with --fixed, and serve_lines() answers the
 * same client correctly.  It keeps what recv() returned in a buffer,
 * answers every complete line in it (up to a '\n'), and keeps the rest,
 * the beginning of the next line, for the next recv() to complete.
 * select_server's chat mode does the same: chat_input() in chat.c appends
 * what each read() returned to the client's input buffer, and
 * split_line() in text.c finds the lines in it.
 *
 * Everything else is done the careful way: SIGPIPE is ignored, EINTR is
 * retried, a client's reset ends that client only, every call is checked.
 *
 * Run:    lab/bug_one_recv [--fixed] [-p PORT]   127.0.0.1; PORT defaults
 *                                                to 9877, 0 lets the
 *                                                kernel choose
 *
 * The first line is "listening on 127.0.0.1:PORT (tcp)"; then one line
 * per event: "accepted fd N", "closed fd N", and for every recv()
 *     fd N: recv() returned M bytes: "one\ntwo\n"
 * with the bytes quoted as in C: \n, and \xHH for the other bytes that
 * are not printable and for " and \.  A line longer than BUF_SIZE bytes is
 * answered in pieces of BUF_SIZE; at the client's EOF, --fixed answers
 * an unfinished last line too.  SIGTERM and SIGINT keep their default
 * action (status 143 or 130).
 * Exit status: 1 for a bad argument, 2 if the listener cannot be set up.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PROGNAME "bug_one_recv"

/* The shared helpers (strict port parsing, report_error, write_all). */
#include "../common.h"

#define DEFAULT_PORT      9877
#define BUF_SIZE          4096          /* one recv(); --fixed: one line */
/* open_listener(): the lab servers' blocking listener on 127.0.0.1. */
#include "blocking_server.h"
#define ACCEPT_BACKOFF_NS 100000000L    /* 0.1 s pause after accept() fails */

static _Noreturn void serve(int listen_fd, bool fixed);
static void serve_recvs(int fd);
static void serve_lines(int fd);
static ssize_t receive(int fd, char *buf, size_t size);
static int answer(int fd, long number, const char *text, size_t len);

int
main(int argc, char **argv)
{
    unsigned short port = DEFAULT_PORT;
    bool fixed = false;
    int rc, listen_fd;

    if ((rc = parse_server_args(argc, argv, "--fixed", NULL, &fixed,
                                &port)) >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        report_error(errno, "signal SIGPIPE");
        return 2;
    }
    if ((listen_fd = open_listener(port)) < 0)
        return 2;
    serve(listen_fd, fixed);
}

/*
 * serve - accept a client, serve it until its EOF, close it, accept the
 * next.  EINTR and ECONNABORTED (a client gave up while queued) are
 * normal; any other accept() failure is reported, then a short pause
 * rather than a spin.  Never returns.
 */
static _Noreturn void
serve(int listen_fd, bool fixed)
{
    for (;;) {
        struct timespec backoff = {0, ACCEPT_BACKOFF_NS};
        int fd = accept(listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED) {
                report_error(errno, "accept");
                (void)nanosleep(&backoff, NULL);    /* EINTR: shorter */
            }
            continue;
        }
        printf("accepted fd %d\n", fd);
        if (fixed)
            serve_lines(fd);
        else
            serve_recvs(fd);
        if (close(fd) < 0)
            report_error(errno, "close fd %d", fd);
        printf("closed fd %d\n", fd);
    }
}

/*
 * serve_recvs - answer the client on fd until its EOF.  THE BUG: the
 * bytes of each recv() are taken for one line, whatever they hold.
 */
static void
serve_recvs(int fd)
{
    char buf[BUF_SIZE];
    long number = 0;
    ssize_t n;

    while ((n = receive(fd, buf, sizeof buf)) > 0) {
        size_t len = (size_t)n;

        if (buf[len - 1] == '\n')
            len--;          /* the newline at the end of "the line" */
        if (answer(fd, ++number, buf, len) < 0)
            return;
    }
}

/*
 * serve_lines - answer the client on fd until its EOF, a line at a time,
 * however the lines arrive.  THE FIX: buf[0, used) holds what has arrived
 * and is not answered yet; each complete line in it is answered and
 * removed, and an unfinished one waits for the next recv().
 */
static void
serve_lines(int fd)
{
    char buf[BUF_SIZE];
    size_t used = 0;
    long number = 0;
    ssize_t n;

    while ((n = receive(fd, buf + used, sizeof buf - used)) > 0) {
        char *start = buf, *nl;

        used += (size_t)n;
        /* Every complete line, in order. */
        while ((nl = memchr(start, '\n', used - (size_t)(start - buf))) != NULL) {
            if (answer(fd, ++number, start, (size_t)(nl - start)) < 0)
                return;
            start = nl + 1;
        }
        used -= (size_t)(start - buf);
        memmove(buf, start, used);
        /* A line longer than the buffer: answer what there is of it. */
        if (used == sizeof buf) {
            if (answer(fd, ++number, buf, used) < 0)
                return;
            used = 0;
        }
    }
    if (n == 0 && used > 0)     /* EOF after an unfinished last line */
        (void)answer(fd, ++number, buf, used);
}

/*
 * receive - one recv() of at most size bytes, retried after EINTR, and its
 * log line.  Returns the count, 0 at the client's EOF, or -1 after an
 * error (reported, unless it is a reset: the client leaving).
 */
static ssize_t
receive(int fd, char *buf, size_t size)
{
    ssize_t n;

    do
        n = recv(fd, buf, size, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != ECONNRESET)
            report_error(errno, "recv fd %d", fd);
        return -1;
    }
    if (n == 0)
        return 0;
    printf("fd %d: recv() returned %zd bytes: \"", fd, n);
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];

        if (c == '\n')
            printf("\\n");
        else if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    printf("\"\n");
    return n;
}

/*
 * answer - send "NUMBER: TEXT\n" to fd, TEXT being len bytes (at most
 * BUF_SIZE).  Returns 0, or -1 after an error (reported, unless the client
 * has gone: EPIPE, ECONNRESET).
 */
static int
answer(int fd, long number, const char *text, size_t len)
{
    char out[BUF_SIZE + 32];
    int head = snprintf(out, sizeof out - BUF_SIZE - 1, "%ld: ", number);

    memcpy(out + head, text, len);
    out[(size_t)head + len] = '\n';
    if (write_all(fd, out, (size_t)head + len + 1) < 0) {
        if (errno != EPIPE && errno != ECONNRESET)
            report_error(errno, "send fd %d", fd);
        return -1;
    }
    return 0;
}
