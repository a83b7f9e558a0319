/* vipwatch.c -- end the sessions of a VIP that left this host.
 *
 * When vrrpd hands a VIP to the peer (preemption, a FAULT, a planned stop), the clients'
 * packets for the sessions lbd holds on that address go to the peer from then on, which
 * answers them with a reset: those sessions can never carry another query. Left alone
 * they would hold their node connections (PostgreSQL backends, CockroachDB sessions)
 * until TCP keepalive gives up, minutes later. lbd listens for RTM_DELADDR on a netlink
 * route socket (libnl, as vrrpd's vip.c; no privilege needed), IPv4 and IPv6, and ends
 * them at once, so the nodes free those backends. (The client learns of it from the peer's reset at
 * its next packet, as before: nothing can be sent from an address this host no longer has.) Off
 * with lbd.close_on_vip_loss: false (reloadable). */
#include "lbd.h"
#include "session.h"
#include "vipwatch.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <string.h>

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
static int on_msg(struct nl_msg *msg, void *arg)
{
    struct nlmsghdr *h = nlmsg_hdr(msg);
    struct nlattr *tb[IFA_MAX + 1];
    if (h->nlmsg_type != RTM_DELADDR ||
        nlmsg_parse(h, sizeof(struct ifaddrmsg), tb, IFA_MAX, NULL) < 0)
        return NL_OK;
    const struct ifaddrmsg *ifa = nlmsg_data(h);
    int len = ifa->ifa_family == AF_INET ? 4 : ifa->ifa_family == AF_INET6 ? 16 : 0;
    const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
    if (len == 0 || a == NULL || nla_len(a) < len)
        return NL_OK;
    address_gone(arg, ifa->ifa_family, nla_data(a));
    return NL_OK;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    struct lbd *l = p->data;
    (void)events;
    if (status < 0)
        return;
    /* (ENOBUFS, an overrun, loses events, never sessions: a moved VIP's sessions then end
     * when TCP gives up on them, as without the watch.) */
    (void)nl_recvmsgs_default(l->vipwatch_sk);
}

int vipwatch_start(struct lbd *l)
{
    struct nl_sock *sk = nl_socket_alloc();
    int rc;
    if (sk == NULL)
        return -ENOMEM;
    nl_socket_disable_seq_check(sk);
    nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_msg, l);
    if ((rc = nl_connect(sk, NETLINK_ROUTE)) < 0 ||
        (rc = nl_socket_add_memberships(sk, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, 0)) < 0 ||
        (rc = nl_socket_set_nonblocking(sk)) < 0) {
        nl_socket_free(sk);
        return rc == -NLE_PERM ? -EPERM : -EIO;
    }
    l->vipwatch_sk = sk;
    uv_poll_init(l->loop, &l->vipwatch, nl_socket_get_fd(sk));
    l->vipwatch.data = l;
    uv_poll_start(&l->vipwatch, UV_READABLE, on_readable);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct lbd *l = h->data;
    nl_socket_free(l->vipwatch_sk); /* (closes its descriptor, after libuv let go of it) */
    l->vipwatch_sk = NULL;
}

void vipwatch_stop(struct lbd *l)
{
    if (l->vipwatch_sk == NULL)
        return;
    uv_close((uv_handle_t *)&l->vipwatch, on_closed);
}
