/*
 * udp.c - the UDP echo: each datagram goes back to its sender, from the
 * address it was sent to.
 *
 * UDP keeps message boundaries: one recvmsg() is one datagram, and what
 * does not fit in the buffer is lost (MSG_TRUNC says so), never delivered
 * by the next call.
 *
 * The source address of a reply is the subtle part.  Our socket is bound
 * to the wildcard address, so for each sendto() the kernel picks a source
 * address from its routing table, and on a host with several addresses
 * that need not be the one the client wrote to.  A client that sent to
 * 127.0.0.2 and gets its answer from 127.0.0.1 drops it: a connected UDP
 * socket takes datagrams from its peer's address only (UNP's chapter on
 * UDP, "verifying received responses").  So we ask the kernel for each
 * datagram's destination address (IP_PKTINFO, IPV6_RECVPKTINFO: RFC 3542)
 * and give it back as the source of the reply (sendmsg() with the same
 * control message).  lab/12-udp-reply-address.sh shows the difference.
 */
#define _GNU_SOURCE     /* glibc declares RFC 3542's in6_pktinfo only so */
#include "server.h"

#include <sys/uio.h>

/* Room for the one control message we ask for, of either family. */
union pktinfo_control {
    struct cmsghdr align;
#ifdef IP_PKTINFO
    char v4[CMSG_SPACE(sizeof(struct in_pktinfo))];
#endif
#ifdef IPV6_RECVPKTINFO
    char v6[CMSG_SPACE(sizeof(struct in6_pktinfo))];
#endif
    char none[CMSG_SPACE(sizeof(int))];
};

static bool loop_risk(const struct server *s, const struct sockaddr *sa);
static void reply_from_destination(struct msghdr *msg);

/*
 * udp_ask_destination - have recvmsg() report each datagram's destination
 * address on fd.  Returns 0, or -1 with errno set.  Where the system has
 * neither option, replies go out with the kernel's choice of source.
 */
int
udp_ask_destination(int fd, int family)
{
    int on = 1;

#ifdef IPV6_RECVPKTINFO
    if (family == AF_INET6)
        return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
#endif
#ifdef IP_PKTINFO
    if (family == AF_INET)
        return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
#endif
    (void)fd, (void)family, (void)on;
    return 0;
}

/* handle_datagram - echo one datagram to its sender. */
void
handle_datagram(struct server *s)
{
    struct sockaddr_storage ss;
    union pktinfo_control control;
    struct iovec iov = { .iov_base = s->readbuf,
                         .iov_len = (size_t)s->opt.read_size };
    struct msghdr msg = { .msg_name = &ss, .msg_namelen = sizeof ss,
                          .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = &control,
                          .msg_controllen = sizeof control };
    char peer[ADDR_STRLEN];
    ssize_t sent, n = recvmsg(s->udp_fd, &msg, 0);

    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            log_error(s, errno, "recvmsg udp");
        return;
    }
    format_sockaddr((struct sockaddr *)&ss, msg.msg_namelen, peer,
                    sizeof peer);
    s->udp_datagrams++;
    s->bytes_in += (uint64_t)n;
    if (loop_risk(s, (struct sockaddr *)&ss)) {
        s->udp_ignored++;
        if (s->trace)
            print_line(s, "udp %s: ignored (a reply could start a loop)",
                       peer);
        return;
    }
    if (msg.msg_flags & MSG_TRUNC) {
        s->udp_truncated++;
        log_event(s, "udp %s: datagram truncated to %zd byte%s"
                  " (--read-size %ld)", peer, n, plural(n), s->opt.read_size);
    } else if (s->trace) {
        print_line(s, "udp %s: %zd byte%s", peer, n, plural(n));
    }

    /* The same message goes back: the sender's address as the
     * destination, the datagram (cut to what we read), and the address it
     * came to as the source. */
    iov.iov_len = (size_t)n;
    reply_from_destination(&msg);
    sent = sendmsg(s->udp_fd, &msg, 0);
    if (sent < 0 && (errno == EINVAL || errno == EADDRNOTAVAIL) &&
        msg.msg_control != NULL) {
        /* It came to a broadcast or multicast address, which cannot be a
         * source: let the kernel choose one. */
        msg.msg_control = NULL;
        msg.msg_controllen = 0;
        sent = sendmsg(s->udp_fd, &msg, 0);
    }
    if (sent < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            log_error(s, errno, "sendmsg udp %s", peer);
        return;                 /* UDP may lose a datagram; so do we */
    }
    s->bytes_out += (uint64_t)n;
}

/*
 * reply_from_destination - turn the control message recvmsg() gave us
 * (the datagram's destination) into the one sendmsg() takes (the reply's
 * source), in place.  No control message: let the kernel choose.
 */
static void
reply_from_destination(struct msghdr *msg)
{
    struct cmsghdr *cm = CMSG_FIRSTHDR(msg);

    if (cm == NULL || (msg->msg_flags & MSG_CTRUNC)) {
        msg->msg_control = NULL;
        msg->msg_controllen = 0;
        return;
    }
#ifdef IPV6_RECVPKTINFO
    if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
        struct in6_pktinfo info;

        memcpy(&info, CMSG_DATA(cm), sizeof info);
        /* A link-local address means something only on its interface. */
        if (!IN6_IS_ADDR_LINKLOCAL(&info.ipi6_addr))
            info.ipi6_ifindex = 0;
        memcpy(CMSG_DATA(cm), &info, sizeof info);
        msg->msg_controllen = CMSG_SPACE(sizeof info);
        return;
    }
#endif
#ifdef IP_PKTINFO
    if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
        struct in_pktinfo info;

        /* ipi_spec_dst is our local address the datagram came to (for a
         * broadcast: this interface's own address); the interface is for
         * the routing table to choose. */
        memcpy(&info, CMSG_DATA(cm), sizeof info);
        info.ipi_ifindex = 0;
        memcpy(CMSG_DATA(cm), &info, sizeof info);
        msg->msg_controllen = CMSG_SPACE(sizeof info);
        return;
    }
#endif
    msg->msg_control = NULL;
    msg->msg_controllen = 0;
}

/*
 * loop_risk - a datagram we must not answer.  UDP's source address is
 * whatever the sender wrote: one spoofed datagram "from" another echo
 * server (our own port elsewhere, or a classic service below 1024: echo 7,
 * daytime 13, chargen 19, DNS 53, NTP 123...) would make the two servers
 * answer each other forever (the "Loop DoS" attacks, CVE-2024-2169).  Real
 * clients send from an ephemeral port, so they are never refused.
 */
static bool
loop_risk(const struct server *s, const struct sockaddr *sa)
{
    unsigned port;

    if (sa->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    else
        return false;
    return port < 1024 || port == s->port;
}
