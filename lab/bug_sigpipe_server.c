/*
 * bug_sigpipe_server.c - a select() line-echo server that a departed client
 * can kill.
 *
 * Experiment 23 of the lab (lab/23-sigpipe.sh).  One process, one select()
 * loop, many clients.  Each line a client sends is written back as soon as
 * it is complete, one write() per line, the way UNP's str_echo answers a
 * line at a time (readline, then writen).
 *
 * THE BUG: SIGPIPE keeps its default action.  A write() on a connection
 * whose peer has gone away fails with EPIPE, and the kernel also sends the
 * writer SIGPIPE, whose default action is to end the process.  This one
 * process serves every client, so one client that leaves at the wrong
 * moment takes all the others with it: a shell reports status 141 (128 +
 * 13, SIGPIPE).  select_server ignores SIGPIPE at start-up (setup_signals)
 * and sends with MSG_NOSIGNAL (queue_output; buf_flush in common.h): there
 * EPIPE is only an error on that one client, which is closed as "reset".
 *
 * It takes two writes.  A client that sends two lines and close()s at once
 * leaves a FIN behind its data.  The first reply is accepted by our kernel
 * and sent; the client's kernel has no socket for it any more and answers
 * with RST.  Only the RST tells our kernel that nobody will read: the
 * second reply's write() gets EPIPE, and SIGPIPE.  (Had the RST arrived
 * before the first write, that write would fail with ECONNRESET, which
 * raises no signal, and the client would simply be closed.)
 *
 * Everything else is done the careful way: every socket is non-blocking (a
 * client whose replies the kernel cannot take is dropped, never waited for;
 * experiment 8 shows what waiting costs), fd sets and maxfd are rebuilt on
 * every pass, fds are checked against FD_SETSIZE, EINTR is retried, every
 * call is checked.
 *
 * Run:    lab/bug_sigpipe_server [-p PORT]   127.0.0.1; PORT defaults to
 *                                            9877, 0 lets the kernel choose
 *
 * The first line is "listening on 127.0.0.1:PORT (tcp)"; then one line per
 * event: "accepted fd N", "fd N: wrote M bytes" after each reply written,
 * "closed fd N: WHY".  SIGTERM and SIGINT keep their default action too
 * (status 143 or 130).
 * Exit status: 1 for a bad argument, 2 if the listener cannot be set up,
 * 3 if select() fails; 141 in a shell when SIGPIPE ends it.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROGNAME     "bug_sigpipe_server"

/* The shared helpers (strict port parsing, set_nonblocking, report_error). */
#include "../common.h"

#define DEFAULT_PORT 9877
#define MAX_CLIENTS  64             /* a lab server: a few clients at most */
#define LISTENQ      1024           /* listen() backlog, as in UNP */
#define LINE_MAX_LEN 1024           /* a longer line is answered in pieces */

/* The command line: -h, -p PORT, each mistake named in one line. */
#include "server_args.h"

/* One client: its socket (-1: the slot is free) and the line read so far. */
struct client {
    int fd;
    size_t len;
    char line[LINE_MAX_LEN];
};

/* The whole state: the listener and the client table. */
struct server {
    int listen_fd;
    struct client clients[MAX_CLIENTS];
};

static int open_listener(unsigned short port);
static int serve(struct server *s);
static void accept_clients(struct server *s);
static void handle_readable(struct client *c);
static int answer_lines(struct client *c, int at_eof);
static int write_reply(struct client *c, size_t len);
static void close_client(struct client *c, const char *why);

int
main(int argc, char **argv)
{
    struct server s;
    unsigned short port = DEFAULT_PORT;
    int rc;

    if ((rc = parse_server_args(argc, argv, NULL, NULL, NULL, &port)) >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    /* THE BUG: no signal(SIGPIPE, SIG_IGN) here, and write(), not
     * send(..., MSG_NOSIGNAL), below. */
    if ((s.listen_fd = open_listener(port)) < 0)
        return 2;
    for (int i = 0; i < MAX_CLIENTS; i++)
        s.clients[i].fd = -1;
    return serve(&s);
}

/*
 * open_listener - a non-blocking listening socket on 127.0.0.1:port, and
 * the first line naming the port really bound.  Returns the fd, or -1
 * after printing why.
 */
static int
open_listener(unsigned short port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd, on = 1;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        report_error(errno, "socket");
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(fd, LISTENQ) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0 ||
        set_nonblocking(fd) < 0) {
        report_error(errno, "listening on 127.0.0.1:%u", (unsigned)port);
        (void)close(fd);        /* the failure above is the one to report */
        return -1;
    }
    printf("listening on 127.0.0.1:%u (tcp)\n", (unsigned)ntohs(sin.sin_port));
    return fd;
}

/*
 * serve - the loop: rebuild the read set, wait in select(), accept, then
 * read each readable client.  Returns 3 if select() fails.
 */
static int
serve(struct server *s)
{
    for (;;) {
        fd_set rset;
        int maxfd = s->listen_fd;

        /* Fresh set on every pass: select() overwrites it with the answer. */
        FD_ZERO(&rset);
        FD_SET(s->listen_fd, &rset);
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (s->clients[i].fd >= 0) {
                FD_SET(s->clients[i].fd, &rset);
                if (s->clients[i].fd > maxfd)
                    maxfd = s->clients[i].fd;
            }
        }

        /* Wait until someone has something to read; no timeout. */
        if (select(maxfd + 1, &rset, NULL, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            report_error(errno, "select");
            return 3;
        }

        /* New connections, then each client with something to read. */
        if (FD_ISSET(s->listen_fd, &rset))
            accept_clients(s);
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (s->clients[i].fd >= 0 && FD_ISSET(s->clients[i].fd, &rset))
                handle_readable(&s->clients[i]);
        }
    }
}

/*
 * accept_clients - take every waiting connection into a free slot, made
 * non-blocking.  The listener is non-blocking too, so a client that gave up
 * between select() and accept() cannot hang the loop.
 */
static void
accept_clients(struct server *s)
{
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL);
        struct client *c = NULL;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                report_error(errno, "accept");
            return;
        }
        for (int i = 0; i < MAX_CLIENTS && c == NULL; i++) {
            if (s->clients[i].fd < 0)
                c = &s->clients[i];
        }
        if (c == NULL || fd >= FD_SETSIZE || set_nonblocking(fd) < 0) {
            printf("refused fd %d: %s\n", fd, c == NULL || fd >= FD_SETSIZE
                   ? "server full" : strerror(errno));
            if (close(fd) < 0)
                report_error(errno, "close fd %d", fd);
            continue;
        }
        c->fd = fd;
        c->len = 0;
        printf("accepted fd %d\n", fd);
    }
}

/*
 * handle_readable - one read() into the client's line buffer, then a reply
 * for each complete line.  At EOF a last line without its newline is
 * answered too, then the client is closed.
 */
static void
handle_readable(struct client *c)
{
    ssize_t n = read(c->fd, c->line + c->len, sizeof c->line - c->len);

    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            close_client(c, strerror(errno));
        return;                 /* "not now": select() will say when */
    }
    c->len += (size_t)n;
    if (answer_lines(c, n == 0) < 0)
        return;                 /* closed while answering */
    if (n == 0)
        close_client(c, "eof");
}

/*
 * answer_lines - write back each complete line in the buffer, one write()
 * each, and keep the incomplete rest.  A full buffer with no newline, or
 * the rest at EOF, is answered as it is.  Returns 0, or -1 if a write
 * failed and the client was closed.
 */
static int
answer_lines(struct client *c, int at_eof)
{
    for (;;) {
        char *nl = memchr(c->line, '\n', c->len);
        size_t len = nl != NULL ? (size_t)(nl - c->line) + 1 : c->len;

        if (len == 0 || (nl == NULL && !at_eof && c->len < sizeof c->line))
            return 0;           /* nothing, or only half a line, yet */
        if (write_reply(c, len) < 0)
            return -1;
        memmove(c->line, c->line + len, c->len - len);
        c->len -= len;
    }
}

/*
 * write_reply - one write() of the first len bytes of the buffer.  THE
 * BUG bites here: if the peer has gone and the kernel knows it, write()
 * fails with EPIPE, but SIGPIPE ends the process before it returns.  A
 * short write or EAGAIN means the client lets its replies pile up: it is
 * dropped rather than waited for.  Returns 0, or -1 after closing the
 * client.
 */
static int
write_reply(struct client *c, size_t len)
{
    ssize_t n;

    do {
        n = write(c->fd, c->line, len);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)len) {
        printf("fd %d: wrote %zd bytes\n", c->fd, n);
        return 0;
    }
    if (n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK)
        close_client(c, "not reading its replies");
    else
        close_client(c, strerror(errno));
    return -1;
}

/* close_client - close the client and free its slot, saying why. */
static void
close_client(struct client *c, const char *why)
{
    int fd = c->fd;

    c->fd = -1;
    c->len = 0;
    printf("closed fd %d: %s\n", fd, why);
    if (close(fd) < 0)
        report_error(errno, "close fd %d", fd);
}
