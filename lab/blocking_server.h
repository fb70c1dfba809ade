/*
 * blocking_server.h - what the lab's small blocking servers share: the
 * command line, the listening socket on 127.0.0.1, and the echo of one
 * client until its EOF.  fork_server and iterative_server use them
 * (through blocking_echo.h), and so do the deliberately wrong bug_eintr
 * and bug_one_recv, whose one bug is elsewhere.  Each includes
 * "../common.h" (report_error, parse_port, write_all) first, and defines
 * PROGNAME, DEFAULT_PORT and BUF_SIZE.
 *
 * Header-only, and `static inline` as in common.h: a program that does
 * not echo (bug_one_recv) does not get a warning for the unused echo.
 */
#ifndef BLOCKING_SERVER_H
#define BLOCKING_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef COMMON_H
#error "include ../common.h before blocking_server.h"
#endif

#define LISTENQ 1024            /* listen() backlog, as in UNP */

#ifndef BUF_SIZE
#error "define BUF_SIZE (bytes per read) before including blocking_server.h"
#endif

/* parse_server_args(): the command line. */
#include "server_args.h"

/*
 * open_listener - a blocking listening socket on 127.0.0.1:port, and the
 * first line naming the port really bound.  Returns the fd, or -1 after
 * printing why.
 */
static inline int
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
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        report_error(errno, "listening on 127.0.0.1:%u", (unsigned)port);
        (void)close(fd);        /* the failure above is the one to report */
        return -1;
    }
    printf("listening on 127.0.0.1:%u (tcp)\n", (unsigned)ntohs(sin.sin_port));
    return fd;
}

/*
 * echo_until_eof - write back whatever arrives on fd until the client's
 * EOF, with blocking read() and write().  A reset or a vanished reader
 * (ECONNRESET, EPIPE) is the client leaving, not news; any other error is
 * reported.  Either way the caller goes on: fork_server's child exits,
 * iterative_server closes fd and accepts the next client.
 */
static inline void
echo_until_eof(int fd)
{
    char buf[BUF_SIZE];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);

        if (n == 0)
            return;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ECONNRESET)
                report_error(errno, "read fd %d", fd);
            return;
        }
        if (write_all(fd, buf, (size_t)n) < 0) {
            if (errno != EPIPE && errno != ECONNRESET)
                report_error(errno, "write fd %d", fd);
            return;
        }
    }
}

#endif /* BLOCKING_SERVER_H */
