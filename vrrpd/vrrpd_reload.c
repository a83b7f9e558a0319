/* vrrpd_reload.c -- SIGHUP: load the file again and apply what can change while
 * running, or keep everything as it was and say why. vrrpd.c owns the daemon. */
#include "vrrpd.h"

#include "log.h"
#include "parse.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

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

static bool vip6_in(const struct vrrpd_group_config *g, const struct in6_addr *ip)
{
    for (size_t i = 0; i < g->n_vips6; i++)
        if (memcmp(&g->vips6[i], ip, sizeof(*ip)) == 0)
            return true;
    return false;
}

static bool vips_same(const struct vrrpd_group_config *a, const struct vrrpd_group_config *b)
{
    if (a->n_vips != b->n_vips || a->n_vips6 != b->n_vips6)
        return false;
    for (size_t i = 0; i < a->n_vips; i++)
        if (!vip_in(b, a->vips[i]))
            return false;
    for (size_t i = 0; i < a->n_vips6; i++)
        if (!vip6_in(b, &a->vips6[i]))
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
static void vip_report(const struct vrrpd_group *g, bool add, const char *ip, int rc)
{
    if (rc != 0)
        log_emit(LOG_ERROR, add ? "vip_add_failed" : "vip_del_failed",
                 "vrid=%u vip=%s error=\"%s\"", g->cfg.vrid, ip, vip_strerror(rc));
}

static void vips_move(struct vrrpd_group *g, const struct vrrpd_group_config *nc)
{
    struct vrrpd *d = g->d;
    char ip[INET6_ADDRSTRLEN];
    for (size_t i = 0; i < nc->n_vips; i++)
        if (!vip_in(&g->cfg, nc->vips[i]))
            vip_report(g, true, format_ip4(nc->vips[i], ip, sizeof(ip)),
                       vip_add(&d->vip, nc->vips[i]));
    for (size_t i = 0; i < nc->n_vips6; i++)
        if (!vip6_in(&g->cfg, &nc->vips6[i]))
            vip_report(g, true, inet_ntop(AF_INET6, &nc->vips6[i], ip, sizeof(ip)),
                       vip6_add(&d->vip, &nc->vips6[i]));
    for (size_t i = 0; i < g->cfg.n_vips; i++)
        if (!vip_in(nc, g->cfg.vips[i]))
            vip_report(g, false, format_ip4(g->cfg.vips[i], ip, sizeof(ip)),
                       vip_del(&d->vip, g->cfg.vips[i]));
    for (size_t i = 0; i < g->cfg.n_vips6; i++)
        if (!vip6_in(nc, &g->cfg.vips6[i]))
            vip_report(g, false, inet_ntop(AF_INET6, &g->cfg.vips6[i], ip, sizeof(ip)),
                       vip6_del(&d->vip, &g->cfg.vips6[i]));
}

static void reload_config(struct vrrpd *d)
{
    static struct vrrpd_config nc; /* large; one reload at a time */
    char err[1024], restart[512] = "", changed[768] = "", what[160];
    if (vrrpd_config_load(d->config_path, &nc, err, sizeof(err)) != 0) {
        reload_failed(&d->reload, err);
        return;
    }
    if (vrrpd_check_vips_on_segment(d->cfg.interface, nc.groups, nc.n_groups, err, sizeof(err)) !=
        0) {
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
        (nc.admin_enabled &&
         !sockaddr_equal((struct sockaddr *)&nc.admin, (struct sockaddr *)&d->cfg.admin)))
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
    if (!ctl_config_equal(&nc.control, &d->cfg.control))
        note(restart, sizeof(restart), "control");
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
    d->cfg.log_target = nc.log_target;
    log_set_target((enum log_target)nc.log_target);
    memcpy(d->cfg.notify, nc.notify, sizeof(d->cfg.notify));
    d->cfg.garp_repeat = nc.garp_repeat;
    d->cfg.garp_interval_ms = nc.garp_interval_ms;
    d->cfg.track_lbd_action = nc.track_lbd_action;
    d->cfg.track_lbd_weight = nc.track_lbd_weight;
    if (nc.silent_hold_ms != d->cfg.silent_hold_ms) {
        snprintf(what, sizeof(what), "silent_master_hold %llums->%llums",
                 (unsigned long long)d->cfg.silent_hold_ms, (unsigned long long)nc.silent_hold_ms);
        note(changed, sizeof(changed), what);
        d->cfg.silent_hold_ms = nc.silent_hold_ms; /* the groups take it below */
    }
    if ((nc.n_peers == 0) == (d->cfg.n_peers == 0)) {
        bool same = nc.n_peers == d->cfg.n_peers &&
                    memcmp(nc.peers, d->cfg.peers, sizeof(uint32_t) * nc.n_peers) == 0;
        if (!same)
            note(changed, sizeof(changed), "unicast peers");
        memcpy(d->cfg.peers, nc.peers, sizeof(d->cfg.peers)); /* the peer watch reads these */
        d->cfg.n_peers = nc.n_peers;
        d->watch.n_peers = nc.n_peers; /* its allowlist */
    }
    uint64_t now = clock_mono_ms();
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
                                     .primary_ip = d->primary,
                                     .silent_hold_ms =
                                         d->cfg.peer_watch_port ? nc.silent_hold_ms : 0};
        struct vrrp_out o;
        vrrp_fsm_reconfigure(&g->fsm, now, &fc, &o);
        if (vips_changed && g->fsm.state == VRRP_MASTER)
            o.actions |= VRRP_ACT_SEND_ADV | VRRP_ACT_GARP; /* tell the segment now */
        vrrpd_apply(g, &o);
    }
    reload_succeeded(&d->reload);
    vrrpd_reevaluate(d, "reload"); /* the effective priorities, from the new ones */
    vrrpd_state_save(d);
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
void vrrpd_reload(struct vrrpd *d)
{
    reload_begin();
    reload_config(d);
    reload_end(&d->reload, "running");
}
