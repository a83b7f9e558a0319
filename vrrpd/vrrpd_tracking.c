/* vrrpd_tracking.c -- tracked objects: the interface's link (vip.c's netlink watch) and
 * the local lbd (track.c's liveness channel). A change re-evaluates every group: FAULT,
 * or a priority lowered by the tracked lbd's weight. */
#include "vrrpd_int.h"

#include "log.h"
#include "parse.h"

#include <stdio.h>

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
        vrrp_fsm_set_fault(&g->fsm, clock_mono_ms(), fault, graceful, fault ? why : what, &o);
        vrrpd_apply(g, &o);
        int prio = g->prio_override ? (int)g->prio_override : (int)g->cfg.priority;
        if (d->cfg.track_lbd[0] && d->cfg.track_lbd_action == VRRPD_TRACK_WEIGHT && !d->lbd_ok)
            prio -= (int)d->cfg.track_lbd_weight;
        if (prio < 1)
            prio = 1;
        if (prio == 255 && (int)g->cfg.priority != 255)
            prio = 254;
        vrrp_fsm_set_priority(&g->fsm, clock_mono_ms(), (uint8_t)prio, &o);
        vrrpd_apply(g, &o);
    }
    vrrpd_write_state(d);
}

void vrrpd_on_link(void *arg, bool up)
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

void vrrpd_on_lbd(void *arg, bool ok, const char *why)
{
    struct vrrpd *d = arg;
    char q[160];
    d->lbd_ok = ok;
    snprintf(d->lbd_why, sizeof(d->lbd_why), "%s", why);
    log_emit(ok ? LOG_INFO : LOG_WARN, "track", "object=lbd state=%s reason=%s", ok ? "up" : "down",
             log_quote(q, sizeof(q), why));
    vrrpd_reevaluate(d, why);
}
