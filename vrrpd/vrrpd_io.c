/* vrrpd_io.c -- advertisements on the wire: the raw sockets (opened bound to the
 * interface, TTL 255, the multicast group joined), sending a group's advertisement to
 * the group address or each unicast peer, and receiving: every packet is checked
 * (RFC 5798 7.1: the packet checks are in vrrp_packet.c; here a packet is also dropped
 * when it is our own, its VRID is not ours, it does not come from a configured unicast
 * peer, or, not from an address owner, its addresses differ from the group's VIPs),
 * counted by reason, and handed to its group's state machine. */
#include "vrrpd_int.h"

#include "log.h"
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* ---- sending ---- */

void vrrpd_send_adv(struct vrrpd_group *g, uint8_t priority)
{
    struct vrrpd *d = g->d;
    struct vrrp_adv a = {.vrid = (uint8_t)g->cfg.vrid,
                         .priority = priority,
                         .max_adv_cs = (uint16_t)(g->cfg.interval_ms / 10),
                         .naddrs = (uint8_t)g->cfg.n_vips};
    memcpy(a.addrs, g->cfg.vips, sizeof(uint32_t) * g->cfg.n_vips);
    uint8_t buf[VRRP_HDR_LEN + 4 * VRRP_MAX_ADDRS];
    size_t ndst = d->cfg.n_peers ? d->cfg.n_peers : 1;
    for (size_t i = 0; i < ndst; i++) {
        uint32_t dst = d->cfg.n_peers ? d->cfg.peers[i] : VRRP_MCAST_V4;
        size_t len = vrrp_packet_build(buf, sizeof(buf), &a, d->primary, dst);
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(dst)};
        if (sendto(d->tx_fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
            g->tx_errors++;
            if (g->tx_errors == 1 || g->tx_errors % 100 == 0)
                log_emit(LOG_WARN, "send_failed", "vrid=%u error=\"%s\" count=%llu", g->cfg.vrid,
                         strerror(errno), (unsigned long long)g->tx_errors);
        } else {
            g->tx_adverts++;
        }
    }
}

/* ---- receiving ---- */

static void drop(struct vrrpd *d, int reason, uint32_t src, const char *detail)
{
    d->rx_drops[reason]++;
    if (reason == VRRPD_DROP_OWN || reason == VRRPD_DROP_UNKNOWN_VRID)
        return; /* normal on a shared segment; counted, not logged */
    if (!vrrpd_once_a_second(&d->last_drop_log_ms))
        return;
    char ip[16], q[160];
    log_emit(LOG_WARN, "packet_dropped", "reason=%s src=%s detail=%s count=%llu",
             vrrpd_drop_names[reason], src ? format_ip4(src, ip, sizeof(ip)) : "-",
             log_quote(q, sizeof(q), detail), (unsigned long long)d->rx_drops[reason]);
}

static bool same_vips(const struct vrrpd_group *g, const struct vrrp_adv *a)
{
    if (a->naddrs != g->cfg.n_vips)
        return false;
    for (size_t i = 0; i < a->naddrs; i++) {
        bool found = false;
        for (size_t j = 0; j < g->cfg.n_vips && !found; j++)
            found = a->addrs[i] == g->cfg.vips[j];
        if (!found)
            return false;
    }
    return true;
}

static void handle_packet(struct vrrpd *d, const uint8_t *pkt, size_t len)
{
    struct vrrp_adv a;
    uint32_t src = 0, dst = 0;
    char why[128];
    enum vrrp_parse_result r = vrrp_packet_parse(pkt, len, &a, &src, &dst, why, sizeof(why));
    if (r != VRRP_OK) {
        drop(d, (int)r, src, why);
        return;
    }
    if (src == d->primary) {
        drop(d, VRRPD_DROP_OWN, src, "our own advertisement");
        return;
    }
    struct vrrpd_group *g = NULL;
    for (size_t i = 0; i < d->n_groups && g == NULL; i++)
        if (d->groups[i].cfg.vrid == a.vrid)
            g = &d->groups[i];
    if (g == NULL) {
        drop(d, VRRPD_DROP_UNKNOWN_VRID, src, "VRID not configured here");
        return;
    }
    if (d->cfg.n_peers) {
        bool known = false;
        for (size_t i = 0; i < d->cfg.n_peers; i++)
            known |= d->cfg.peers[i] == src;
        if (!known) {
            snprintf(why, sizeof(why), "vrid %u from an address that is not a configured peer",
                     a.vrid);
            drop(d, VRRPD_DROP_NOT_PEER, src, why);
            return;
        }
    }
    if (a.priority != 255 && !same_vips(g, &a)) {
        snprintf(why, sizeof(why), "vrid %u advertises other addresses than ours", a.vrid);
        drop(d, VRRPD_DROP_ADDR_MISMATCH, src, why);
        return;
    }
    g->rx_adverts++;
    g->last_rx_ms = clock_mono_ms();
    if (d->cfg.track_lbd[0]) {
        /* lbd's status page shows the last advert's age as of its request: the state file
         * is a snapshot up to 500 ms old. */
        char line[48];
        snprintf(line, sizeof(line), "advert %u %llu\n", g->cfg.vrid,
                 (unsigned long long)clock_wall_ms());
        track_send(&d->track, line);
    }
    peerwatch_heard(&d->watch, src, uv_now(d->loop));
    struct vrrp_out o;
    vrrp_fsm_recv(&g->fsm, clock_mono_ms(), &a, src, &o);
    vrrpd_apply(g, &o);
}

void vrrpd_rx_drain(struct vrrpd *d)
{
    uint8_t buf[2048];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(d->rx_fd, buf, sizeof(buf), 0);
        if (n < 0)
            return;
        handle_packet(d, buf, (size_t)n);
    }
}

/* ---- sockets ---- */

int vrrpd_join_group(struct vrrpd *d)
{
    if (d->cfg.n_peers || d->joined)
        return 0;
    struct ip_mreqn mreq = {.imr_multiaddr.s_addr = htonl(VRRP_MCAST_V4),
                            .imr_address.s_addr = htonl(d->primary),
                            .imr_ifindex = d->ifindex};
    if (setsockopt(d->rx_fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) != 0 &&
        errno != EADDRINUSE) {
        log_emit(LOG_WARN, "multicast_join_failed", "interface=%s error=\"%s\"", d->cfg.interface,
                 strerror(errno));
        return -errno;
    }
    d->joined = true;
    return 0;
}

static void on_rx(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    vrrpd_rx_drain(p->data);
}

int vrrpd_open_sockets(struct vrrpd *d)
{
    int one = 1, zero = 0, ttl = 255;
    d->rx_fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, VRRP_PROTO);
    d->tx_fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, VRRP_PROTO);
    if (d->rx_fd < 0 || d->tx_fd < 0)
        return -errno;
    size_t il = strlen(d->cfg.interface);
    if (setsockopt(d->rx_fd, SOL_SOCKET, SO_BINDTODEVICE, d->cfg.interface, (socklen_t)il) ||
        setsockopt(d->tx_fd, SOL_SOCKET, SO_BINDTODEVICE, d->cfg.interface, (socklen_t)il))
        return -errno;
    /* The sending socket: source = our primary address, TTL 255 (7.1), no loopback. */
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(d->primary)};
    if (bind(d->tx_fd, (struct sockaddr *)&src, sizeof(src)) != 0)
        return -errno;
    struct ip_mreqn mif = {.imr_address.s_addr = htonl(d->primary), .imr_ifindex = d->ifindex};
    setsockopt(d->tx_fd, IPPROTO_IP, IP_MULTICAST_IF, &mif, sizeof(mif));
    setsockopt(d->tx_fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl));
    setsockopt(d->tx_fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
    setsockopt(d->tx_fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof(zero));
    int small = 1024;
    setsockopt(d->tx_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)); /* never read */
    (void)one;
    vrrpd_join_group(d);
    uv_poll_init(d->loop, &d->rx_poll, d->rx_fd);
    d->rx_poll.data = d;
    uv_poll_start(&d->rx_poll, UV_READABLE, on_rx);
    d->rx_polling = true;
    return 0;
}
