/*
 * naive_server.c - the textbook select() echo server, with its classic flaw.
 *
 * Experiment 8 of the lab (lab/08-blocking-loop.sh).  One select() loop
 * watches the listener and every client, and echoes what a client sends
 * straight back with write() on a blocking socket, inside the loop.
 *
 * THE FLAW: write() on a blocking socket returns only once the kernel has
 * taken every byte.  A client that sends but never reads lets its receive
 * buffer fill, then our send buffer; the next write() to it never returns,
 * and while the server sleeps there nobody else is read, echoed or even
 * accepted.  select_server makes every socket non-blocking, writes what the
 * kernel takes, buffers the rest and stops reading a client that does not
 * keep up (see handle_readable and queue_output there).
 *
 * Everything else is done the careful way: fd sets and maxfd rebuilt on
 * every pass, fds checked against FD_SETSIZE, EINTR retried, SIGPIPE
 * ignored, a non-blocking listener (so accept() cannot hang when a client
 * gives up between select() and accept()), every call checked.
 *
 * Run:    lab/naive_server [-p PORT]     127.0.0.1; PORT defaults to 9877,
 *                                        0 lets the kernel choose
 *
 * The first line is "listening on 127.0.0.1:PORT (tcp)", as select_server's.
 * SIGTERM and SIGINT keep their default action: the kernel ends the process
 * (a shell reports status 143 or 130) and closes every socket.
 * Exit status: 1 for a bad argument, 2 if the listener cannot be set up,
 * 3 if select() fails.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROGNAME     "naive_server"

/* The shared helpers (strict port parsing, write_all) of the real programs. */
#include "../common.h"

#define DEFAULT_PORT 9877
#define MAX_CLIENTS  FD_SETSIZE     /* as many as select() can watch */
#define LISTENQ      1024           /* listen() backlog, as in UNP */
#define BUF_SIZE     4096

/* The command line: -h, -p PORT, each mistake named in one line. */
#include "server_args.h"

/* The whole state: the listener and a table of client fds (-1: free). */
struct server {
    int listen_fd;
    int clients[MAX_CLIENTS];
};

static int open_listener(unsigned short port);
static int serve(struct server *s);
static void accept_clients(struct server *s);
static void echo_once(struct server *s, int slot);
static void close_client(struct server *s, int slot, int err);

int
main(int argc, char **argv)
{
    struct server s;
    unsigned short port = DEFAULT_PORT;
    int rc;

    if ((rc = parse_server_args(argc, argv, NULL, NULL, NULL, &port)) >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror(PROGNAME ": signal SIGPIPE");
        return 2;
    }
    if ((s.listen_fd = open_listener(port)) < 0)
        return 2;
    for (int i = 0; i < MAX_CLIENTS; i++)
        s.clients[i] = -1;
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
    int fd, on = 1, flags;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        perror(PROGNAME ": socket");
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(fd, LISTENQ) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0 ||
        (flags = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int err = errno;

        fprintf(stderr, "%s: listening on 127.0.0.1:%u: %s\n", PROGNAME,
                (unsigned)port, strerror(err));
        close(fd);
        return -1;
    }
    printf("listening on 127.0.0.1:%u (tcp)\n", (unsigned)ntohs(sin.sin_port));
    return fd;
}

/*
 * serve - the loop: rebuild the read set, wait in select(), accept, then
 * echo each readable client.  Returns 3 if select() fails.
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
            if (s->clients[i] >= 0) {
                FD_SET(s->clients[i], &rset);
                if (s->clients[i] > maxfd)
                    maxfd = s->clients[i];
            }
        }

        /* Wait until someone is ready to be read; no timeout. */
        if (select(maxfd + 1, &rset, NULL, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            perror(PROGNAME ": select");
            return 3;
        }

        /* New connections, then each client with something to read. */
        if (FD_ISSET(s->listen_fd, &rset))
            accept_clients(s);
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (s->clients[i] >= 0 && FD_ISSET(s->clients[i], &rset))
                echo_once(s, i);
        }
    }
}

/* accept_clients - take every waiting connection into a free slot. */
static void
accept_clients(struct server *s)
{
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL), slot = -1;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                perror(PROGNAME ": accept");
            return;
        }
        for (int i = 0; i < MAX_CLIENTS && slot < 0; i++) {
            if (s->clients[i] < 0)
                slot = i;
        }
        if (slot < 0 || fd >= FD_SETSIZE) {
            printf("refused fd %d: server full\n", fd);
            if (close(fd) < 0)
                perror(PROGNAME ": close");
            continue;
        }
        s->clients[slot] = fd;  /* left blocking, as accept() returns it */
        printf("accepted fd %d\n", fd);
    }
}

/*
 * echo_once - one read(), and its bytes written straight back.  THE FLAW:
 * the fd is blocking, so write_all() sleeps until this one client has made
 * room for every byte, and the whole loop sleeps with it.
 */
static void
echo_once(struct server *s, int slot)
{
    char buf[BUF_SIZE];
    int fd = s->clients[slot];
    ssize_t n = read(fd, buf, sizeof buf);

    if (n < 0 && errno == EINTR)
        return;                 /* select() will report it again */
    if (n <= 0) {
        close_client(s, slot, n == 0 ? 0 : errno);
        return;
    }
    if (write_all(fd, buf, (size_t)n) < 0)
        close_client(s, slot, errno);
}

/* close_client - close the client in slot after its EOF (err 0) or error. */
static void
close_client(struct server *s, int slot, int err)
{
    int fd = s->clients[slot];

    s->clients[slot] = -1;
    printf("closed fd %d: %s\n", fd, err == 0 ? "eof" : strerror(err));
    if (close(fd) < 0)
        perror(PROGNAME ": close");
}

