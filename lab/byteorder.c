/*
 * byteorder.c - a TCP server with one deliberate bug: it forgets htons().
 *
 * Experiment 5 of the lab (lab/05-byte-order.sh).  The port in a struct
 * sockaddr_in must be stored in network byte order, most significant byte
 * first.  This program stores the port number the way the CPU holds it, so
 * on a little-endian machine (x86, most ARM) the kernel reads its two bytes
 * the other way round: asked for 9877 (0x2695), it binds 38182 (0x9526).
 * On a big-endian machine the two orders agree and the bug hides.
 *
 * THE BUG is the one line marked below.  Everything else is done right:
 * the address gets its htonl(), getsockname()'s answer gets its ntohs(),
 * and every system call is checked.
 *
 * Run:    lab/byteorder [PORT]      PORT defaults to 9877; 127.0.0.1 only
 *
 * It prints the port it asked for, then the address the kernel bound
 * (from getsockname), then greets each client that finds it with one line
 * and closes that connection, until it is killed.
 *
 * Exit status: 1 for a bad argument, 2 if the socket cannot be set up,
 * 3 if accept() fails.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROGNAME     "byteorder"

/* The shared helpers (strict port parsing, write_all) of the real programs. */
#include "../common.h"

#define DEFAULT_PORT 9877

static int open_listener(unsigned short port);
static int greet_clients(int listen_fd, unsigned short asked);

int
main(int argc, char **argv)
{
    unsigned short port = DEFAULT_PORT;
    int listen_fd;

    if (argc > 2 || (argc == 2 && parse_port(argv[1], 1, &port) < 0)) {
        fprintf(stderr, "usage: %s [PORT]   (PORT 1-65535, default %d)\n",
                PROGNAME, DEFAULT_PORT);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror(PROGNAME ": signal SIGPIPE");
        return 2;
    }
    printf("asked for port %u (0x%04x), stored in sin_port without htons()\n",
           (unsigned)port, (unsigned)port);
    if ((listen_fd = open_listener(port)) < 0)
        return 2;
    return greet_clients(listen_fd, port);
}

/*
 * open_listener - a listening socket on 127.0.0.1, bound with the bug, and
 * print what the kernel really bound.  Returns the fd, or -1 after printing
 * why.
 */
static int
open_listener(unsigned short port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    char host[INET_ADDRSTRLEN];
    int fd, on = 1, err;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);      /* right: htonl() */
    sin.sin_port = port;        /* THE BUG: should be htons(port) */

    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        perror(PROGNAME ": socket");
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        err = errno;
        fprintf(stderr, "%s: setting up 127.0.0.1 port %u (sin_port 0x%04x):"
                " %s\n", PROGNAME, (unsigned)port, (unsigned)port,
                strerror(err));
        close(fd);
        return -1;
    }
    if (inet_ntop(AF_INET, &sin.sin_addr, host, sizeof host) == NULL) {
        perror(PROGNAME ": inet_ntop");
        close(fd);
        return -1;
    }
    /* Read back correctly: getsockname() gives network order, so ntohs(). */
    printf("listening on %s:%u (tcp), says getsockname()\n", host,
           (unsigned)ntohs(sin.sin_port));
    return fd;
}

/*
 * greet_clients - accept each client, send it one line, close it; forever.
 * Returns 3 if accept() fails for a reason other than the client's own.
 */
static int
greet_clients(int listen_fd, unsigned short asked)
{
    char line[96];
    int n = snprintf(line, sizeof line,
                     "hello from the server that asked for port %u\n",
                     (unsigned)asked);

    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;       /* a signal, or the client gave up: next */
            perror(PROGNAME ": accept");
            return 3;
        }
        if (write_all(fd, line, (size_t)n) < 0 && errno != EPIPE &&
            errno != ECONNRESET)
            perror(PROGNAME ": write");
        if (close(fd) < 0)
            perror(PROGNAME ": close");
    }
}

