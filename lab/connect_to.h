/*
 * connect_to.h - the connect of the lab's small blocking clients
 * (naive_client, bug_strlen_client): getaddrinfo(), then each address in
 * turn until one connect() works.  Include "../common.h" (report_error)
 * first.
 *
 * Header-only and `static inline`, as common.h.
 */
#ifndef CONNECT_TO_H
#define CONNECT_TO_H

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef COMMON_H
#error "include ../common.h before connect_to.h"
#endif

/*
 * connect_to - a connected TCP socket to the first address of HOST PORT
 * that answers.  Returns the fd, or -1 after printing why.
 */
static inline int
connect_to(const char *host, const char *port)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1, err = 0, rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        report_error(0, "%s port %s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            err = errno;
            (void)close(fd);    /* the connect error is the one to report */
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        report_error(err, "connect %s port %s", host, port);
    return fd;
}

#endif /* CONNECT_TO_H */
