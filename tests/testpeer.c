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
 */
#define PROGNAME "testpeer"
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <netinet/in.h>
#include <sys/time.h>

#define RTT_LIMIT_US 2000000
#define MSG_SIZE     64

static int connect_to(const char *host, const char *port, bool nonblock);
static int wait_fd(int fd, bool for_write, int64_t timeout_us);
static int mode_rtt(const char *host, const char *port, long count);
static int mode_flood(const char *host, const char *port, long secs);
static int mode_reset(const char *host, const char *port);
static int mode_midclose(const char *host, const char *port);
static int mode_cycle(const char *host, const char *port, long count);

int
main(int argc, char **argv)
{
    long n = 0;

    if (argc < 4 || (argc == 5 && parse_long(argv[4], 1, 1000000, &n) < 0)) {
        fprintf(stderr, "usage: %s rtt|flood|reset|midclose|cycle HOST PORT"
                " [N]\n", PROGNAME);
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
    fprintf(stderr, "%s: unknown mode or missing count '%s'\n", PROGNAME,
            argv[1]);
    return 2;
}

/* connect_to - a connected TCP socket, or exit 1 with the reason. */
static int
connect_to(const char *host, const char *port, bool nonblock)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
    int fd, rc = getaddrinfo(host, port, &hints, &res);

    if (rc != 0) {
        report_error(0, "%s: %s", host, gai_strerror(rc));
        exit(1);
    }
    fd = socket(res->ai_family, SOCK_STREAM, 0);
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
    int fd = connect_to(host, port, false);
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
    int fd = connect_to(host, port, true);
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
    int fd = connect_to(host, port, false);
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
    int fd = connect_to(host, port, true);
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
        int fd = connect_to(host, port, false);
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
