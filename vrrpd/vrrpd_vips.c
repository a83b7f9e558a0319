/* vrrpd_vips.c -- the groups' virtual addresses on this host: listed, added and removed
 * (vip.c, netlink), announced (garp.c: gratuitous ARP, unsolicited Neighbor
 * Advertisements), and the interface's own addresses inspected: the primary address
 * adverts come from, VIPs an earlier run left behind, and whether each VIP lies on the
 * segment at all. */
#include "vrrpd_int.h"

#include "log.h"
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* The group's VIPs count IPv4 ones first (0 .. n_vips-1), then IPv6 ones. */
static size_t vip_count(const struct vrrpd_group *g)
{
    return g->cfg.n_vips + g->cfg.n_vips6;
}

static const struct in6_addr *vip6_at(const struct vrrpd_group *g, size_t i)
{
    return i < g->cfg.n_vips ? NULL : &g->cfg.vips6[i - g->cfg.n_vips];
}

/* VIP i as text, into buf (INET6_ADDRSTRLEN bytes). */
static const char *vip_text(const struct vrrpd_group *g, size_t i, char *buf, size_t size)
{
    const struct in6_addr *a6 = vip6_at(g, i);
    return a6 ? inet_ntop(AF_INET6, a6, buf, (socklen_t)size)
              : format_ip4(g->cfg.vips[i], buf, size);
}

void vrrpd_vip_list(const struct vrrpd_group *g, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < vip_count(g); i++) {
        char ip[INET6_ADDRSTRLEN];
        int w =
            snprintf(buf + used, size - used, "%s%s", i ? "," : "", vip_text(g, i, ip, sizeof(ip)));
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
}

/* ---- VIPs and gratuitous ARP ---- */

void vrrpd_vips_set(struct vrrpd_group *g, bool add)
{
    if (g->d->closed)
        return;
    struct vip_ctx *v = &g->d->vip;
    for (size_t i = 0; i < vip_count(g); i++) {
        const struct in6_addr *a6 = vip6_at(g, i);
        int rc = a6 ? (add ? vip6_add(v, a6) : vip6_del(v, a6))
                    : (add ? vip_add(v, g->cfg.vips[i]) : vip_del(v, g->cfg.vips[i]));
        char ip[INET6_ADDRSTRLEN];
        if (rc != 0)
            log_emit(LOG_ERROR, add ? "vip_add_failed" : "vip_del_failed",
                     "vrid=%u vip=%s error=\"%s\" hint=\"vrrpd needs CAP_NET_ADMIN\"", g->cfg.vrid,
                     vip_text(g, i, ip, sizeof(ip)), vip_strerror(rc));
    }
    g->vips_held = add;
}

static void garp_round(uv_timer_t *t)
{
    struct vrrpd_group *g = t->data;
    if (g->fsm.state != VRRP_MASTER || g->garp_left == 0)
        return;
    for (size_t i = 0; i < vip_count(g); i++) {
        const struct in6_addr *a6 = vip6_at(g, i);
        int rc = a6 ? garp_send6(&g->d->garp, a6) : garp_send(&g->d->garp, g->cfg.vips[i]);
        if (rc == 0) {
            g->garps_sent++;
            continue;
        }
        g->garp_errors++;
        if (g->garp_errors == 1 || g->garp_errors % 100 == 0) {
            char ip[INET6_ADDRSTRLEN];
            log_emit(LOG_WARN, "garp_failed", "vrid=%u vip=%s error=\"%s\" count=%llu", g->cfg.vrid,
                     vip_text(g, i, ip, sizeof(ip)), strerror(-rc),
                     (unsigned long long)g->garp_errors);
        }
    }
    if (--g->garp_left > 0)
        uv_timer_start(&g->garp_timer, garp_round, g->d->cfg.garp_interval_ms, 0);
}

/* The interface's first IPv4 address that is not one of our VIPs. */
uint32_t vrrpd_find_primary(struct vrrpd *d, bool *stale)
{
    struct ifaddrs *ifa = NULL, *p;
    uint32_t found = 0;
    *stale = false;
    if (getifaddrs(&ifa) != 0)
        return 0;
    for (p = ifa; p; p = p->ifa_next) {
        if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET ||
            strcmp(p->ifa_name, d->cfg.interface) != 0)
            continue;
        uint32_t ip = ntohl(((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr);
        bool is_vip = false;
        for (size_t i = 0; i < d->n_groups; i++)
            for (size_t j = 0; j < d->groups[i].cfg.n_vips; j++)
                is_vip |= d->groups[i].cfg.vips[j] == ip;
        if (is_vip)
            *stale = true;
        else if (found == 0)
            found = ip;
    }
    freeifaddrs(ifa);
    return found;
}

/* An IPv6 VIP must sit in one of the interface's IPv6 prefixes (not link-local, not a
 * /128): the clients on the segment reach it through that prefix's on-link route. */
static int check_vip6(struct ifaddrs *ifa, const char *ifname, size_t gi,
                      const struct in6_addr *vip, char *err, size_t errsize)
{
    char nets[256] = "", v[INET6_ADDRSTRLEN];
    size_t used = 0;
    for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
        if (!p->ifa_addr || !p->ifa_netmask || p->ifa_addr->sa_family != AF_INET6 ||
            strcmp(p->ifa_name, ifname) != 0)
            continue;
        const uint8_t *a = ((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr.s6_addr;
        const uint8_t *m = ((struct sockaddr_in6 *)p->ifa_netmask)->sin6_addr.s6_addr;
        int bits = 0;
        bool inside = true;
        for (int i = 0; i < 16; i++) {
            bits += __builtin_popcount(m[i]);
            inside &= (a[i] & m[i]) == (vip->s6_addr[i] & m[i]);
        }
        if (bits == 128 || IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)a))
            continue;
        if (inside)
            return 0;
        char n[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, n, sizeof(n));
        int w = snprintf(nets + used, sizeof(nets) - used, "%s%s/%d", used ? ", " : "", n, bits);
        if (w > 0 && (size_t)w < sizeof(nets) - used)
            used += (size_t)w;
    }
    inet_ntop(AF_INET6, vip, v, sizeof(v));
    snprintf(err, errsize,
             "vrrp.groups[%zu].vips: %s is outside %s's IPv6 prefixes (%s); clients on the "
             "segment could not reach it",
             gi, v, ifname, used ? nets : "it has none but link-local");
    return -EINVAL;
}

/* Every VIP must sit in a subnet of the interface: the clients on the segment ARP for
 * it there. A VIP elsewhere would be held and announced, and reach nobody. Checks the
 * groups given (at start-up the configured ones, on reload the new ones). */
int vrrpd_check_vips_on_segment(const char *ifname, const struct vrrpd_group_config *groups,
                                size_t n_groups, char *err, size_t errsize)
{
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0)
        return 0; /* cannot tell; do not refuse */
    char nets[256] = "";
    size_t used = 0;
    int rc = 0;
    for (size_t gi = 0; gi < n_groups && rc == 0; gi++) {
        for (size_t vi = 0; vi < groups[gi].n_vips && rc == 0; vi++) {
            uint32_t vip = groups[gi].vips[vi];
            bool inside = false;
            used = 0;
            nets[0] = '\0';
            for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
                if (!p->ifa_addr || !p->ifa_netmask || p->ifa_addr->sa_family != AF_INET ||
                    strcmp(p->ifa_name, ifname) != 0)
                    continue;
                uint32_t ip = ntohl(((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr);
                uint32_t mask = ntohl(((struct sockaddr_in *)p->ifa_netmask)->sin_addr.s_addr);
                if (mask == 0xffffffffu)
                    continue; /* a /32 (a VIP left behind) says nothing about the segment */
                if ((ip & mask) == (vip & mask))
                    inside = true;
                char a[16];
                int w = snprintf(nets + used, sizeof(nets) - used, "%s%s/%d", used ? ", " : "",
                                 format_ip4(ip & mask, a, sizeof(a)), __builtin_popcount(mask));
                if (w > 0 && (size_t)w < sizeof(nets) - used)
                    used += (size_t)w;
            }
            if (!inside && used > 0) {
                char v[16];
                snprintf(err, errsize,
                         "vrrp.groups[%zu].vips[%zu]: %s is outside %s's subnets (%s); "
                         "clients on the segment could not reach it",
                         gi, vi, format_ip4(vip, v, sizeof(v)), ifname, nets);
                rc = -EINVAL;
            }
        }
    }
    for (size_t gi = 0; gi < n_groups && rc == 0; gi++)
        for (size_t vi = 0; vi < groups[gi].n_vips6 && rc == 0; vi++)
            rc = check_vip6(ifa, ifname, gi, &groups[gi].vips6[vi], err, errsize);
    freeifaddrs(ifa);
    return rc;
}

void vrrpd_garp_start(struct vrrpd_group *g)
{
    g->garp_left = g->d->cfg.garp_repeat;
    garp_round(&g->garp_timer);
}
