/*
 * naive_udp_echo.c - a UDP echo server written the obvious way: bind the
 * wildcard address, recvfrom() a datagram, sendto() it back.
 *
 * Experiment 12 of the lab (lab/12-udp-reply-address.sh).
 *
 * THE FLAW: the socket is bound to 0.0.0.0, so sendto() leaves the reply's
 * source address to the kernel, which picks it from the routing table for
 * the client's address - not necessarily the address the client wrote to.
 * A client that sent to 127.0.0.2 gets its answer from 127.0.0.1; if its
 * socket is connected (as select_client's is, and as UNP recommends), the
 * kernel drops that reply, and the client waits for nothing.  On a host
 * with two network addresses the same happens across a real network.
 * select_server asks for each datagram's destination (IP_PKTINFO) and
 * sends the reply from it (see udp.c).
 *
 * Run:    lab/naive_udp_echo [-p PORT]   0.0.0.0; PORT defaults to 9877,
 *                                        0 lets the kernel choose
 *
 * The first line is "listening on 0.0.0.0:PORT (udp)"; then one line per
 * datagram echoed.  SIGTERM and SIGINT end it (status 143 or 130).
 * Exit status: 1 for a bad argument, 2 if the socket cannot be set up,
 * 3 if recvfrom() fails.
 */
#define _POSIX_C_SOURCE 200809L
#define PROGNAME "naive_udp_echo"

/* The shared helpers of the real programs: strict port parsing, errors,
 * address formatting. */
#include "../common.h"

#include <arpa/inet.h>

#define DEFAULT_PORT 9877
#define MAX_DATAGRAM 65536

/* The command line: -h, -p PORT, each mistake named in one line. */
#include "server_args.h"

int
main(int argc, char **argv)
{
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_ANY) };
    static char buf[MAX_DATAGRAM];
    unsigned short port = DEFAULT_PORT;
    char local[ADDR_STRLEN];
    int fd, rc;

    if ((rc = parse_server_args(argc, argv, NULL, NULL, NULL, &port)) >= 0)
        return rc;
    addr.sin_port = htons(port);
    if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        report_error(errno, "socket/bind 0.0.0.0:%u (udp)", port);
        return 2;
    }
    printf("listening on %s (udp)\n",
           format_socket_address(fd, getsockname, local, sizeof local));
    fflush(stdout);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof peer;
        char from[ADDR_STRLEN];
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0,
                             (struct sockaddr *)&peer, &peerlen);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            report_error(errno, "recvfrom");
            return 3;
        }
        /* The flaw: no source address given, so the kernel chooses one. */
        if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer,
                   peerlen) < 0)
            report_error(errno, "sendto");
        printf("echoed %zd bytes to %s\n", n,
               format_sockaddr((struct sockaddr *)&peer, peerlen, from,
                               sizeof from));
        fflush(stdout);
    }
}
