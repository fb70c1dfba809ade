/*
 * listener.h - the blocking listening socket of the lab's small servers:
 * fork_server and iterative_server (through blocking_echo.h), and the
 * deliberately wrong bug_eintr and bug_one_recv, whose one bug is
 * elsewhere.  Each includes "../common.h" (report_error) first.
 *
 * Header-only and plain `static`, as blocking_echo.h is: every program
 * that includes it uses its one function.
 */
#ifndef LISTENER_H
#define LISTENER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef COMMON_H
#error "include ../common.h before listener.h"
#endif

#define LISTENQ 1024            /* listen() backlog, as in UNP */

static int open_listener(unsigned short port);

/*
 * open_listener - a blocking listening socket on 127.0.0.1:port, and the
 * first line naming the port really bound.  Returns the fd, or -1 after
 * printing why.
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
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        report_error(errno, "listening on 127.0.0.1:%u", (unsigned)port);
        (void)close(fd);        /* the failure above is the one to report */
        return -1;
    }
    printf("listening on 127.0.0.1:%u (tcp)\n", (unsigned)ntohs(sin.sin_port));
    return fd;
}

#endif /* LISTENER_H */
