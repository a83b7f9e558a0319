/* vip.h -- all of vrrpd's netlink traffic, through libnl-3: add and remove the virtual
 * addresses, and watch the interface's link state. The state machine never calls
 * netlink itself; vrrpd.c calls these. */
#ifndef VRRPD_VIP_H
#define VRRPD_VIP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct nl_sock;
typedef void (*vip_link_cb)(void *arg, bool up);

struct vip_ctx {
    struct nl_sock *sk;    /* requests */
    struct nl_sock *watch; /* link notifications */
    uv_poll_t poll;
    bool polling;
    int ifindex;
    bool link_up;
    vip_link_cb cb;
    void *arg;
};

/* Open both sockets and read the link's state now. Returns 0 or a negative errno. */
int vip_open(struct vip_ctx *v, uv_loop_t *loop, int ifindex, vip_link_cb cb, void *arg);
void vip_close(struct vip_ctx *v);
/* Add/remove ip/32 (host order) on the interface. Already there / already gone is 0. */
int vip_add(struct vip_ctx *v, uint32_t ip);
int vip_del(struct vip_ctx *v, uint32_t ip);
/* The same for an IPv6 address (/128, no duplicate address detection). */
int vip6_add(struct vip_ctx *v, const struct in6_addr *ip);
int vip6_del(struct vip_ctx *v, const struct in6_addr *ip);
/* A message for a libnl error code. */
const char *vip_strerror(int err);

#endif
