/* vip.c -- VIPs and link state through libnl-3 route (see vip.h). */
#include "vip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <linux/rtnetlink.h>

const char *vip_strerror(int err)
{
    return nl_geterror(err < 0 ? -err : err);
}

/* Add or remove one host address (/32 or /128) of family af, bytes in network order.
 * IPv6 ones skip duplicate address detection: the address is ours the moment VRRP says
 * so (a tentative address would take no traffic for a second). */
static int addr_op(struct vip_ctx *v, int af, const void *bytes, bool add)
{
    if (v->sk == NULL)
        return -NLE_BAD_SOCK;
    size_t len = af == AF_INET6 ? 16 : 4;
    struct rtnl_addr *a = rtnl_addr_alloc();
    struct nl_addr *local = nl_addr_build(af, bytes, len);
    if (a == NULL || local == NULL) {
        if (a)
            rtnl_addr_put(a);
        if (local)
            nl_addr_put(local);
        return -NLE_NOMEM;
    }
    rtnl_addr_set_ifindex(a, v->ifindex);
    rtnl_addr_set_family(a, af);
    rtnl_addr_set_local(a, local);
    rtnl_addr_set_prefixlen(a, (int)len * 8);
    if (af == AF_INET6)
        rtnl_addr_set_flags(a, IFA_F_NODAD);
    int rc = add ? rtnl_addr_add(v->sk, a, 0) : rtnl_addr_delete(v->sk, a, 0);
    nl_addr_put(local);
    rtnl_addr_put(a);
    if (add && rc == -NLE_EXIST)
        rc = 0;
    if (!add && (rc == -NLE_NOADDR || rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV))
        rc = 0;
    return rc;
}

int vip_add(struct vip_ctx *v, uint32_t ip)
{
    uint32_t be = htonl(ip);
    return addr_op(v, AF_INET, &be, true);
}

int vip_del(struct vip_ctx *v, uint32_t ip)
{
    uint32_t be = htonl(ip);
    return addr_op(v, AF_INET, &be, false);
}

int vip6_add(struct vip_ctx *v, const struct in6_addr *ip)
{
    return addr_op(v, AF_INET6, ip, true);
}

int vip6_del(struct vip_ctx *v, const struct in6_addr *ip)
{
    return addr_op(v, AF_INET6, ip, false);
}

static bool flags_up(unsigned flags)
{
    return (flags & IFF_UP) && (flags & IFF_RUNNING);
}

static int on_msg(struct nl_msg *msg, void *arg)
{
    struct vip_ctx *v = arg;
    struct nlmsghdr *h = nlmsg_hdr(msg);
    if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
        return NL_OK;
    struct ifinfomsg *ifi = nlmsg_data(h);
    if (ifi->ifi_index != v->ifindex)
        return NL_OK;
    bool up = h->nlmsg_type == RTM_NEWLINK && flags_up(ifi->ifi_flags);
    if (up != v->link_up) {
        v->link_up = up;
        if (v->cb)
            v->cb(v->arg, up);
    }
    return NL_OK;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    struct vip_ctx *v = p->data;
    if (status == 0)
        nl_recvmsgs_default(v->watch);
}

int vip_open(struct vip_ctx *v, uv_loop_t *loop, int ifindex, vip_link_cb cb, void *arg)
{
    int rc;
    v->ifindex = ifindex;
    v->cb = cb;
    v->arg = arg;
    v->sk = nl_socket_alloc();
    v->watch = nl_socket_alloc();
    if (v->sk == NULL || v->watch == NULL)
        return -ENOMEM;
    if ((rc = nl_connect(v->sk, NETLINK_ROUTE)) < 0)
        return -EACCES;
    nl_socket_disable_seq_check(v->watch);
    nl_socket_modify_cb(v->watch, NL_CB_VALID, NL_CB_CUSTOM, on_msg, v);
    if ((rc = nl_connect(v->watch, NETLINK_ROUTE)) < 0 ||
        (rc = nl_socket_add_memberships(v->watch, RTNLGRP_LINK, 0)) < 0)
        return -EACCES;
    nl_socket_set_nonblocking(v->watch);
    struct rtnl_link *link = NULL;
    if (rtnl_link_get_kernel(v->sk, ifindex, NULL, &link) < 0 || link == NULL)
        return -ENODEV;
    v->link_up = flags_up(rtnl_link_get_flags(link));
    rtnl_link_put(link);
    v->poll.data = v;
    uv_poll_init(loop, &v->poll, nl_socket_get_fd(v->watch));
    uv_poll_start(&v->poll, UV_READABLE, on_readable);
    v->polling = true;
    return 0;
}

static void poll_closed(uv_handle_t *h)
{
    struct vip_ctx *v = h->data;
    nl_socket_free(v->watch);
    v->watch = NULL;
}

void vip_close(struct vip_ctx *v)
{
    if (v->polling) {
        v->polling = false;
        uv_close((uv_handle_t *)&v->poll, poll_closed);
    } else if (v->watch) {
        nl_socket_free(v->watch);
        v->watch = NULL;
    }
    if (v->sk)
        nl_socket_free(v->sk);
    v->sk = NULL;
}
