/* vrrpd.c -- the vrrpd daemon's lifecycle and its groups' timing: start, the actions a
 * group's state machine (vrrp_fsm.c) asks for, in order (vrrpd_apply), each group's
 * timer, the peer watch's following of masters, signals, and the handover-then-exit on
 * SIGTERM. The rest of the daemon, one file per role:
 *   vrrpd_io.c        raw sockets: advertisements sent, received and checked
 *   vrrpd_vips.c      the VIPs held and announced; the interface's addresses inspected
 *   vrrpd_notify.c    transition logs, the transitions file, the notify hook
 *   vrrpd_tracking.c  tracked objects (link, lbd) and the re-evaluation they cause
 *   vrrpd_status.c    the state file and the admin endpoint
 *   vrrpd_control.c   the control socket (pgvipctl vrrp ...)
 *   vrrpd_reload.c    SIGHUP */
#include "vrrpd_int.h"

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

static void on_group_timer(uv_timer_t *t);
static void maybe_finish(struct vrrpd *d);

static void rearm(struct vrrpd_group *g)
{
    uint64_t due = vrrp_fsm_next_due(&g->fsm), now = clock_mono_ms();
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
    uint64_t now = clock_mono_ms();
    log_emit(LOG_WARN, "peer_gone", "peer=%s reason=%s", format_ip4(ip, ips, sizeof(ips)),
             log_quote(q, sizeof(q), why));
    for (size_t i = 0; i < d->n_groups; i++) {
        vrrp_fsm_peer_gone(&d->groups[i].fsm, now, ip);
        rearm(&d->groups[i]);
    }
}

/* Perform what the state machine asked for, in the order that keeps the segment
 * consistent: resign before dropping addresses, hold addresses before advertising. */
void vrrpd_apply(struct vrrpd_group *g, const struct vrrp_out *o)
{
    unsigned a = o->actions;
    bool held_before = g->vips_held;
    if (a & VRRP_ACT_SEND_ADV_ZERO)
        vrrpd_send_adv(g, 0);
    if (a & VRRP_ACT_DEL_VIPS)
        vrrpd_vips_set(g, false);
    if (a & VRRP_ACT_ADD_VIPS)
        vrrpd_vips_set(g, true);
    if (a & VRRP_ACT_SEND_ADV)
        vrrpd_send_adv(g, g->fsm.priority);
    if (a & VRRP_ACT_GARP) {
        vrrpd_garp_start(g);
    }
    if (a & VRRP_ACT_TRANSITION) {
        vrrpd_log_transition(g, o, a, held_before);
        vrrpd_write_state(g->d);
    }
    if ((a & VRRP_ACT_PROBE) && g->fsm.state == VRRP_BACKUP && g->d->cfg.peer_watch_port)
        peerwatch_probe(&g->d->watch, g->fsm.master_ip); /* no link: no answer, plain VRRP */
    if (a & (VRRP_ACT_STALL_GRACE | VRRP_ACT_HOLD | VRRP_ACT_HOLD_END))
        vrrpd_log_wait(g, o);
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

/* Lines that could come many times a second (counters keep the rest): true at most
 * once a second per *last_ms. */
bool vrrpd_once_a_second(uint64_t *last_ms)
{
    uint64_t now = clock_mono_ms();
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
    if (!vrrpd_once_a_second(&g->last_late_log_ms))
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
        vrrpd_rx_drain(g->d);
    bool master = g->fsm.state == VRRP_MASTER;
    uint64_t due = vrrp_fsm_next_due(&g->fsm), now = clock_mono_ms();
    report_master_alive(g, now);
    struct vrrp_out o;
    vrrp_fsm_timer(&g->fsm, now, &o);
    vrrpd_apply(g, &o);
    if (master && due && (o.actions & VRRP_ACT_SEND_ADV) && now > due)
        note_late(g, now - due);
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
    uv_close((uv_handle_t *)&d->resign_timer, NULL);
    httpd_stop(&d->admin);
    vrrpd_control_stop(d);
    peerwatch_stop(&d->watch);
    daemon_signals_close(&d->signals);
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
                vrrpd_vips_set(&d->groups[i], false);
            }
        maybe_finish(d);
        return;
    }
    log_emit(LOG_INFO, "shutdown", "reason=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sdnotify("STOPPING=1\nSTATUS=handing the VIPs over");
    /* Every group first; only then may maybe_finish() close what they use. */
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrp_out o;
        vrrp_fsm_shutdown(&d->groups[i].fsm, clock_mono_ms(), &o);
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

/* Signals, the state file's timer, the admin endpoint, the control socket and the peer
 * watch: 0, or -errno (said on stderr) when one that must work does not. */
static int start_services(struct vrrpd *d)
{
    uv_loop_t *loop = d->loop;
    const struct vrrpd_config *cfg = &d->cfg;
    int rc;
    daemon_signals_start(&d->signals, loop, d, on_signal);
    uv_timer_init(loop, &d->status_timer);
    d->status_timer.data = d;
    uv_timer_start(&d->status_timer, on_status_timer, 500, 500);
    uv_timer_init(loop, &d->resign_timer);
    d->resign_timer.data = d;
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
    return 0;
}

/* Each group's state machine, started: FAULT until the tracked objects say otherwise,
 * and a start-up yield in the groups this instance does not prefer. */
static void start_groups(struct vrrpd *d)
{
    const struct vrrpd_config *cfg = &d->cfg;
    bool fault = (cfg->track_link && !d->link_up) || cfg->track_lbd[0];
    uint32_t best = 0; /* the groups at this priority are the ones this instance prefers */
    for (size_t i = 0; i < d->n_groups; i++)
        best = d->groups[i].cfg.priority > best ? d->groups[i].cfg.priority : best;
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        struct vrrp_fsm_config fc = {
            .start_yield_ms = g->cfg.priority < best ? cfg->start_yield_ms : 0,
            .vrid = (uint8_t)g->cfg.vrid,
            /* (an operator's priority kept across the restart, vrrp.control.state_file) */
            .priority = g->prio_override ? g->prio_override : (uint8_t)g->cfg.priority,
            .adv_cs = (uint16_t)(g->cfg.interval_ms / 10),
            .preempt = g->cfg.preempt,
            .preempt_delay_ms = g->cfg.preempt_delay_ms,
            .primary_ip = d->primary,
            .silent_hold_ms = cfg->peer_watch_port ? cfg->silent_hold_ms : 0};
        vrrp_fsm_init(&g->fsm, &fc);
        uv_timer_init(d->loop, &g->timer);
        uv_timer_init(d->loop, &g->garp_timer);
        g->timer.data = g->garp_timer.data = g;
        struct vrrp_out o;
        vrrp_fsm_start(&g->fsm, clock_mono_ms(), fault, &o);
        if (fault && cfg->track_lbd[0] && !(cfg->track_link && !d->link_up))
            snprintf(o.reason, sizeof(o.reason), "start-up: waiting for the tracked lbd");
        vrrpd_apply(g, &o);
    }
}

int vrrpd_start(struct vrrpd *d, uv_loop_t *loop, const char *path, const struct vrrpd_config *cfg)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    snprintf(d->config_path, sizeof(d->config_path), "%s", path);
    d->cfg = *cfg;
    d->started_wall_ms = clock_wall_ms();
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
    d->primary = cfg->address ? cfg->address : vrrpd_find_primary(d, &stale);
    if (cfg->address)
        vrrpd_find_primary(d, &stale);
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
    rc = vip_open(&d->vip, loop, d->ifindex, vrrpd_on_link, d);
    if (rc != 0) {
        fprintf(stderr, "vrrpd: netlink on %s: %s (vrrpd needs CAP_NET_ADMIN)\n", cfg->interface,
                strerror(-rc));
        return rc;
    }
    d->link_up = d->vip.link_up;
    /* A crashed earlier run may have left VIPs behind: they are not ours until we are
     * master again. */
    for (size_t i = 0; i < d->n_groups; i++)
        vrrpd_vips_set(&d->groups[i], false);
    if (stale)
        log_emit(LOG_WARN, "stale_vips_removed", "interface=%s detail=\"left by an earlier run\"",
                 cfg->interface);
    if ((rc = garp_open(&d->garp, d->ifindex, cfg->interface)) != 0 ||
        (rc = vrrpd_open_sockets(d)) != 0) {
        fprintf(stderr, "vrrpd: raw sockets on %s: %s (vrrpd needs CAP_NET_RAW)\n", cfg->interface,
                strerror(-rc));
        return rc;
    }
    vrrpd_transitions_open(d);
    if ((rc = vrrpd_state_restore(d)) != 0 || (rc = start_services(d)) != 0)
        return rc;
    set_realtime(d);
    char ip[16];
    log_emit(LOG_INFO, "start", "version=%s interface=%s address=%s groups=%zu mode=%s link=%s",
             PGVIP_VERSION, cfg->interface, format_ip4(d->primary, ip, sizeof(ip)), d->n_groups,
             cfg->n_peers ? "unicast" : "multicast", d->link_up ? "up" : "down");
    start_groups(d);
    if (cfg->track_lbd[0])
        track_start(&d->track, loop, cfg->track_lbd, cfg->track_lbd_interval_ms,
                    cfg->track_lbd_timeout_ms, vrrpd_on_lbd, d);
    d->track.on_line = vrrpd_lbd_line; /* (track_start clears it) */
    vrrpd_write_state(d);
    /* (the restored state, or none: a file that cannot be written says so now) */
    vrrpd_state_save(d);
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
