/*
 * testpeer.c - well- and badly-behaved TCP peers for the test suite.
 *
 * Not part of the lesson: a test instrument.  Each mode plays one kind of
 * client the server must survive or serve correctly, and exits 0 only if
 * what it saw was right.
 *
 *   testpeer rtt HOST PORT COUNT     COUNT echo round trips of 64 bytes,
 *                                    each answered within 2 s
 *   testpeer flood HOST PORT SECS    send without ever reading, for SECS
 *   testpeer reset HOST PORT         send, then abort with RST (SO_LINGER 0)
 *   testpeer midclose HOST PORT      send 4 MiB, never read, close early
 *   testpeer cycle HOST PORT COUNT   COUNT times: connect, echo 1 byte, close
 *   testpeer connects HOST PORT COUNT
 *                                    COUNT connect() and close() in a row,
 *                                    as fast as they go; prints the slowest
 *   testpeer newlines HOST PORT COUNT
 *                                    send COUNT newlines (COUNT empty chat
 *                                    lines) and never read; wait for EOF
 *   testpeer slowread HOST PORT RATE SECS
 *                                    read at most RATE bytes/s for SECS,
 *                                    each line printed after the time it
 *                                    came (CLOCK_REALTIME, microseconds);
 *                                    exit 1 if the server closes first
 *   testpeer lastwords HOST PORT BYTES
 *                                    a server, not a client: listen on HOST
 *                                    PORT (0: any; the port is printed),
 *                                    take one client, wait 1 s, send BYTES
 *                                    and "LAST\n", wait until the client's
 *                                    kernel has all of it, then close
 *                                    without reading what the client sent
 *                                    (so the close is a RST)
 *   testpeer drain HOST PORT BYTES RATE
 *                                    send BYTES, half-close, read the echo
 *                                    at RATE bytes/s to EOF, with a small
 *                                    receive buffer; exit 0 if all BYTES
 *                                    came back
 */
#define PROGNAME "testpeer"
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#define RTT_LIMIT_US 2000000
#define MSG_SIZE     64
#define NEWLINES_US  60000000   /* newlines: stay connected this long */
#define DRAIN_RCVBUF 16384      /* drain: the echo waits in the server */

static int connect_to(const char *host, const char *port, bool nonblock,
                      int rcvbuf);
static int wait_fd(int fd, bool for_write, int64_t timeout_us);
static int mode_rtt(const char *host, const char *port, long count);
static int mode_flood(const char *host, const char *port, long secs);
static int mode_reset(const char *host, const char *port);
static int mode_midclose(const char *host, const char *port);
static int mode_cycle(const char *host, const char *port, long count);
static int mode_connects(const char *host, const char *port, long count);
static int mode_newlines(const char *host, const char *port, long count);
static int mode_slowread(const char *host, const char *port, long rate,
                         long secs);
static int mode_drain(const char *host, const char *port, long bytes,
                      long rate);
static int mode_lastwords(const char *host, const char *port, long bytes);
static int read_paced(int fd, long rate, int64_t until_us, bool print_lines,
                      unsigned long long *got);
static void sleep_until(int64_t when_us);

int
main(int argc, char **argv)
{
    long n = 0, m = 0;

    if (argc < 4 || (argc >= 5 && parse_long(argv[4], 1, 1000000000, &n) < 0)
        || (argc == 6 && parse_long(argv[5], 1, 1000000000, &m) < 0) ||
        argc > 6) {
        fprintf(stderr, "usage: %s rtt|flood|reset|midclose|cycle|connects|"
                "newlines|slowread|drain HOST PORT [N [M]]\n", PROGNAME);
        return 2;
    }
    if (strcmp(argv[1], "rtt") == 0 && n > 0)
        return mode_rtt(argv[2], argv[3], n);
    if (strcmp(argv[1], "flood") == 0 && n > 0)
        return mode_flood(argv[2], argv[3], n);
    if (strcmp(argv[1], "reset") == 0)
        return mode_reset(argv[2], argv[3]);
    if (strcmp(argv[1], "midclose") == 0)
        return mode_midclose(argv[2], argv[3]);
    if (strcmp(argv[1], "cycle") == 0 && n > 0)
        return mode_cycle(argv[2], argv[3], n);
    if (strcmp(argv[1], "connects") == 0 && n > 0)
        return mode_connects(argv[2], argv[3], n);
    if (strcmp(argv[1], "newlines") == 0 && n > 0)
        return mode_newlines(argv[2], argv[3], n);
    if (strcmp(argv[1], "slowread") == 0 && n > 0 && m > 0)
        return mode_slowread(argv[2], argv[3], n, m);
    if (strcmp(argv[1], "lastwords") == 0 && n > 0)
        return mode_lastwords(argv[2], argv[3], n);
    if (strcmp(argv[1], "drain") == 0 && n > 0 && m > 0)
        return mode_drain(argv[2], argv[3], n, m);
    fprintf(stderr, "%s: unknown mode or missing count '%s'\n", PROGNAME,
            argv[1]);
    return 2;
}

/* connect_to - a connected TCP socket, or exit 1 with the reason.  A
 * non-zero rcvbuf sets SO_RCVBUF first: a small window, which the kernel
 * does not grow, so what the server sends waits in the server. */
static int
connect_to(const char *host, const char *port, bool nonblock, int rcvbuf)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
    int fd, rc = getaddrinfo(host, port, &hints, &res);

    if (rc != 0) {
        report_error(0, "%s: %s", host, gai_strerror(rc));
        exit(1);
    }
    fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && rcvbuf > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) {
        report_error(errno, "setsockopt SO_RCVBUF");
        exit(1);
    }
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        report_error(errno, "connect %s %s", host, port);
        exit(1);
    }
    freeaddrinfo(res);
    if (nonblock && set_nonblocking(fd) < 0) {
        report_error(errno, "fcntl");
        exit(1);
    }
    return fd;
}

/* wait_fd - select() on one fd; returns 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, bool for_write, int64_t timeout_us)
{
    fd_set set;
    struct timeval tv = { .tv_sec = (time_t)(timeout_us / 1000000),
                          .tv_usec = (suseconds_t)(timeout_us % 1000000) };
    int rc;

    FD_ZERO(&set);
    FD_SET(fd, &set);
    do
        rc = select(fd + 1, for_write ? NULL : &set, for_write ? &set : NULL,
                    NULL, &tv);
    while (rc < 0 && errno == EINTR);
    return rc;
}

static int
mode_rtt(const char *host, const char *port, long count)
{
    int fd = connect_to(host, port, false, 0);
    int64_t worst = 0;

    for (long i = 0; i < count; i++) {
        char msg[MSG_SIZE], reply[MSG_SIZE];
        size_t got = 0;
        int64_t start = now_us();

        memset(msg, 'a' + (int)(i % 26), sizeof msg);
        msg[sizeof msg - 1] = '\n';
        if (write_all(fd, msg, sizeof msg) < 0) {
            report_error(errno, "write");
            return 1;
        }
        while (got < sizeof reply) {
            int64_t left = RTT_LIMIT_US - (now_us() - start);
            ssize_t n;

            if (left <= 0 || wait_fd(fd, false, left) <= 0) {
                report_error(0, "round trip %ld: no echo within 2s", i + 1);
                return 1;
            }
            if ((n = read(fd, reply + got, sizeof reply - got)) <= 0) {
                report_error(n < 0 ? errno : 0, "round trip %ld: read", i + 1);
                return 1;
            }
            got += (size_t)n;
        }
        if (memcmp(msg, reply, sizeof msg) != 0) {
            report_error(0, "round trip %ld: echo differs", i + 1);
            return 1;
        }
        if (now_us() - start > worst)
            worst = now_us() - start;
    }
    printf("%ld round trips, slowest %lld ms\n", count,
           (long long)(worst / 1000));
    close(fd);
    return 0;
}

static int
mode_flood(const char *host, const char *port, long secs)
{
    static char chunk[65536];
    int fd = connect_to(host, port, true, 0);
    int64_t end = now_us() + secs * 1000000;
    unsigned long long sent = 0;

    memset(chunk, 'f', sizeof chunk);
    printf("flooding\n");
    fflush(stdout);
    while (now_us() < end) {
        ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);

        if (n > 0)
            sent += (unsigned long long)n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                 errno != EINTR)
            break;
        else
            wait_fd(fd, true, end - now_us() > 0 ? end - now_us() : 0);
    }
    printf("sent %llu bytes, read none\n", sent);
    close(fd);
    return 0;
}

static int
mode_reset(const char *host, const char *port)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    int fd = connect_to(host, port, false, 0);
    char buf[16];

    if (write_all(fd, "before reset\n", 13) < 0 ||
        wait_fd(fd, false, RTT_LIMIT_US) <= 0 || read(fd, buf, 1) != 1) {
        report_error(errno, "no echo before the reset");
        return 1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0) {
        report_error(errno, "setsockopt SO_LINGER");
        return 1;
    }
    close(fd);                  /* linger 0: RST, not FIN */
    printf("reset sent\n");
    return 0;
}

static int
mode_midclose(const char *host, const char *port)
{
    static char chunk[65536];
    int fd = connect_to(host, port, true, 0);
    size_t total = 0;
    int64_t end = now_us() + 2000000;

    memset(chunk, 'm', sizeof chunk);
    while (total < 4u * 1024 * 1024 && now_us() < end) {
        ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);

        if (n > 0)
            total += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            break;
        else
            wait_fd(fd, true, 100000);
    }
    close(fd);                  /* unread echo in our buffer: RST */
    printf("closed after sending %zu bytes\n", total);
    return 0;
}

static int
mode_cycle(const char *host, const char *port, long count)
{
    for (long i = 0; i < count; i++) {
        int fd = connect_to(host, port, false, 0);
        char c;

        if (write_all(fd, "x", 1) < 0 || wait_fd(fd, false, RTT_LIMIT_US) <= 0
            || read(fd, &c, 1) != 1 || c != 'x') {
            report_error(errno, "cycle %ld: no echo", i + 1);
            return 1;
        }
        close(fd);
    }
    printf("%ld connections opened and closed\n", count);
    return 0;
}

static int
mode_connects(const char *host, const char *port, long count)
{
    int64_t start = now_us(), worst = 0;

    for (long i = 0; i < count; i++) {
        int64_t t = now_us();
        int fd = connect_to(host, port, false, 0);

        if (now_us() - t > worst)
            worst = now_us() - t;
        close(fd);
    }
    printf("%ld connections in %lld ms, slowest connect %lld ms\n", count,
           (long long)((now_us() - start) / 1000), (long long)(worst / 1000));
    return 0;
}

static int
mode_newlines(const char *host, const char *port, long count)
{
    static char chunk[65536];
    int fd = connect_to(host, port, true, 0);
    int64_t end = now_us() + NEWLINES_US;
    long left = count;

    memset(chunk, '\n', sizeof chunk);
    while (left > 0 && now_us() < end) {
        size_t want = left < (long)sizeof chunk ? (size_t)left : sizeof chunk;
        ssize_t n = send(fd, chunk, want, MSG_NOSIGNAL);

        if (n > 0)
            left -= n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                 errno != EINTR)
            break;
        else
            wait_fd(fd, true, 100000);
    }
    printf("sent %ld newlines\n", count - left);
    fflush(stdout);
    /* Never read; stay connected until the time is up (or we are killed). */
    sleep_until(end);
    close(fd);
    return 0;
}

static int
mode_slowread(const char *host, const char *port, long rate, long secs)
{
    int fd = connect_to(host, port, true, 0);
    int64_t start = now_us();
    unsigned long long got = 0;

    if (read_paced(fd, rate, start + secs * 1000000, true, &got) == 0) {
        printf("closed by the server after %lld ms, %llu bytes read\n",
               (long long)((now_us() - start) / 1000), got);
        return 1;
    }
    printf("still connected after %ld s, %llu bytes read\n", secs, got);
    return 0;
}

static int
mode_drain(const char *host, const char *port, long bytes, long rate)
{
    static char chunk[65536];
    int fd = connect_to(host, port, true, DRAIN_RCVBUF);
    int64_t start = now_us();
    unsigned long long got = 0;
    long sent = 0;

    memset(chunk, 'd', sizeof chunk);
    /* Send it all, reading at our pace meanwhile so the echo can flow. */
    while (sent < bytes) {
        size_t want = bytes - sent < (long)sizeof chunk ? (size_t)(bytes - sent)
                                                        : sizeof chunk;
        ssize_t n = send(fd, chunk, want, MSG_NOSIGNAL);

        if (n > 0) {
            sent += n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            report_error(errno, "send");
            return 1;
        } else if (read_paced(fd, rate, now_us() + 100000, false, &got) == 0) {
            break;
        }
    }
    if (shutdown(fd, SHUT_WR) < 0) {
        report_error(errno, "shutdown");
        return 1;
    }
    while (read_paced(fd, rate, now_us() + 1000000, false, &got) > 0)
        continue;
    printf("sent %ld, received %llu, then EOF after %lld ms\n", sent, got,
           (long long)((now_us() - start) / 1000));
    return got == (unsigned long long)bytes ? 0 : 1;
}

static int
mode_lastwords(const char *host, const char *port, long bytes)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE }, *res;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    char *data = malloc((size_t)bytes + 5);
    int lfd, fd, one = 1, rc = getaddrinfo(host, port, &hints, &res);
    int64_t end;
    long sent = 0;

    if (rc != 0 || data == NULL) {
        report_error(0, "%s: %s", host, rc ? gai_strerror(rc) : "no memory");
        return 1;
    }
    lfd = socket(res->ai_family, SOCK_STREAM, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
                              sizeof one) < 0 ||
        bind(lfd, res->ai_addr, res->ai_addrlen) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&ss, &sslen) < 0) {
        report_error(errno, "listen %s %s", host, port);
        return 1;
    }
    freeaddrinfo(res);
    printf("listening on port %u\n", ntohs(ss.ss_family == AF_INET6
                                     ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port));
    fflush(stdout);
    if ((fd = accept(lfd, NULL, NULL)) < 0 || set_nonblocking(fd) < 0) {
        report_error(errno, "accept");
        return 1;
    }
    sleep_until(now_us() + 1000000);
    memset(data, 'x', (size_t)bytes);
    memcpy(data + bytes, "LAST\n", 5);
    for (end = now_us() + 5000000; sent < bytes + 5 && now_us() < end;) {
        ssize_t n = send(fd, data + sent, (size_t)(bytes + 5 - sent),
                         MSG_NOSIGNAL);

        if (n > 0)
            sent += n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            break;
        else
            wait_fd(fd, true, 100000);
    }
    /* Until every byte has left (and been acknowledged): a RST would
     * discard what is still queued here. */
    for (int queued = 1; queued > 0 && now_us() < end;) {
        if (ioctl(fd, TIOCOUTQ, &queued) < 0) {
            report_error(errno, "ioctl TIOCOUTQ");
            return 1;
        }
        if (queued > 0)
            sleep_until(now_us() + 10000);
    }
    printf("sent %ld bytes, closing with unread input\n", sent);
    close(fd);                  /* unread input: the kernel sends RST */
    close(lfd);
    free(data);
    return sent == bytes + 5 ? 0 : 1;
}

/*
 * read_paced - read fd (non-blocking) at no more than rate bytes/s until
 * until_us: one read of a tenth of a second's worth per tenth of a second,
 * adding to *got; with print_lines, print each complete line after the
 * time it came.  Returns 1 at the deadline, 0 at EOF or a reset, or exits
 * on another error.
 */
static int
read_paced(int fd, long rate, int64_t until_us, bool print_lines,
           unsigned long long *got)
{
    static char line[65536];
    static size_t used;
    char buf[65536];

    while (now_us() < until_us) {
        size_t want = (size_t)(rate / 10 > 0 ? rate / 10 : 1);
        int64_t tick = now_us() + 100000;
        ssize_t n;

        if (want > sizeof buf)
            want = sizeof buf;
        n = read(fd, buf, want);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 0;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            report_error(errno, "read");
            exit(1);
        }
        for (ssize_t i = 0; print_lines && i < n; i++) {
            if (buf[i] == '\n') {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                printf("%lld%06ld %.*s\n", (long long)ts.tv_sec,
                       ts.tv_nsec / 1000, (int)used, line);
                used = 0;
            } else if (used < sizeof line) {
                line[used++] = buf[i];
            }
        }
        if (n > 0)
            *got += (unsigned long long)n;
        fflush(stdout);
        sleep_until(tick < until_us ? tick : until_us);
    }
    return 1;
}

/* sleep_until - nanosleep() to a time on now_us()'s clock. */
static void
sleep_until(int64_t when_us)
{
    int64_t left;

    while ((left = when_us - now_us()) > 0) {
        struct timespec ts = { .tv_sec = (time_t)(left / 1000000),
                               .tv_nsec = (long)(left % 1000000) * 1000 };
        nanosleep(&ts, NULL);
    }
}
