/* vrrpd_status.c -- what vrrpd shows of itself: the state file (vrrpd --status and the
 * status page read it), and the admin endpoint's /metrics (Prometheus), /status (the
 * same JSON) and /health. vrrpd.c keeps the state; this file only renders it. */
#include "vrrpd.h"

#include "log.h"
#include "metrics.h"
#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- state file ---- */

void vrrpd_render_state(struct vrrpd *d, struct metrics_buf *m)
{
    char ts[40], ip[16];
    uint64_t now = clock_mono_ms();
    metrics_printf(m, "{\"daemon\":\"vrrpd\",\"instance\":");
    metrics_json_str(m, d->cfg.instance);
    metrics_printf(m, ",\"pid\":%d,\"updated\":\"%s\",\"updated_ms\":%llu", (int)getpid(),
                   log_format_ts(clock_wall_ms(), ts, sizeof(ts)),
                   (unsigned long long)clock_wall_ms());
    metrics_printf(m, ",\"running\":%s,\"interface\":", d->stopping ? "false" : "true");
    metrics_json_str(m, d->cfg.interface);
    metrics_printf(m, ",\"address\":\"%s\",\"link_up\":%s", format_ip4(d->primary, ip, sizeof(ip)),
                   d->link_up ? "true" : "false");
    if (d->cfg.track_lbd[0]) {
        metrics_printf(m, ",\"lbd\":{\"ok\":%s,\"reason\":", d->lbd_ok ? "true" : "false");
        metrics_json_str(m, d->lbd_why);
        metrics_printf(m, "}");
    }
    /* The backups that watch this vrrpd over the peer watch link, by name when they told
     * it: the peer instance's side of the groups this one is master of. */
    metrics_printf(m, ",\"watchers\":[");
    for (size_t i = 0, n = 0; i < PEERWATCH_MAX_CONNS + PEERWATCH_SPARE; i++) {
        const struct peerwatch_conn *c = &d->watch.conns[i];
        if (!c->open || c->closing || c->ip == 0)
            continue;
        metrics_printf(m, "%s{\"address\":\"%s\",\"name\":", n++ ? "," : "",
                       format_ip4(c->ip, ip, sizeof(ip)));
        metrics_json_str(m, c->name);
        metrics_printf(m, "}");
    }
    metrics_printf(m, "]");
    metrics_printf(m, ",\"reloads\":%llu", (unsigned long long)d->reload.reloads);
    reload_json(m, &d->reload);
    metrics_printf(m, ",\"mode\":\"%s\",\"groups\":[", d->cfg.n_peers ? "unicast" : "multicast");
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        char vips[512];
        vrrpd_vip_list(g, vips, sizeof(vips));
        metrics_printf(m,
                       "%s{\"vrid\":%u,\"state\":\"%s\",\"priority\":%u,\"configured_priority\":%u,"
                       "\"interval_ms\":%llu,\"preempt\":%s,\"vips\":\"%s\",\"holds_vips\":%s",
                       i ? "," : "", g->cfg.vrid, vrrp_state_names[g->fsm.state], g->fsm.priority,
                       g->cfg.priority, (unsigned long long)g->cfg.interval_ms,
                       g->cfg.preempt ? "true" : "false", vips, g->vips_held ? "true" : "false");
        metrics_printf(m, ",\"master\":\"%s\"",
                       g->fsm.master_ip ? format_ip4(g->fsm.master_ip, ip, sizeof(ip)) : "");
        const char *mname = g->fsm.state == VRRP_BACKUP && g->fsm.master_ip
                                ? peerwatch_name_of(&d->watch, g->fsm.master_ip)
                                : NULL;
        metrics_printf(m, ",\"master_name\":");
        metrics_json_str(m, mname ? mname : "");
        metrics_printf(m, ",\"master_watched\":%s",
                       d->cfg.peer_watch_port && g->fsm.state == VRRP_BACKUP &&
                               peerwatch_is_armed(&d->watch, g->fsm.master_ip)
                           ? "true"
                           : "false");
        metrics_printf(m, ",\"last_advert_ms_ago\":%lld",
                       g->last_rx_ms ? (long long)(now - g->last_rx_ms) : -1LL);
        metrics_printf(m, ",\"operator_priority\":%u", g->prio_override);
        metrics_printf(m,
                       ",\"master_down_ms\":%llu,\"adverts_sent\":%llu,\"adverts_received\":%llu",
                       (unsigned long long)vrrp_fsm_master_down_ms(&g->fsm),
                       (unsigned long long)g->tx_adverts, (unsigned long long)g->rx_adverts);
        metrics_printf(m,
                       ",\"adverts_late\":%llu,\"advert_late_max_ms\":%llu,"
                       "\"stall_graces\":%llu,\"silent_holds\":%llu,\"holding\":%s",
                       (unsigned long long)g->tx_late, (unsigned long long)g->tx_late_max_ms,
                       (unsigned long long)g->fsm.stall_graces, (unsigned long long)g->fsm.holds,
                       g->fsm.hold_since_ms ? "true" : "false");
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
                 "path=%s error=\"%s\" detail=\"vrrpd --status and the status page go stale\"", tmp,
                 strerror(errno));
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
    uint64_t now = clock_mono_ms();
    metrics_family(m, "vrrpd_up", METRICS_GAUGE, "1 while vrrpd runs.");
    metrics_sample(m, NULL, 1);
    metrics_process(m, "vrrpd", PGVIP_VERSION);
    metrics_family(m, "vrrpd_start_time_seconds", METRICS_GAUGE, "Start time, Unix seconds.");
    metrics_sample(m, NULL, (double)d->started_wall_ms / 1000.0);
    metrics_family(m, "vrrpd_link_up", METRICS_GAUGE, "1 while the VRRP interface is up.");
    metrics_sample(m, NULL, d->link_up);
    reload_metrics(m, "vrrpd", &d->reload);
    metrics_family(m, "vrrpd_state_file_failures_total", METRICS_COUNTER,
                   "Writes of vrrp.control.state_file that failed: the operators' priorities "
                   "since would not survive a restart.");
    metrics_sample(m, NULL, (double)d->state_file_failed);
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
#define PER_GROUP(name, type, help, expr)                                                          \
    metrics_family(m, name, type, help);                                                           \
    for (size_t i = 0; i < d->n_groups; i++) {                                                     \
        const struct vrrpd_group *g = &d->groups[i];                                               \
        snprintf(vrid, sizeof(vrid), "%u", g->cfg.vrid);                                           \
        const char *l[] = {"vrid", vrid, NULL};                                                    \
        metrics_sample(m, l, (double)(expr));                                                      \
    }
    PER_GROUP("vrrpd_group_master", METRICS_GAUGE, "1 while this instance is the group's master.",
              g->fsm.state == VRRP_MASTER)
    PER_GROUP("vrrpd_group_vips_held", METRICS_GAUGE,
              "1 while the group's VIPs are on the interface.", g->vips_held)
    PER_GROUP("vrrpd_group_priority", METRICS_GAUGE, "Effective priority (after tracking).",
              g->fsm.priority)
    PER_GROUP("vrrpd_group_configured_priority", METRICS_GAUGE, "Configured priority.",
              g->cfg.priority)
    PER_GROUP("vrrpd_group_advert_interval_seconds", METRICS_GAUGE, "Advertisement interval.",
              (double)g->cfg.interval_ms / 1000.0)
    PER_GROUP("vrrpd_group_adverts_sent_total", METRICS_COUNTER, "Advertisements sent.",
              g->tx_adverts)
    PER_GROUP("vrrpd_group_adverts_late_total", METRICS_COUNTER,
              "Advertisements sent more than half an interval after they were due.", g->tx_late)
    PER_GROUP("vrrpd_group_advert_late_max_seconds", METRICS_GAUGE,
              "Latest an advertisement has left after it was due (of those counted late).",
              (double)g->tx_late_max_ms / 1000.0)
    PER_GROUP("vrrpd_group_stall_graces_total", METRICS_COUNTER,
              "Times this backup's master down timer ran late and it waited one more interval.",
              g->fsm.stall_graces)
    PER_GROUP("vrrpd_group_silent_holds_total", METRICS_COUNTER,
              "Times this backup's master went silent while its host still answered on the peer "
              "watch link, and it waited (silent_master_hold) instead of taking over at once.",
              g->fsm.holds)
    PER_GROUP("vrrpd_group_garps_sent_total", METRICS_COUNTER, "Gratuitous ARP announcements sent.",
              g->garps_sent)
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
        metrics_family(m, "vrrpd_peer_watch_refused_total", METRICS_COUNTER,
                       "Peer watch connections refused (not a configured peer, more than 2 "
                       "from one address, or every slot held by a VRRP peer).");
        metrics_sample(m, NULL, (double)d->watch.refused);
        metrics_family(m, "vrrpd_peer_watch_evicted_total", METRICS_COUNTER,
                       "Peer watch connections from addresses that speak no VRRP here, closed "
                       "to make room for a new one.");
        metrics_sample(m, NULL, (double)d->watch.evicted);
    }
    metrics_family(m, "vrrpd_admin_rejected_total", METRICS_COUNTER,
                   "Admin connections closed unserved (too many from one address, or no memory).");
    metrics_sample(m, NULL, (double)d->admin.rejected);
    metrics_family(m, "vrrpd_admin_evicted_total", METRICS_COUNTER,
                   "Idle admin connections closed to make room for a new one (all were taken).");
    metrics_sample(m, NULL, (double)d->admin.evicted);
}

void vrrpd_admin_handle(void *ctx, const char *path, const char *query, struct httpd_reply *r)
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
