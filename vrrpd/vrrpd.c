/* vrrpd.c -- the vrrpd daemon: raw-socket advertisement I/O, one state machine per
 * group (vrrp_fsm.c), the actions it asks for (vip.c, garp.c), tracked objects (link
 * state, the local lbd via track.c), the transition log and notify hook, start and
 * stop. vrrpd_status.c renders the state file and the admin endpoint; vrrpd_reload.c
 * applies a SIGHUP.
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
    "ok",    "truncated", "not_vrrp", "ttl", "version",      "type",     "length",
    "count", "interval",  "checksum", "own", "unknown_vrid", "not_peer", "addr_mismatch",
};

uint64_t vrrpd_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

uint64_t vrrpd_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

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
    char *args[] = {
        "/bin/sh",       "-c", d->cfg.notify, "notify", (char *)vrrp_state_names[o->to], vrid,
        d->cfg.instance, NULL};
    char *env[] = {env_state, env_from, env_vrid, env_inst, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                   NULL};
    uv_process_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    uv_process_options_t opt = {
        .file = "/bin/sh", .args = args, .env = env, .exit_cb = notify_exited};
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
    vrrpd_vip_list(g, vips, sizeof(vips));
    log_quote(reason, sizeof(reason), o->reason);
    const char *vipkey = (actions & VRRP_ACT_ADD_VIPS) && !held_before  ? " vips_added="
                         : (actions & VRRP_ACT_DEL_VIPS) && held_before ? " vips_removed="
                         : held_before && g->vips_held ? " vips_kept_until_handover="
                                                       : "";
    const char *vipval = vipkey[0] ? vips : "";
    /* The levels an on-call person would pick: a takeover from a failed master and a
     * FAULT after start-up are warnings; start-up, preemption, a planned handover and
     * recovery are information. */
    bool alarm = o->takeover || (o->to == VRRP_FAULT && o->from != VRRP_INIT);
    log_emit(alarm ? LOG_WARN : LOG_INFO, "transition",
             "vrid=%u from=%s to=%s priority=%u reason=%s%s%s", g->cfg.vrid,
             vrrp_state_names[o->from], vrrp_state_names[o->to], g->fsm.priority, reason, vipkey,
             vipval);
    uint64_t w = vrrpd_wall_ms();
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
    uint64_t due = vrrp_fsm_next_due(&g->fsm), now = vrrpd_now_ms();
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
    uint64_t now = vrrpd_now_ms();
    log_emit(LOG_WARN, "peer_gone", "peer=%s reason=%s", format_ip4(ip, ips, sizeof(ips)),
             log_quote(q, sizeof(q), why));
    for (size_t i = 0; i < d->n_groups; i++) {
        vrrp_fsm_peer_gone(&d->groups[i].fsm, now, ip);
        rearm(&d->groups[i]);
    }
}

/* A backup waits for a master it believes alive (vrrp_fsm.c says why): the stall grace,
 * and the silent master hold's start and end. */
static void log_wait(struct vrrpd_group *g, const struct vrrp_out *o)
{
    char ip[16], q[220];
    const char *event = (o->actions & VRRP_ACT_STALL_GRACE) ? "stall_grace"
                        : (o->actions & VRRP_ACT_HOLD)      ? "silent_master_hold"
                                                            : "silent_master_back";
    uint64_t n = (o->actions & VRRP_ACT_STALL_GRACE) ? g->fsm.stall_graces : g->fsm.holds;
    log_emit((o->actions & VRRP_ACT_HOLD_END) ? LOG_INFO : LOG_WARN, event,
             "vrid=%u master=%s count=%llu reason=%s", g->cfg.vrid,
             g->fsm.master_ip ? format_ip4(g->fsm.master_ip, ip, sizeof(ip)) : "-",
             (unsigned long long)n, log_quote(q, sizeof(q), o->reason));
}

/* Perform what the state machine asked for, in the order that keeps the segment
 * consistent: resign before dropping addresses, hold addresses before advertising. */
void vrrpd_apply(struct vrrpd_group *g, const struct vrrp_out *o)
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
    if ((a & VRRP_ACT_PROBE) && g->fsm.state == VRRP_BACKUP && g->d->cfg.peer_watch_port)
        peerwatch_probe(&g->d->watch, g->fsm.master_ip); /* no link: no answer, plain VRRP */
    if (a & (VRRP_ACT_STALL_GRACE | VRRP_ACT_HOLD | VRRP_ACT_HOLD_END))
        log_wait(g, o);
    if (a & VRRP_ACT_HANDOVER_DONE) {
        char vips[512], q[200];
        vrrpd_vip_list(g, vips, sizeof(vips));
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

/* Lines that could come many times a second (counters keep the rest): true at most
 * once a second per *last_ms. */
static bool log_once_a_second(uint64_t *last_ms)
{
    uint64_t now = vrrpd_now_ms();
    if (*last_ms && now - *last_ms < 1000)
        return false;
    *last_ms = now;
    return true;
}

/* An advert left LATE_MS after it was due. Past half an interval the backups' master
 * down timers are being eaten into: count it, and say so at most once a second. */
static void note_late(struct vrrpd_group *g, uint64_t late_ms)
{
    if (late_ms * 2 <= g->cfg.interval_ms)
        return;
    g->tx_late++;
    if (late_ms > g->tx_late_max_ms)
        g->tx_late_max_ms = late_ms;
    if (!log_once_a_second(&g->last_late_log_ms))
        return;
    log_emit(LOG_WARN, "advert_late",
             "vrid=%u late_ms=%llu interval_ms=%llu count=%llu detail=\"vrrpd ran late: CPU "
             "starvation, a stop or a stalled host (realtime: true helps with the first)\"",
             g->cfg.vrid, (unsigned long long)late_ms, (unsigned long long)g->cfg.interval_ms,
             (unsigned long long)g->tx_late);
}

/* A backup whose master is silent asked for a probe: what has the master's host
 * acknowledged since? The kernel keeps the time of the last ACK in ticks, so an answer
 * within 10 ms before the first probe counts as the probe's (nothing else was sent). */
static void report_master_alive(struct vrrpd_group *g, uint64_t now)
{
    struct vrrp_fsm *f = &g->fsm;
    if (f->state != VRRP_BACKUP || f->probed_ms == 0 || !g->d->cfg.peer_watch_port)
        return;
    uint64_t at = peerwatch_acked_at(&g->d->watch, f->master_ip, now);
    if (at && at < f->probed_ms && at + 10 >= f->probed_ms)
        at = f->probed_ms;
    if (at)
        vrrp_fsm_peer_alive(f, now, f->master_ip, at);
}

static void on_group_timer(uv_timer_t *t)
{
    struct vrrpd_group *g = t->data;
    /* libuv runs timers before it polls for I/O: after a stall of vrrpd (CPU starvation,
     * SIGSTOP, a debugger) an advertisement may be waiting that makes this master-down
     * timeout stale. Read what has arrived first; the state machine then acts only on
     * what is still due. A master's advert ticks need no such read. */
    if (g->fsm.state == VRRP_BACKUP && g->d->rx_polling)
        on_rx(&g->d->rx_poll, 0, UV_READABLE);
    bool master = g->fsm.state == VRRP_MASTER;
    uint64_t due = vrrp_fsm_next_due(&g->fsm), now = vrrpd_now_ms();
    report_master_alive(g, now);
    struct vrrp_out o;
    vrrp_fsm_timer(&g->fsm, now, &o);
    vrrpd_apply(g, &o);
    if (master && due && (o.actions & VRRP_ACT_SEND_ADV) && now > due)
        note_late(g, now - due);
}

/* ---- receiving ---- */

static void drop(struct vrrpd *d, int reason, uint32_t src, const char *detail)
{
    d->rx_drops[reason]++;
    if (reason == VRRPD_DROP_OWN || reason == VRRPD_DROP_UNKNOWN_VRID)
        return; /* normal on a shared segment; counted, not logged */
    if (!log_once_a_second(&d->last_drop_log_ms))
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
    g->last_rx_ms = vrrpd_now_ms();
    if (d->cfg.track_lbd[0]) {
        /* lbd's status page shows the last advert's age as of its request: the state file
         * is a snapshot up to 500 ms old. */
        char line[48];
        snprintf(line, sizeof(line), "advert %u %llu\n", g->cfg.vrid,
                 (unsigned long long)vrrpd_wall_ms());
        track_send(&d->track, line);
    }
    peerwatch_heard(&d->watch, src, uv_now(d->loop));
    struct vrrp_out o;
    vrrp_fsm_recv(&g->fsm, vrrpd_now_ms(), &a, src, &o);
    vrrpd_apply(g, &o);
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

void vrrpd_reevaluate(struct vrrpd *d, const char *what)
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
        vrrp_fsm_set_fault(&g->fsm, vrrpd_now_ms(), fault, graceful, fault ? why : what, &o);
        vrrpd_apply(g, &o);
        int prio = g->prio_override ? (int)g->prio_override : (int)g->cfg.priority;
        if (d->cfg.track_lbd[0] && d->cfg.track_lbd_action == VRRPD_TRACK_WEIGHT && !d->lbd_ok)
            prio -= (int)d->cfg.track_lbd_weight;
        if (prio < 1)
            prio = 1;
        if (prio == 255 && (int)g->cfg.priority != 255)
            prio = 254;
        vrrp_fsm_set_priority(&g->fsm, vrrpd_now_ms(), (uint8_t)prio, &o);
        vrrpd_apply(g, &o);
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
    vrrpd_reevaluate(d, what);
}

static void on_lbd(void *arg, bool ok, const char *why)
{
    struct vrrpd *d = arg;
    char q[160];
    d->lbd_ok = ok;
    snprintf(d->lbd_why, sizeof(d->lbd_why), "%s", why);
    log_emit(ok ? LOG_INFO : LOG_WARN, "track", "object=lbd state=%s reason=%s", ok ? "up" : "down",
             log_quote(q, sizeof(q), why));
    vrrpd_reevaluate(d, why);
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
    vrrpd_control_stop(d);
    peerwatch_stop(&d->watch);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    track_stop(&d->track);
    vip_close(&d->vip);
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
            vrrpd_reload(d);
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
        vrrp_fsm_shutdown(&d->groups[i].fsm, vrrpd_now_ms(), &o);
        vrrpd_apply(&d->groups[i], &o);
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

int vrrpd_start(struct vrrpd *d, uv_loop_t *loop, const char *path, const struct vrrpd_config *cfg)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    snprintf(d->config_path, sizeof(d->config_path), "%s", path);
    d->cfg = *cfg;
    d->started_wall_ms = vrrpd_wall_ms();
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
    int rc =
        vrrpd_check_vips_on_segment(cfg->interface, cfg->groups, cfg->n_groups, err, sizeof(err));
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
        fprintf(stderr, "vrrpd: raw sockets on %s: %s (vrrpd needs CAP_NET_RAW)\n", cfg->interface,
                strerror(-rc));
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
    if (cfg->admin_enabled && (rc = httpd_start(&d->admin, loop, (struct sockaddr *)&cfg->admin,
                                                vrrpd_admin_handle, d)) != 0) {
        char a[SOCKADDR_STRLEN];
        fprintf(stderr, "vrrpd: cannot serve the admin endpoint on %s: %s\n",
                format_sockaddr((struct sockaddr *)&cfg->admin, a, sizeof(a)), uv_strerror(rc));
        return rc;
    }
    if ((rc = vrrpd_control_start(d)) != 0)
        return rc;
    if (cfg->peer_watch_port) {
        char pa[16];
        rc = peerwatch_start(&d->watch, loop, d->primary, cfg->peer_watch_port, d->cfg.peers,
                             d->cfg.n_peers, on_peer_gone, d);
        snprintf(d->watch.name, sizeof(d->watch.name), "%s", cfg->instance);
        if (rc != 0) /* the link is a speed-up: VRRP works without it */
            log_emit(LOG_WARN, "peer_watch_unavailable",
                     "address=%s port=%u error=\"%s\" detail=\"peers fall back to the master "
                     "down interval when this vrrpd ends\"",
                     format_ip4(d->primary, pa, sizeof(pa)), cfg->peer_watch_port, uv_strerror(rc));
    }
    set_realtime(d);
    char ip[16];
    log_emit(LOG_INFO, "start", "version=%s interface=%s address=%s groups=%zu mode=%s link=%s",
             PGVIP_VERSION, cfg->interface, format_ip4(d->primary, ip, sizeof(ip)), d->n_groups,
             cfg->n_peers ? "unicast" : "multicast", d->link_up ? "up" : "down");
    bool fault = (cfg->track_link && !d->link_up) || cfg->track_lbd[0];
    uint32_t best = 0; /* the groups at this priority are the ones this instance prefers */
    for (size_t i = 0; i < d->n_groups; i++)
        best = d->groups[i].cfg.priority > best ? d->groups[i].cfg.priority : best;
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        struct vrrp_fsm_config fc = {
            .start_yield_ms = g->cfg.priority < best ? cfg->start_yield_ms : 0,
            .vrid = (uint8_t)g->cfg.vrid,
            .priority = (uint8_t)g->cfg.priority,
            .adv_cs = (uint16_t)(g->cfg.interval_ms / 10),
            .preempt = g->cfg.preempt,
            .preempt_delay_ms = g->cfg.preempt_delay_ms,
            .primary_ip = d->primary,
            .silent_hold_ms = cfg->peer_watch_port ? cfg->silent_hold_ms : 0};
        vrrp_fsm_init(&g->fsm, &fc);
        uv_timer_init(loop, &g->timer);
        uv_timer_init(loop, &g->garp_timer);
        g->timer.data = g->garp_timer.data = g;
        struct vrrp_out o;
        vrrp_fsm_start(&g->fsm, vrrpd_now_ms(), fault, &o);
        if (fault && cfg->track_lbd[0] && !(cfg->track_link && !d->link_up))
            snprintf(o.reason, sizeof(o.reason), "start-up: waiting for the tracked lbd");
        vrrpd_apply(g, &o);
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
