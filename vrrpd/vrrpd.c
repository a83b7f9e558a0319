/* vrrpd.c -- the vrrpd daemon: raw-socket advertisement I/O, one state machine per
 * group (vrrp_fsm.c), the actions it asks for (vip.c, garp.c), tracked objects (link
 * state, the local lbd via track.c), the transition log, notify hook and state file.
 *
 * Receive checks (RFC 5798 7.1): the packet checks are in vrrp_packet.c; here a packet
 * is also dropped when it is our own, its VRID is not ours, it does not come from a
 * configured unicast peer, or (not from an address owner) its addresses differ from
 * the group's VIPs. Every drop is counted by reason. */
#include "vrrpd.h"

#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "sdnotify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

const char *const vrrpd_drop_names[] = {
    "ok", "truncated", "not_vrrp", "ttl", "version", "type", "length", "count", "interval",
    "checksum", "own", "unknown_vrid", "not_peer", "addr_mismatch",
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static const char *ip4(uint32_t ip, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
    return buf;
}

static void vip_list(const struct vrrpd_group *g, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < g->cfg.n_vips; i++) {
        char ip[16];
        int w = snprintf(buf + used, size - used, "%s%s", i ? "," : "",
                         ip4(g->cfg.vips[i], ip, sizeof(ip)));
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
}

/* ---- sending ---- */

static void send_adv(struct vrrpd_group *g, uint8_t priority)
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

/* ---- VIPs and gratuitous ARP ---- */

static void vips_set(struct vrrpd_group *g, bool add)
{
    if (g->d->closed)
        return;
    for (size_t i = 0; i < g->cfg.n_vips; i++) {
        int rc = add ? vip_add(&g->d->vip, g->cfg.vips[i]) : vip_del(&g->d->vip, g->cfg.vips[i]);
        if (rc != 0) {
            char ip[16];
            log_emit(LOG_ERROR, add ? "vip_add_failed" : "vip_del_failed",
                     "vrid=%u vip=%s error=\"%s\" hint=\"vrrpd needs CAP_NET_ADMIN\"", g->cfg.vrid,
                     ip4(g->cfg.vips[i], ip, sizeof(ip)), vip_strerror(rc));
        }
    }
    g->vips_held = add;
}

static void garp_round(uv_timer_t *t)
{
    struct vrrpd_group *g = t->data;
    if (g->fsm.state != VRRP_MASTER || g->garp_left == 0)
        return;
    for (size_t i = 0; i < g->cfg.n_vips; i++) {
        int rc = garp_send(&g->d->garp, g->cfg.vips[i]);
        if (rc == 0) {
            g->garps_sent++;
            continue;
        }
        g->garp_errors++;
        if (g->garp_errors == 1 || g->garp_errors % 100 == 0) {
            char ip[16];
            log_emit(LOG_WARN, "garp_failed", "vrid=%u vip=%s error=\"%s\" count=%llu",
                     g->cfg.vrid, ip4(g->cfg.vips[i], ip, sizeof(ip)), strerror(-rc),
                     (unsigned long long)g->garp_errors);
        }
    }
    if (--g->garp_left > 0)
        uv_timer_start(&g->garp_timer, garp_round, g->d->cfg.garp_interval_ms, 0);
}

/* ---- transitions ---- */

static void append_line(int fd, const char *line)
{
    if (fd >= 0 && write(fd, line, strlen(line)) < 0) {
        /* the log line on stderr still says it */
    }
}

static void notify_exited(uv_process_t *p, int64_t status, int signal)
{
    if (status != 0 || signal != 0)
        log_emit(LOG_WARN, "notify_exit", "status=%lld signal=%d", (long long)status, signal);
    uv_close((uv_handle_t *)p, (uv_close_cb)free);
}

/* Run the notify hook: sh -c "$notify" notify STATE VRID INSTANCE, with VRRP_* set. */
static void run_notify(struct vrrpd_group *g, const struct vrrp_out *o)
{
    struct vrrpd *d = g->d;
    if (d->cfg.notify[0] == '\0')
        return;
    char vrid[8], env_state[32], env_vrid[32], env_inst[96], env_from[32];
    snprintf(vrid, sizeof(vrid), "%u", g->cfg.vrid);
    snprintf(env_state, sizeof(env_state), "VRRP_STATE=%s", vrrp_state_names[o->to]);
    snprintf(env_from, sizeof(env_from), "VRRP_FROM=%s", vrrp_state_names[o->from]);
    snprintf(env_vrid, sizeof(env_vrid), "VRRP_VRID=%u", g->cfg.vrid);
    snprintf(env_inst, sizeof(env_inst), "VRRP_INSTANCE=%s", d->cfg.instance);
    char *args[] = {"/bin/sh", "-c", d->cfg.notify, "notify", (char *)vrrp_state_names[o->to],
                    vrid, d->cfg.instance, NULL};
    char *env[] = {env_state, env_from, env_vrid, env_inst, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                   NULL};
    uv_process_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    uv_process_options_t opt = {.file = "/bin/sh", .args = args, .env = env,
                                .exit_cb = notify_exited};
    int rc = uv_spawn(d->loop, p, &opt);
    if (rc != 0) {
        log_emit(LOG_WARN, "notify_failed", "vrid=%u error=\"%s\"", g->cfg.vrid, uv_strerror(rc));
        uv_close((uv_handle_t *)p, (uv_close_cb)free);
        return;
    }
    uv_unref((uv_handle_t *)p); /* a slow hook never holds up shutdown */
}

static void log_transition(struct vrrpd_group *g, const struct vrrp_out *o, unsigned actions,
                           bool held_before)
{
    struct vrrpd *d = g->d;
    char reason[256], vips[512], line[1024], ts[40];
    vip_list(g, vips, sizeof(vips));
    log_quote(reason, sizeof(reason), o->reason);
    const char *vipkey = (actions & VRRP_ACT_ADD_VIPS) && !held_before ? " vips_added="
                         : (actions & VRRP_ACT_DEL_VIPS) && held_before ? " vips_removed="
                         : held_before && g->vips_held                  ? " vips_kept_until_handover="
                                                                        : "";
    const char *vipval = vipkey[0] ? vips : "";
    log_emit(o->to == VRRP_MASTER ? LOG_INFO : LOG_WARN, "transition",
             "vrid=%u from=%s to=%s priority=%u reason=%s%s%s", g->cfg.vrid,
             vrrp_state_names[o->from], vrrp_state_names[o->to], g->fsm.priority, reason, vipkey,
             vipval);
    uint64_t w = wall_ms();
    snprintf(line, sizeof(line),
             "ts=%s instance=%s event=transition vrid=%u from=%s to=%s priority=%u reason=%s%s%s\n",
             log_format_ts(w, ts, sizeof(ts)), d->cfg.instance, g->cfg.vrid,
             vrrp_state_names[o->from], vrrp_state_names[o->to], g->fsm.priority, reason, vipkey,
             vipval);
    append_line(d->transitions_fd, line);
    struct vrrpd_history *h = &g->history[g->history_next % VRRPD_HISTORY];
    g->history_next++;
    h->wall_ms = w;
    h->from = o->from;
    h->to = o->to;
    snprintf(h->reason, sizeof(h->reason), "%s", o->reason);
    run_notify(g, o);
}

static void on_group_timer(uv_timer_t *t);
static void maybe_finish(struct vrrpd *d);

static void rearm(struct vrrpd_group *g)
{
    uint64_t due = vrrp_fsm_next_due(&g->fsm), now = now_ms();
    if (due == 0 || g->d->closed)
        uv_timer_stop(&g->timer);
    else
        uv_timer_start(&g->timer, on_group_timer, due > now ? due - now : 0, 0);
}

/* The peer watch follows the masters our BACKUP groups follow. */
static void watch_sync(struct vrrpd *d)
{
    uint32_t ips[PEERWATCH_MAX_LINKS];
    size_t n = 0;
    if (!d->cfg.peer_watch_port)
        return;
    for (size_t i = 0; i < d->n_groups && !d->stopping; i++) {
        const struct vrrp_fsm *f = &d->groups[i].fsm;
        bool seen = false;
        if (f->state != VRRP_BACKUP || f->master_ip == 0 || f->master_ip == d->primary)
            continue;
        for (size_t j = 0; j < n; j++)
            seen |= ips[j] == f->master_ip;
        if (!seen && n < PEERWATCH_MAX_LINKS)
            ips[n++] = f->master_ip;
    }
    peerwatch_want(&d->watch, ips, n);
}

/* The master's vrrpd ended (peerwatch.h): every group following it takes over after
 * the skew time, as if it had resigned. */
static void on_peer_gone(void *arg, uint32_t ip, const char *why)
{
    struct vrrpd *d = arg;
    char ips[16], q[128];
    uint64_t now = now_ms();
    log_emit(LOG_WARN, "peer_gone", "peer=%s reason=%s", ip4(ip, ips, sizeof(ips)),
             log_quote(q, sizeof(q), why));
    for (size_t i = 0; i < d->n_groups; i++) {
        vrrp_fsm_peer_gone(&d->groups[i].fsm, now, ip);
        rearm(&d->groups[i]);
    }
}

/* Perform what the state machine asked for, in the order that keeps the segment
 * consistent: resign before dropping addresses, hold addresses before advertising. */
static void apply(struct vrrpd_group *g, const struct vrrp_out *o)
{
    unsigned a = o->actions;
    bool held_before = g->vips_held;
    if (a & VRRP_ACT_SEND_ADV_ZERO)
        send_adv(g, 0);
    if (a & VRRP_ACT_DEL_VIPS)
        vips_set(g, false);
    if (a & VRRP_ACT_ADD_VIPS)
        vips_set(g, true);
    if (a & VRRP_ACT_SEND_ADV)
        send_adv(g, g->fsm.priority);
    if (a & VRRP_ACT_GARP) {
        g->garp_left = g->d->cfg.garp_repeat;
        garp_round(&g->garp_timer);
    }
    if (a & VRRP_ACT_TRANSITION) {
        log_transition(g, o, a, held_before);
        vrrpd_write_state(g->d);
    }
    if (a & VRRP_ACT_HANDOVER_DONE) {
        char vips[512], q[200];
        vip_list(g, vips, sizeof(vips));
        log_emit(LOG_INFO, "handover", "vrid=%u reason=%s vips_removed=%s", g->cfg.vrid,
                 log_quote(q, sizeof(q), o->reason), vips);
    }
    rearm(g);
    /* Only a new state or a new master changes whom the peer watch follows; an
     * advert tick does not. */
    if ((a & VRRP_ACT_TRANSITION) || g->fsm.master_ip != g->watched_master) {
        g->watched_master = g->fsm.master_ip;
        watch_sync(g->d);
    }
    maybe_finish(g->d);
}

static void on_rx(uv_poll_t *p, int status, int events);

static void on_group_timer(uv_timer_t *t)
{
    struct vrrpd_group *g = t->data;
    /* libuv runs timers before it polls for I/O: after a stall of vrrpd (CPU starvation,
     * SIGSTOP, a debugger) an advertisement may be waiting that makes this master-down
     * timeout stale. Read what has arrived first; the state machine then acts only on
     * what is still due. A master's advert ticks need no such read. */
    if (g->fsm.state == VRRP_BACKUP && g->d->rx_polling)
        on_rx(&g->d->rx_poll, 0, UV_READABLE);
    struct vrrp_out o;
    vrrp_fsm_timer(&g->fsm, now_ms(), &o);
    apply(g, &o);
}

/* ---- receiving ---- */

static void drop(struct vrrpd *d, int reason, uint32_t src, const char *detail)
{
    d->rx_drops[reason]++;
    uint64_t now = now_ms();
    if (reason == VRRPD_DROP_OWN || reason == VRRPD_DROP_UNKNOWN_VRID)
        return; /* normal on a shared segment; counted, not logged */
    if (now - d->last_drop_log_ms < 1000)
        return; /* at most one line a second; the counters have the rest */
    d->last_drop_log_ms = now;
    char ip[16], q[160];
    log_emit(LOG_WARN, "packet_dropped", "reason=%s src=%s detail=%s count=%llu",
             vrrpd_drop_names[reason], src ? ip4(src, ip, sizeof(ip)) : "-",
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
    g->last_rx_ms = now_ms();
    struct vrrp_out o;
    vrrp_fsm_recv(&g->fsm, now_ms(), &a, src, &o);
    apply(g, &o);
}

static void on_rx(uv_poll_t *p, int status, int events)
{
    struct vrrpd *d = p->data;
    uint8_t buf[2048];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(d->rx_fd, buf, sizeof(buf), 0);
        if (n < 0)
            return;
        handle_packet(d, buf, (size_t)n);
    }
}

/* ---- tracked objects ---- */

static void reevaluate(struct vrrpd *d, const char *what)
{
    char why[160] = "";
    bool fault = false, graceful = false;
    if (d->cfg.track_link && !d->link_up) {
        fault = true;
        snprintf(why, sizeof(why), "link %s down", d->cfg.interface);
    } else if (d->cfg.track_lbd[0] && d->cfg.track_lbd_action == VRRPD_TRACK_FAULT && !d->lbd_ok) {
        fault = true;
        /* Keep the VIPs until the new master speaks, whether lbd drains (it still
         * serves) or died (a SYN then meets an immediate RST here instead of vanishing
         * toward a host without the address until TCP retransmits a second later). */
        graceful = true;
        snprintf(why, sizeof(why), "%s", d->lbd_why);
    }
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        struct vrrp_out o;
        vrrp_fsm_set_fault(&g->fsm, now_ms(), fault, graceful, fault ? why : what, &o);
        apply(g, &o);
        int prio = (int)g->cfg.priority;
        if (d->cfg.track_lbd[0] && d->cfg.track_lbd_action == VRRPD_TRACK_WEIGHT && !d->lbd_ok)
            prio -= (int)d->cfg.track_lbd_weight;
        if (prio < 1)
            prio = 1;
        if (prio == 255 && (int)g->cfg.priority != 255)
            prio = 254;
        vrrp_fsm_set_priority(&g->fsm, now_ms(), (uint8_t)prio, &o);
        apply(g, &o);
    }
    vrrpd_write_state(d);
}

static void on_link(void *arg, bool up)
{
    struct vrrpd *d = arg;
    char what[64];
    d->link_up = up;
    snprintf(what, sizeof(what), "link %s up", d->cfg.interface);
    log_emit(up ? LOG_INFO : LOG_WARN, "link", "interface=%s state=%s", d->cfg.interface,
             up ? "up" : "down");
    if (up)
        vrrpd_join_group(d);
    reevaluate(d, what);
}

static void on_lbd(void *arg, bool ok, const char *why)
{
    struct vrrpd *d = arg;
    char q[160];
    d->lbd_ok = ok;
    snprintf(d->lbd_why, sizeof(d->lbd_why), "%s", why);
    log_emit(ok ? LOG_INFO : LOG_WARN, "track", "object=lbd state=%s reason=%s",
             ok ? "up" : "down", log_quote(q, sizeof(q), why));
    reevaluate(d, why);
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

static int open_sockets(struct vrrpd *d)
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

/* The interface's first IPv4 address that is not one of our VIPs. */
static uint32_t find_primary(struct vrrpd *d, bool *stale)
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

/* Every VIP must sit in a subnet of the interface: the clients on the segment ARP for
 * it there. A VIP elsewhere would be held and announced, and reach nobody. Checks the
 * groups given (at start-up the configured ones, on reload the new ones). */
static int check_vips_on_segment(const char *ifname, const struct vrrpd_group_config *groups,
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
                                 ip4(ip & mask, a, sizeof(a)), __builtin_popcount(mask));
                if (w > 0 && (size_t)w < sizeof(nets) - used)
                    used += (size_t)w;
            }
            if (!inside && used > 0) {
                char v[16];
                snprintf(err, errsize,
                         "vrrp.groups[%zu].vips[%zu]: %s is outside %s's subnets (%s); "
                         "clients on the segment could not reach it",
                         gi, vi, ip4(vip, v, sizeof(v)), ifname, nets);
                rc = -EINVAL;
            }
        }
    }
    freeifaddrs(ifa);
    return rc;
}

/* ---- state file ---- */

void vrrpd_render_state(struct vrrpd *d, struct metrics_buf *m)
{
    char ts[40], ip[16];
    uint64_t now = now_ms();
    metrics_printf(m, "{\"daemon\":\"vrrpd\",\"instance\":");
    metrics_json_str(m, d->cfg.instance);
    metrics_printf(m, ",\"pid\":%d,\"updated\":\"%s\",\"updated_ms\":%llu", (int)getpid(),
                   log_format_ts(wall_ms(), ts, sizeof(ts)), (unsigned long long)wall_ms());
    metrics_printf(m, ",\"running\":%s,\"interface\":", d->stopping ? "false" : "true");
    metrics_json_str(m, d->cfg.interface);
    metrics_printf(m, ",\"address\":\"%s\",\"link_up\":%s", ip4(d->primary, ip, sizeof(ip)),
                   d->link_up ? "true" : "false");
    if (d->cfg.track_lbd[0]) {
        metrics_printf(m, ",\"lbd\":{\"ok\":%s,\"reason\":", d->lbd_ok ? "true" : "false");
        metrics_json_str(m, d->lbd_why);
        metrics_printf(m, "}");
    }
    metrics_printf(m, ",\"reloads\":%llu", (unsigned long long)d->reload.reloads);
    reload_json(m, &d->reload);
    metrics_printf(m, ",\"mode\":\"%s\",\"groups\":[", d->cfg.n_peers ? "unicast" : "multicast");
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        char vips[512];
        vip_list(g, vips, sizeof(vips));
        metrics_printf(m,
                       "%s{\"vrid\":%u,\"state\":\"%s\",\"priority\":%u,\"configured_priority\":%u,"
                       "\"interval_ms\":%llu,\"preempt\":%s,\"vips\":\"%s\",\"holds_vips\":%s",
                       i ? "," : "", g->cfg.vrid, vrrp_state_names[g->fsm.state], g->fsm.priority,
                       g->cfg.priority, (unsigned long long)g->cfg.interval_ms,
                       g->cfg.preempt ? "true" : "false", vips, g->vips_held ? "true" : "false");
        metrics_printf(m, ",\"master\":\"%s\"",
                       g->fsm.master_ip ? ip4(g->fsm.master_ip, ip, sizeof(ip)) : "");
        metrics_printf(m, ",\"master_watched\":%s",
                       d->cfg.peer_watch_port && g->fsm.state == VRRP_BACKUP &&
                               peerwatch_is_armed(&d->watch, g->fsm.master_ip)
                           ? "true"
                           : "false");
        metrics_printf(m, ",\"last_advert_ms_ago\":%lld",
                       g->last_rx_ms ? (long long)(now - g->last_rx_ms) : -1LL);
        metrics_printf(m, ",\"master_down_ms\":%llu,\"adverts_sent\":%llu,\"adverts_received\":%llu",
                       (unsigned long long)vrrp_fsm_master_down_ms(&g->fsm),
                       (unsigned long long)g->tx_adverts, (unsigned long long)g->rx_adverts);
        metrics_printf(m, ",\"garps_sent\":%llu,\"garp_errors\":%llu",
                       (unsigned long long)g->garps_sent, (unsigned long long)g->garp_errors);
        metrics_printf(m, ",\"transitions\":[");
        size_t n = g->history_next < VRRPD_HISTORY ? g->history_next : VRRPD_HISTORY;
        for (size_t k = 0; k < n; k++) {
            const struct vrrpd_history *h = &g->history[(g->history_next - 1 - k) % VRRPD_HISTORY];
            metrics_printf(m, "%s{\"ts\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"reason\":",
                           k ? "," : "", log_format_ts(h->wall_ms, ts, sizeof(ts)),
                           vrrp_state_names[h->from], vrrp_state_names[h->to]);
            metrics_json_str(m, h->reason);
            metrics_printf(m, "}");
        }
        metrics_printf(m, "]}");
    }
    metrics_printf(m, "],\"dropped\":{");
    for (int r = 1; r < VRRPD_DROP__COUNT; r++)
        metrics_printf(m, "%s\"%s\":%llu", r > 1 ? "," : "", vrrpd_drop_names[r],
                       (unsigned long long)d->rx_drops[r]);
    metrics_printf(m, "}}\n");
}

void vrrpd_write_state(struct vrrpd *d)
{
    if (d->cfg.state_file[0] == '\0')
        return;
    struct metrics_buf m;
    char tmp[300];
    metrics_init(&m);
    vrrpd_render_state(d, &m);
    snprintf(tmp, sizeof(tmp), "%s.tmp", d->cfg.state_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    static int last_errno; /* say it once per cause, not twice a second */
    if (fd < 0 && errno != last_errno)
        log_emit(LOG_ERROR, "state_file_failed",
                 "path=%s error=\"%s\" detail=\"vrrpd --status and the status page go stale\"",
                 tmp, strerror(errno));
    last_errno = fd < 0 ? errno : 0;
    if (fd >= 0 && !m.failed) {
        ssize_t w = write(fd, m.data, m.len);
        close(fd);
        if (w == (ssize_t)m.len)
            rename(tmp, d->cfg.state_file);
    } else if (fd >= 0) {
        close(fd);
    }
    metrics_free(&m);
}

/* ---- the admin endpoint: /metrics (Prometheus) and /status (the state file's JSON) ---- */

void vrrpd_render_metrics(struct vrrpd *d, struct metrics_buf *m)
{
    char vrid[8];
    uint64_t now = now_ms();
    metrics_family(m, "vrrpd_up", METRICS_GAUGE, "1 while vrrpd runs.");
    metrics_sample(m, NULL, 1);
    metrics_family(m, "vrrpd_start_time_seconds", METRICS_GAUGE, "Start time, Unix seconds.");
    metrics_sample(m, NULL, (double)d->started_wall_ms / 1000.0);
    metrics_family(m, "vrrpd_link_up", METRICS_GAUGE, "1 while the VRRP interface is up.");
    metrics_sample(m, NULL, d->link_up);
    reload_metrics(m, "vrrpd", &d->reload);
    if (d->cfg.track_lbd[0]) {
        metrics_family(m, "vrrpd_tracked_lbd_ok", METRICS_GAUGE,
                       "1 while the tracked lbd answers and serves.");
        metrics_sample(m, NULL, d->lbd_ok);
    }
    metrics_family(m, "vrrpd_group_state", METRICS_GAUGE,
                   "1 for the group's current state (INIT, BACKUP, MASTER, FAULT).");
    for (size_t i = 0; i < d->n_groups; i++) {
        snprintf(vrid, sizeof(vrid), "%u", d->groups[i].cfg.vrid);
        for (int st = 0; st < VRRP_STATE_COUNT; st++) {
            const char *l[] = {"vrid", vrid, "state", vrrp_state_names[st], NULL};
            metrics_sample(m, l, d->groups[i].fsm.state == (enum vrrp_state)st);
        }
    }
#define PER_GROUP(name, type, help, expr)                                                  \
    metrics_family(m, name, type, help);                                                   \
    for (size_t i = 0; i < d->n_groups; i++) {                                             \
        const struct vrrpd_group *g = &d->groups[i];                                       \
        snprintf(vrid, sizeof(vrid), "%u", g->cfg.vrid);                                   \
        const char *l[] = {"vrid", vrid, NULL};                                            \
        metrics_sample(m, l, (double)(expr));                                              \
    }
    PER_GROUP("vrrpd_group_master", METRICS_GAUGE, "1 while this instance is the group's master.",
              g->fsm.state == VRRP_MASTER)
    PER_GROUP("vrrpd_group_vips_held", METRICS_GAUGE, "1 while the group's VIPs are on the interface.",
              g->vips_held)
    PER_GROUP("vrrpd_group_priority", METRICS_GAUGE, "Effective priority (after tracking).",
              g->fsm.priority)
    PER_GROUP("vrrpd_group_configured_priority", METRICS_GAUGE, "Configured priority.",
              g->cfg.priority)
    PER_GROUP("vrrpd_group_advert_interval_seconds", METRICS_GAUGE, "Advertisement interval.",
              (double)g->cfg.interval_ms / 1000.0)
    PER_GROUP("vrrpd_group_adverts_sent_total", METRICS_COUNTER, "Advertisements sent.",
              g->tx_adverts)
    PER_GROUP("vrrpd_group_garps_sent_total", METRICS_COUNTER,
              "Gratuitous ARP announcements sent.", g->garps_sent)
    PER_GROUP("vrrpd_group_garp_errors_total", METRICS_COUNTER,
              "Gratuitous ARP announcements the kernel refused.", g->garp_errors)
    PER_GROUP("vrrpd_group_adverts_received_total", METRICS_COUNTER,
              "Valid advertisements received from another router.", g->rx_adverts)
    PER_GROUP("vrrpd_group_last_advert_age_seconds", METRICS_GAUGE,
              "Seconds since the last advertisement from another router (-1: never).",
              g->last_rx_ms ? (double)(now - g->last_rx_ms) / 1000.0 : -1.0)
    PER_GROUP("vrrpd_group_transitions_total", METRICS_COUNTER, "State transitions.",
              g->history_next)
#undef PER_GROUP
    metrics_family(m, "vrrpd_packets_dropped_total", METRICS_COUNTER,
                   "Received VRRP packets dropped, by reason.");
    for (int r = 1; r < VRRPD_DROP__COUNT; r++) {
        const char *l[] = {"reason", vrrpd_drop_names[r], NULL};
        metrics_sample(m, l, (double)d->rx_drops[r]);
    }
    if (d->cfg.peer_watch_port) {
        metrics_family(m, "vrrpd_peer_watch_links", METRICS_GAUGE,
                       "Masters followed whose vrrpd we watch over a live peer watch link.");
        metrics_sample(m, NULL, (double)peerwatch_armed(&d->watch));
        metrics_family(m, "vrrpd_peer_watch_watchers", METRICS_GAUGE,
                       "Backups watching this vrrpd over a peer watch link.");
        metrics_sample(m, NULL, (double)peerwatch_watchers(&d->watch));
        metrics_family(m, "vrrpd_peer_watch_gone_total", METRICS_COUNTER,
                       "Times a watched master's vrrpd ended (its link closed).");
        metrics_sample(m, NULL, (double)d->watch.gone_total);
    }
    metrics_family(m, "vrrpd_admin_rejected_total", METRICS_COUNTER,
                   "Admin connections closed unserved (too many at once).");
    metrics_sample(m, NULL, (double)d->admin.rejected);
}

static void admin_handle(void *ctx, const char *path, const char *query, struct httpd_reply *r)
{
    (void)query;
    struct vrrpd *d = ctx;
    if (strcmp(path, "/metrics") == 0) {
        r->ctype = "text/plain; version=0.0.4; charset=utf-8";
        vrrpd_render_metrics(d, &r->body);
    } else if (strcmp(path, "/status") == 0) {
        r->ctype = "application/json";
        vrrpd_render_state(d, &r->body);
    } else if (strcmp(path, "/health") == 0) {
        httpd_text(r, 200, "ok\n");
    } else {
        httpd_text(r, 404, "not found: try /metrics, /status or /health\n");
    }
}

static void on_status_timer(uv_timer_t *t)
{
    vrrpd_write_state(t->data);
}

/* ---- lifecycle ---- */

static void close_all(struct vrrpd *d)
{
    for (size_t i = 0; i < d->n_groups; i++) {
        uv_close((uv_handle_t *)&d->groups[i].timer, NULL);
        uv_close((uv_handle_t *)&d->groups[i].garp_timer, NULL);
    }
    if (d->rx_polling)
        uv_close((uv_handle_t *)&d->rx_poll, NULL);
    d->rx_polling = false;
    uv_close((uv_handle_t *)&d->status_timer, NULL);
    httpd_stop(&d->admin);
    peerwatch_stop(&d->watch);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    track_stop(&d->track);
    vip_close(&d->vip);
}

/* ---- reload (SIGHUP) ----
 * Live: per group (matched by VRID) the priority, interval, preemption and VIPs; the
 * unicast peer list; tracking weights; notify, gratuitous ARP and log settings. On
 * restart only: the interface and address, the sockets (peer watch, admin, files),
 * multicast <-> unicast, what is tracked, real-time mode, and groups added or removed.
 * A file that does not load, or new VIPs outside the segment, leave everything as it
 * was. */

static bool vip_in(const struct vrrpd_group_config *g, uint32_t ip)
{
    for (size_t i = 0; i < g->n_vips; i++)
        if (g->vips[i] == ip)
            return true;
    return false;
}

static bool vips_same(const struct vrrpd_group_config *a, const struct vrrpd_group_config *b)
{
    if (a->n_vips != b->n_vips)
        return false;
    for (size_t i = 0; i < a->n_vips; i++)
        if (!vip_in(b, a->vips[i]))
            return false;
    return true;
}

/* Append ", what" to a list in buf. */
static void note(char *buf, size_t size, const char *what)
{
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? ", " : "", what);
}

/* Move a held group's addresses to the new list: add before removing, so a VIP that
 * stays is never missing, and announce the new ones. */
static void vips_move(struct vrrpd_group *g, const struct vrrpd_group_config *nc)
{
    struct vrrpd *d = g->d;
    char ip[16];
    for (size_t i = 0; i < nc->n_vips; i++) {
        if (vip_in(&g->cfg, nc->vips[i]))
            continue;
        int rc = vip_add(&d->vip, nc->vips[i]);
        if (rc != 0)
            log_emit(LOG_ERROR, "vip_add_failed", "vrid=%u vip=%s error=\"%s\"", g->cfg.vrid,
                     ip4(nc->vips[i], ip, sizeof(ip)), vip_strerror(rc));
    }
    for (size_t i = 0; i < g->cfg.n_vips; i++) {
        if (vip_in(nc, g->cfg.vips[i]))
            continue;
        int rc = vip_del(&d->vip, g->cfg.vips[i]);
        if (rc != 0)
            log_emit(LOG_ERROR, "vip_del_failed", "vrid=%u vip=%s error=\"%s\"", g->cfg.vrid,
                     ip4(g->cfg.vips[i], ip, sizeof(ip)), vip_strerror(rc));
    }
}

static void reload_config(struct vrrpd *d)
{
    static struct vrrpd_config nc; /* large; one reload at a time */
    char err[1024], restart[512] = "", changed[768] = "", what[160];
    if (vrrpd_config_load(d->config_path, &nc, err, sizeof(err)) != 0) {
        reload_failed(&d->reload, err);
        return;
    }
    if (check_vips_on_segment(d->cfg.interface, nc.groups, nc.n_groups, err, sizeof(err)) != 0) {
        reload_failed(&d->reload, err);
        return;
    }
    /* What only a restart can change: noted, and the running value kept. */
    if (strcmp(nc.interface, d->cfg.interface) != 0)
        note(restart, sizeof(restart), "interface");
    if (nc.address != d->cfg.address)
        note(restart, sizeof(restart), "address");
    if ((nc.n_peers == 0) != (d->cfg.n_peers == 0))
        note(restart, sizeof(restart), "multicast/unicast");
    if (nc.peer_watch_port != d->cfg.peer_watch_port)
        note(restart, sizeof(restart), "peer_watch");
    if (nc.admin_enabled != d->cfg.admin_enabled ||
        (nc.admin_enabled && !sockaddr_equal((struct sockaddr *)&nc.admin,
                                             (struct sockaddr *)&d->cfg.admin)))
        note(restart, sizeof(restart), "admin");
    if (strcmp(nc.state_file, d->cfg.state_file) != 0 ||
        strcmp(nc.transitions_file, d->cfg.transitions_file) != 0 ||
        strcmp(nc.log_file, d->cfg.log_file) != 0)
        note(restart, sizeof(restart), "files");
    if (nc.track_link != d->cfg.track_link || strcmp(nc.track_lbd, d->cfg.track_lbd) != 0 ||
        nc.track_lbd_interval_ms != d->cfg.track_lbd_interval_ms ||
        nc.track_lbd_timeout_ms != d->cfg.track_lbd_timeout_ms)
        note(restart, sizeof(restart), "what is tracked");
    if (nc.realtime != d->cfg.realtime)
        note(restart, sizeof(restart), "realtime");
    for (size_t j = 0; j < nc.n_groups; j++) {
        bool running = false;
        for (size_t i = 0; i < d->n_groups; i++)
            running |= d->groups[i].cfg.vrid == nc.groups[j].vrid;
        if (!running) {
            snprintf(what, sizeof(what), "vrid %u added", nc.groups[j].vrid);
            note(restart, sizeof(restart), what);
        }
    }
    /* The live part. */
    d->cfg.log_level = nc.log_level;
    log_set_level((enum log_level)nc.log_level);
    memcpy(d->cfg.notify, nc.notify, sizeof(d->cfg.notify));
    d->cfg.garp_repeat = nc.garp_repeat;
    d->cfg.garp_interval_ms = nc.garp_interval_ms;
    d->cfg.track_lbd_action = nc.track_lbd_action;
    d->cfg.track_lbd_weight = nc.track_lbd_weight;
    if ((nc.n_peers == 0) == (d->cfg.n_peers == 0)) {
        bool same = nc.n_peers == d->cfg.n_peers &&
                    memcmp(nc.peers, d->cfg.peers, sizeof(uint32_t) * nc.n_peers) == 0;
        if (!same)
            note(changed, sizeof(changed), "unicast peers");
        memcpy(d->cfg.peers, nc.peers, sizeof(d->cfg.peers)); /* the peer watch reads these */
        d->cfg.n_peers = nc.n_peers;
        d->watch.n_peers = nc.n_peers; /* its allowlist */
    }
    uint64_t now = now_ms();
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        const struct vrrpd_group_config *ng = NULL;
        for (size_t j = 0; j < nc.n_groups && ng == NULL; j++)
            if (nc.groups[j].vrid == g->cfg.vrid)
                ng = &nc.groups[j];
        if (ng == NULL) {
            snprintf(what, sizeof(what), "vrid %u removed", g->cfg.vrid);
            note(restart, sizeof(restart), what);
            continue;
        }
        if (ng->priority != g->cfg.priority) {
            snprintf(what, sizeof(what), "vrid %u priority %u->%u", g->cfg.vrid, g->cfg.priority,
                     ng->priority);
            note(changed, sizeof(changed), what);
        }
        if (ng->interval_ms != g->cfg.interval_ms) {
            snprintf(what, sizeof(what), "vrid %u interval %llums->%llums", g->cfg.vrid,
                     (unsigned long long)g->cfg.interval_ms, (unsigned long long)ng->interval_ms);
            note(changed, sizeof(changed), what);
        }
        if (ng->preempt != g->cfg.preempt || ng->preempt_delay_ms != g->cfg.preempt_delay_ms) {
            snprintf(what, sizeof(what), "vrid %u preempt", g->cfg.vrid);
            note(changed, sizeof(changed), what);
        }
        bool vips_changed = !vips_same(&g->cfg, ng);
        if (vips_changed) {
            snprintf(what, sizeof(what), "vrid %u vips", g->cfg.vrid);
            note(changed, sizeof(changed), what);
            if (g->vips_held && !d->closed)
                vips_move(g, ng);
        }
        g->cfg = *ng;
        struct vrrp_fsm_config fc = {.vrid = (uint8_t)ng->vrid,
                                     .priority = (uint8_t)ng->priority,
                                     .adv_cs = (uint16_t)(ng->interval_ms / 10),
                                     .preempt = ng->preempt,
                                     .preempt_delay_ms = ng->preempt_delay_ms,
                                     .primary_ip = d->primary};
        struct vrrp_out o;
        vrrp_fsm_reconfigure(&g->fsm, now, &fc, &o);
        if (vips_changed && g->fsm.state == VRRP_MASTER)
            o.actions |= VRRP_ACT_SEND_ADV | VRRP_ACT_GARP; /* tell the segment now */
        apply(g, &o);
    }
    reload_succeeded(&d->reload);
    reevaluate(d, "reload"); /* the effective priorities, from the new ones */
    char qc[800], qr[600];
    log_emit(LOG_INFO, "reload", "changed=%s",
             log_quote(qc, sizeof(qc), changed[0] ? changed : "nothing"));
    if (restart[0])
        log_emit(LOG_WARN, "reload_partial",
                 "restart_needed_for=%s detail=\"running with the old values\"",
                 log_quote(qr, sizeof(qr), restart));
    if (strstr(changed, "vips"))
        log_emit(LOG_WARN, "reload_vips_changed",
                 "detail=\"a peer with other VIPs drops our adverts (RFC 5798 7.1): "
                 "reload it too\"");
    vrrpd_write_state(d);
}

/* SIGHUP, as systemd's Type=notify reload protocol expects it. */
static void reload(struct vrrpd *d)
{
    reload_begin();
    reload_config(d);
    reload_end(&d->reload, "running");
}

/* After SIGTERM: exit once every group has handed its VIPs over (or timed out). */
static void maybe_finish(struct vrrpd *d)
{
    if (!d->stopping || d->closed)
        return;
    for (size_t i = 0; i < d->n_groups; i++)
        if (vrrp_fsm_next_due(&d->groups[i].fsm) != 0)
            return;
    d->closed = true;
    vrrpd_write_state(d);
    close_all(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct vrrpd *d = h->data;
    if (signum == SIGHUP) {
        if (!d->stopping)
            reload(d);
        return;
    }
    if (d->stopping) { /* a second signal: release everything now */
        for (size_t i = 0; i < d->n_groups; i++)
            if (d->groups[i].fsm.handover_due_ms) {
                d->groups[i].fsm.handover_due_ms = 0;
                vips_set(&d->groups[i], false);
            }
        maybe_finish(d);
        return;
    }
    log_emit(LOG_INFO, "shutdown", "reason=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sdnotify("STOPPING=1\nSTATUS=handing the VIPs over");
    /* Every group first; only then may maybe_finish() close what they use. */
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrp_out o;
        vrrp_fsm_shutdown(&d->groups[i].fsm, now_ms(), &o);
        apply(&d->groups[i], &o);
    }
    d->stopping = true;
    maybe_finish(d);
}

static void set_realtime(struct vrrpd *d)
{
    if (!d->cfg.realtime)
        return;
    struct sched_param sp = {.sched_priority = 50};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
        log_emit(LOG_WARN, "realtime_failed", "what=SCHED_FIFO error=\"%s\"", strerror(errno));
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
        log_emit(LOG_WARN, "realtime_failed", "what=mlockall error=\"%s\"", strerror(errno));
}

int vrrpd_start(struct vrrpd *d, uv_loop_t *loop, const char *path,
                const struct vrrpd_config *cfg)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    snprintf(d->config_path, sizeof(d->config_path), "%s", path);
    d->cfg = *cfg;
    d->started_wall_ms = wall_ms();
    d->rx_fd = d->tx_fd = d->transitions_fd = -1;
    d->garp.fd = -1;
    snprintf(d->lbd_why, sizeof(d->lbd_why), "waiting for the tracked lbd");
    d->ifindex = (int)if_nametoindex(cfg->interface);
    if (d->ifindex == 0) {
        fprintf(stderr, "vrrpd: interface %s: %s\n", cfg->interface, strerror(errno));
        return -ENODEV;
    }
    d->n_groups = cfg->n_groups;
    for (size_t i = 0; i < d->n_groups; i++) {
        d->groups[i].d = d;
        d->groups[i].cfg = cfg->groups[i];
    }
    bool stale = false;
    d->primary = cfg->address ? cfg->address : find_primary(d, &stale);
    if (cfg->address)
        find_primary(d, &stale);
    if (d->primary == 0) {
        fprintf(stderr, "vrrpd: interface %s has no IPv4 address to advertise from\n",
                cfg->interface);
        return -EADDRNOTAVAIL;
    }
    char err[512];
    int rc = check_vips_on_segment(cfg->interface, cfg->groups, cfg->n_groups, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "vrrpd: %s\n", err);
        return rc;
    }
    rc = vip_open(&d->vip, loop, d->ifindex, on_link, d);
    if (rc != 0) {
        fprintf(stderr, "vrrpd: netlink on %s: %s (vrrpd needs CAP_NET_ADMIN)\n", cfg->interface,
                strerror(-rc));
        return rc;
    }
    d->link_up = d->vip.link_up;
    /* A crashed earlier run may have left VIPs behind: they are not ours until we are
     * master again. */
    for (size_t i = 0; i < d->n_groups; i++)
        vips_set(&d->groups[i], false);
    if (stale)
        log_emit(LOG_WARN, "stale_vips_removed", "interface=%s detail=\"left by an earlier run\"",
                 cfg->interface);
    if ((rc = garp_open(&d->garp, d->ifindex, cfg->interface)) != 0 ||
        (rc = open_sockets(d)) != 0) {
        fprintf(stderr, "vrrpd: raw sockets on %s: %s (vrrpd needs CAP_NET_RAW)\n",
                cfg->interface, strerror(-rc));
        return rc;
    }
    if (cfg->transitions_file[0]) {
        d->transitions_fd =
            open(cfg->transitions_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (d->transitions_fd < 0)
            log_emit(LOG_WARN, "transitions_file_failed", "path=%s error=\"%s\"",
                     cfg->transitions_file, strerror(errno));
    }
    uv_signal_init(loop, &d->sig_term);
    uv_signal_init(loop, &d->sig_int);
    uv_signal_init(loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
    uv_timer_init(loop, &d->status_timer);
    d->status_timer.data = d;
    uv_timer_start(&d->status_timer, on_status_timer, 500, 500);
    if (cfg->admin_enabled &&
        (rc = httpd_start(&d->admin, loop, (struct sockaddr *)&cfg->admin, admin_handle, d)) != 0) {
        char a[SOCKADDR_STRLEN];
        fprintf(stderr, "vrrpd: cannot serve the admin endpoint on %s: %s\n",
                format_sockaddr((struct sockaddr *)&cfg->admin, a, sizeof(a)), uv_strerror(rc));
        return rc;
    }
    if (cfg->peer_watch_port) {
        char pa[16];
        rc = peerwatch_start(&d->watch, loop, d->primary, cfg->peer_watch_port, d->cfg.peers,
                             d->cfg.n_peers, on_peer_gone, d);
        if (rc != 0) /* the link is a speed-up: VRRP works without it */
            log_emit(LOG_WARN, "peer_watch_unavailable",
                     "address=%s port=%u error=\"%s\" detail=\"peers fall back to the master "
                     "down interval when this vrrpd ends\"",
                     ip4(d->primary, pa, sizeof(pa)), cfg->peer_watch_port, uv_strerror(rc));
    }
    set_realtime(d);
    char ip[16];
    log_emit(LOG_INFO, "start", "version=%s interface=%s address=%s groups=%zu mode=%s link=%s",
             PGVIP_VERSION, cfg->interface, ip4(d->primary, ip, sizeof(ip)), d->n_groups,
             cfg->n_peers ? "unicast" : "multicast", d->link_up ? "up" : "down");
    bool fault = (cfg->track_link && !d->link_up) || cfg->track_lbd[0];
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        struct vrrp_fsm_config fc = {.vrid = (uint8_t)g->cfg.vrid,
                                     .priority = (uint8_t)g->cfg.priority,
                                     .adv_cs = (uint16_t)(g->cfg.interval_ms / 10),
                                     .preempt = g->cfg.preempt,
                                     .preempt_delay_ms = g->cfg.preempt_delay_ms,
                                     .primary_ip = d->primary};
        vrrp_fsm_init(&g->fsm, &fc);
        uv_timer_init(loop, &g->timer);
        uv_timer_init(loop, &g->garp_timer);
        g->timer.data = g->garp_timer.data = g;
        struct vrrp_out o;
        vrrp_fsm_start(&g->fsm, now_ms(), fault, &o);
        if (fault && cfg->track_lbd[0] && !(cfg->track_link && !d->link_up))
            snprintf(o.reason, sizeof(o.reason), "start-up: waiting for the tracked lbd");
        apply(g, &o);
    }
    if (cfg->track_lbd[0])
        track_start(&d->track, loop, cfg->track_lbd, cfg->track_lbd_interval_ms,
                    cfg->track_lbd_timeout_ms, on_lbd, d);
    vrrpd_write_state(d);
    return 0;
}

void vrrpd_free(struct vrrpd *d)
{
    garp_close(&d->garp);
    if (d->rx_fd >= 0)
        close(d->rx_fd);
    if (d->tx_fd >= 0)
        close(d->tx_fd);
    if (d->transitions_fd >= 0)
        close(d->transitions_fd);
}
