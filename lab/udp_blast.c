/*
 * udp_blast.c - send COUNT datagrams of SIZE bytes to HOST PORT, one
 * sendto() after another, as fast as they go, and say how many went out.
 *
 * Experiment 14 of the lab (lab/14-udp-no-flow-control.sh): UDP has no
 * flow control.  Nothing tells this sender that the receiver is slow, or
 * stopped, or that its socket's receive buffer is full: each sendto()
 * succeeds, and the datagrams that do not fit are dropped at the receiver.
 * The socket is not connected (like UNP's dg_cli), so not even an ICMP
 * error could reach it, and it never reads: it sends, reports, and exits.
 *
 * Run:    lab/udp_blast HOST PORT COUNT SIZE
 *
 * HOST is a numeric address (127.0.0.1, ::1); COUNT 1..1000000 datagrams
 * of SIZE 1..65507 bytes (65507: the largest UDP payload over IPv4).  Each
 * datagram holds its number, "datagram 17", padded with '.' to SIZE.
 * The one line of output:
 *
 *     sent 2000 datagrams of 1400 bytes to 127.0.0.1:9877 from port 45678
 *
 * Exit status: 0 when every sendto() succeeded, 1 for a bad argument, 2 if
 * the socket cannot be set up or the report not written, 3 if a sendto()
 * failed (the first error is printed, and the line says how many failed).
 */
#define _POSIX_C_SOURCE 200809L
#define PROGNAME "udp_blast"

/* The shared helpers of the real programs: strict parsing, errors,
 * address formatting. */
#include "../common.h"

#include <arpa/inet.h>

#define MAX_COUNT    1000000
#define MAX_DATAGRAM 65507

static int open_socket(const char *host, const char *port,
                       struct sockaddr_storage *to, socklen_t *tolen);
static unsigned local_port(int fd);

int
main(int argc, char **argv)
{
    static char buf[MAX_DATAGRAM];
    struct sockaddr_storage to;
    socklen_t tolen;
    char dest[ADDR_STRLEN];
    unsigned short port;
    long count, size, sent = 0, failed = 0;
    int fd, first_err = 0;

    if (argc != 5 || parse_port(argv[2], 1, &port) < 0 ||
        parse_long(argv[3], 1, MAX_COUNT, &count) < 0 ||
        parse_long(argv[4], 1, MAX_DATAGRAM, &size) < 0) {
        fprintf(stderr, "usage: %s HOST PORT COUNT SIZE   (COUNT 1..%d"
                " datagrams, SIZE 1..%d bytes)\n", PROGNAME, MAX_COUNT,
                MAX_DATAGRAM);
        return 1;
    }
    if ((fd = open_socket(argv[1], argv[2], &to, &tolen)) < 0)
        return 2;

    /* The blast: no pause, no reading, no retry.  A blocking sendto() of
     * UDP waits only for room in our own send buffer, never for the
     * receiver. */
    for (long i = 1; i <= count; i++) {
        int len = snprintf(buf, sizeof buf, "datagram %ld", i);

        if (len < size)
            memset(buf + len, '.', (size_t)(size - len));
        if (sendto(fd, buf, (size_t)size, 0, (struct sockaddr *)&to,
                   tolen) == size) {
            sent++;
            continue;
        }
        if (first_err == 0) {
            first_err = errno;
            report_error(first_err, "sendto %s (datagram %ld)",
                         format_sockaddr((struct sockaddr *)&to, tolen, dest,
                                         sizeof dest), i);
        }
        failed++;
    }

    printf("sent %ld datagram%s of %ld byte%s to %s from port %u", sent,
           sent == 1 ? "" : "s", size, size == 1 ? "" : "s",
           format_sockaddr((struct sockaddr *)&to, tolen, dest, sizeof dest),
           local_port(fd));
    if (failed > 0)
        printf(" (%ld failed)", failed);
    printf("\n");
    if (fflush(stdout) == EOF || close(fd) < 0) {
        report_error(errno, "writing stdout or closing the socket");
        return 2;
    }
    return failed > 0 ? 3 : 0;
}

/*
 * open_socket - an unconnected UDP socket for host and port, numeric only
 * (no DNS: the lab stays on loopback).  Sets *to and *tolen to the
 * destination.  Returns the fd, or -1 after saying why.
 */
static int
open_socket(const char *host, const char *port, struct sockaddr_storage *to,
            socklen_t *tolen)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                              .ai_socktype = SOCK_DGRAM }, *res;
    int fd, rc, err;

    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        report_error(0, "%s port %s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    memcpy(to, res->ai_addr, res->ai_addrlen);
    *tolen = res->ai_addrlen;
    fd = socket(res->ai_family, SOCK_DGRAM, 0);
    err = errno;
    freeaddrinfo(res);
    if (fd < 0) {
        report_error(err, "socket");
        return -1;
    }
    return fd;
}

/*
 * local_port - the port the kernel gave our socket at its first sendto()
 * (its address stays the wildcard: each datagram's source address is
 * chosen by route).  0 if getsockname() fails.
 */
static unsigned
local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
