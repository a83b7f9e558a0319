/* vipwatch.c -- end the sessions of a VIP that left this host.
 *
 * When vrrpd hands a VIP to the peer (preemption, a FAULT, a planned stop), the clients'
 * packets for the sessions lbd holds on that address go to the peer from then on, which
 * answers them with a reset: those sessions can never carry another query. Left alone
 * they would hold their node connections (PostgreSQL backends, CockroachDB sessions)
 * until TCP keepalive gives up, minutes later. lbd listens for RTM_DELADDR on a netlink
 * route socket (no privilege needed), IPv4 and IPv6, and ends them at once, so the nodes free those
 * backends. (The client learns of it from the peer's reset at its next packet, as
 * before: nothing can be sent from an address this host no longer has.)
 * Off with lbd.close_on_vip_loss: false (reloadable). */
#include "lbd.h"
#include "session.h"
#include "vipwatch.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void address_gone(struct lbd *l, int af, const void *ip)
{
    if (!l->cfg.close_on_vip_loss)
        return;
    size_t n = session_close_on_addr(l, af, ip);
    char a[INET6_ADDRSTRLEN];
    inet_ntop(af, ip, a, sizeof(a));
    log_emit(n ? LOG_WARN : LOG_INFO, "address_gone",
             "address=%s sessions_closed=%zu detail=\"the address left this host; its clients' "
             "packets go elsewhere now\"",
             a, n);
}

/* One RTM_DELADDR: the address removed (IFA_LOCAL, else IFA_ADDRESS). */
static void on_deladdr(struct lbd *l, struct nlmsghdr *h)
{
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    size_t len = ifa->ifa_family == AF_INET ? 4 : ifa->ifa_family == AF_INET6 ? 16 : 0;
    uint8_t local[16], address[16];
    bool has_local = false, has_address = false;
    if (len == 0)
        return;
    int alen = (int)IFA_PAYLOAD(h);
    for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (RTA_PAYLOAD(a) < len)
            continue;
        if (a->rta_type == IFA_LOCAL) {
            memcpy(local, RTA_DATA(a), len);
            has_local = true;
        } else if (a->rta_type == IFA_ADDRESS) {
            memcpy(address, RTA_DATA(a), len);
            has_address = true;
        }
    }
    if (has_local || has_address)
        address_gone(l, ifa->ifa_family, has_local ? local : address);
}

static void on_netlink(uv_poll_t *p, int status, int events)
{
    struct lbd *l = p->data;
    char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
    if (status < 0)
        return;
    for (;;) {
        ssize_t n = recv(l->vipwatch_fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return; /* EAGAIN; ENOBUFS (an overrun) loses events, never sessions */
        size_t len = (size_t)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len))
            if (h->nlmsg_type == RTM_DELADDR)
                on_deladdr(l, h);
    }
}

int vipwatch_start(struct lbd *l)
{
    l->vipwatch_fd = -1;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
                             .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    l->vipwatch_fd = fd;
    uv_poll_init(l->loop, &l->vipwatch, fd);
    l->vipwatch.data = l;
    uv_poll_start(&l->vipwatch, UV_READABLE, on_netlink);
    return 0;
}

void vipwatch_stop(struct lbd *l)
{
    if (l->vipwatch_fd < 0)
        return;
    uv_close((uv_handle_t *)&l->vipwatch, NULL);
    close(l->vipwatch_fd);
    l->vipwatch_fd = -1;
}
