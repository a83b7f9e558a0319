/* admin.c -- the admin HTTP endpoint (localhost by default, read-only; common/httpd.c):
 *   GET /         the instance's status page (status.html: lbd and vrrpd, live)
 *   GET /health   200 when this lbd can serve (a node up, not draining), else 503
 *   GET /metrics  Prometheus text
 *   GET /status   JSON: the proxy, its counters, every node, this instance's vrrpd (from
 *                 its state file, marked dead when stale) and a per-second history */
#include "lbd.h"
#include "liveness.h"
#include "admin.h"
#include "vrrpd_state.h"
#include "worker.h"

#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void render_history(struct lbd *l, struct metrics_buf *m);
static void render_vrrpd(struct lbd *l, struct metrics_buf *m);

static void node_labels(const struct pool_node *n, const char **labels)
{
    labels[0] = "node";
    labels[1] = n->name;
    labels[2] = NULL;
}

/* The per-node families with one value each, in node_value's order. */
enum node_metric {
    NM_UP,
    NM_ELIGIBLE,
    NM_WEIGHT,
    NM_DRAINING,
    NM_STATE_CHANGES,
    NM_REUSE_IDLE,
    NM_SESSIONS,
    NM_SESSIONS_TOTAL,
    NM_CONNECT_FAILURES,
    NM_CHECK_FAILURES,
    NM_CHECK_LATENCY,
};
static const struct {
    const char *name;
    enum metrics_type type;
    const char *help;
} node_families[] = {
    [NM_UP] = {"lbd_node_up", METRICS_GAUGE,
               "1 when the node's health checks have it up (whether it takes new sessions too: "
               "lbd_node_eligible)."},
    [NM_ELIGIBLE] = {"lbd_node_eligible", METRICS_GAUGE,
                     "1 when the node takes new sessions: up, admin state ready, weight above 0, "
                     "below max_sessions."},
    [NM_WEIGHT] = {"lbd_node_weight", METRICS_GAUGE,
                   "The node's weight (0: never chosen for a new session)."},
    [NM_DRAINING] = {"lbd_node_draining", METRICS_GAUGE,
                     "1 when the node drains: its readiness check says so, or an operator "
                     "(pgvipctl nodes drain)."},
    [NM_STATE_CHANGES] = {"lbd_node_state_changes_total", METRICS_COUNTER,
                          "Node state changes (up, down, draining); a fast rise means flapping."},
    [NM_REUSE_IDLE] = {"lbd_node_reuse_idle", METRICS_GAUGE,
                       "Node connections kept for reuse on the node now."},
    [NM_SESSIONS] = {"lbd_node_sessions", METRICS_GAUGE, "Sessions on the node now."},
    [NM_SESSIONS_TOTAL] = {"lbd_node_sessions_total", METRICS_COUNTER,
                           "Sessions sent to the node."},
    [NM_CONNECT_FAILURES] = {"lbd_node_connect_failures_total", METRICS_COUNTER,
                             "Failed connects to the node."},
    [NM_CHECK_FAILURES] = {"lbd_node_check_failures_total", METRICS_COUNTER,
                           "Failed health checks."},
    [NM_CHECK_LATENCY] = {"lbd_node_check_latency_seconds", METRICS_GAUGE,
                          "Duration of the last health check."},
};

static double node_value(const struct pool_node *n, enum node_metric k)
{
    switch (k) {
    case NM_UP:
        return n->state == NODE_UP;
    case NM_ELIGIBLE:
        return pool_node_eligible(n);
    case NM_WEIGHT:
        return n->weight;
    case NM_DRAINING:
        return pool_node_draining(n);
    case NM_STATE_CHANGES:
        return (double)n->state_changes;
    case NM_REUSE_IDLE:
        return RELAXED(n->parked);
    case NM_SESSIONS:
        return RELAXED(n->active);
    case NM_SESSIONS_TOTAL:
        return (double)RELAXED(n->sessions_total);
    case NM_CONNECT_FAILURES:
        return (double)RELAXED(n->connect_failures);
    case NM_CHECK_FAILURES:
        return (double)n->checks_failed;
    case NM_CHECK_LATENCY:
        return (double)n->last_check_latency_us / 1e6;
    }
    return 0;
}

void admin_render_metrics(struct lbd *l, struct metrics_buf *m)
{
    struct lbd_stats total;
    lbd_stats_total(l, &total);
    const struct lbd_stats *st = &total;
    const char *lab[8];
    metrics_family(m, "lbd_up", METRICS_GAUGE, "1 while lbd runs.");
    metrics_sample(m, NULL, 1);
    metrics_process(m, "lbd", PGVIP_VERSION);
    metrics_family(m, "lbd_draining", METRICS_GAUGE, "1 while lbd drains for shutdown.");
    metrics_sample(m, NULL, l->draining);
    metrics_family(m, "lbd_sessions", METRICS_GAUGE, "Client sessions open now.");
    metrics_sample(m, NULL, RELAXED(l->n_sessions));
    metrics_family(m, "lbd_workers", METRICS_GAUGE,
                   "Event loops relaying sessions (lbd.workers), each on its own thread.");
    metrics_sample(m, NULL, l->n_workers);
    metrics_family(m, "lbd_worker_sessions", METRICS_GAUGE,
                   "Client sessions open now on each event loop.");
    for (unsigned i = 0; i < l->n_workers; i++) {
        char idx[12];
        snprintf(idx, sizeof(idx), "%u", i);
        const char *wl[] = {"worker", idx, NULL};
        metrics_sample(m, wl, RELAXED(l->workers[i].n_sessions));
    }
    metrics_family(m, "lbd_sessions_limit", METRICS_GAUGE, "maxconn.");
    metrics_sample(m, NULL, l->cfg.maxconn);
    metrics_family(m, "lbd_sessions_total", METRICS_COUNTER, "Client connections accepted.");
    metrics_sample(m, NULL, (double)st->sessions_total);
    metrics_family(m, "lbd_sessions_relayed_total", METRICS_COUNTER,
                   "Sessions connected to a node.");
    metrics_sample(m, NULL, (double)st->sessions_relayed);
    metrics_family(m, "lbd_refused_total", METRICS_COUNTER, "Sessions refused, by reason.");
    const char *reasons[] = {"maxconn",        "no_node",     "bad_packet",
                             "connect_failed", "local_limit", "source_busy"};
    const uint64_t refused[] = {st->refused_maxconn, st->refused_no_node, st->refused_bad_packet,
                                st->refused_connect, st->refused_local,   st->refused_source_busy};
    metrics_samples_by(m, "reason", reasons, refused, 6);
    metrics_family(m, "lbd_timeouts_total", METRICS_COUNTER, "Sessions ended by a timeout.");
    const char *t1[] = {"kind", "startup", NULL}, *t2[] = {"kind", "idle", NULL};
    metrics_sample(m, t1, (double)st->startup_timeouts);
    metrics_sample(m, t2, (double)st->idle_timeouts);
    metrics_histogram(m, "lbd_session_connect_seconds",
                      "From a client's accept to lbd's connection to its node, seconds.",
                      &st->connect_s);
    metrics_histogram(m, "lbd_session_duration_seconds",
                      "Client sessions' lives, accept to close, seconds.", &st->duration_s);
    metrics_family(m, "lbd_sessions_drained_total", METRICS_COUNTER,
                   "Sessions of a draining node closed at an idle moment with FATAL 57P01 "
                   "(pool.on_node_drain).");
    metrics_sample(m, NULL, (double)st->drained_at_idle);
    metrics_family(m, "lbd_sessions_killed_total", METRICS_COUNTER,
                   "Sessions an operator killed (pgvipctl sessions kill), by when they ended.");
    const char *kl_idle[] = {"when", "at_idle", NULL}, *kl_now[] = {"when", "now", NULL};
    metrics_sample(m, kl_idle, (double)st->killed_at_idle);
    metrics_sample(m, kl_now, (double)st->killed_now);
    metrics_family(m, "lbd_peer_control_total", METRICS_COUNTER,
                   "Node commands between the pair (lbd.peer.key_file): sent to the peer (and "
                   "failed: not told, or it refused), taken from it, refused from it (a bad "
                   "signature, an old time, a replay), and ones it missed that reached it "
                   "later (caught_up) or that it refused then.");
    const char *pc[] = {"sent",    "send_failed", "taken",
                        "refused", "caught_up",   "caught_up_refused"};
    const uint64_t pv[] = {l->peer_ctl_sent,    l->peer_ctl_failed, l->peer_ctl_taken,
                           l->peer_ctl_refused, l->peer_caught_up,  l->peer_catch_up_refused};
    metrics_samples_by(m, "outcome", pc, pv, 6);
    metrics_family(m, "lbd_peer_control_pending", METRICS_GAUGE,
                   "Node commands the peer lbd missed (down, out of reach), sent again every "
                   "2 s until it takes them: the pair disagrees on these nodes meanwhile.");
    metrics_sample(m, NULL, (double)l->n_peer_pending);
    metrics_family(m, "lbd_state_file_failures_total", METRICS_COUNTER,
                   "Writes of lbd.control.state_file that failed: pgvipctl's changes since "
                   "would not survive a restart.");
    metrics_sample(m, NULL, (double)l->state_file_failed);
    metrics_family(m, "lbd_control_commands_total", METRICS_COUNTER,
                   "Commands on the control socket, by result.");
    const char *cl_ok[] = {"result", "ok", NULL}, *cl_err[] = {"result", "error", NULL};
    metrics_sample(m, cl_ok, (double)(l->control.commands - l->control.errors));
    metrics_sample(m, cl_err, (double)l->control.errors);
    metrics_family(m, "lbd_sessions_drain_deadline_total", METRICS_COUNTER,
                   "Busy sessions of a draining node ended at pool.drain_deadline.");
    metrics_sample(m, NULL, (double)st->drain_deadline_ended);
    metrics_family(m, "lbd_cancel_requests_total", METRICS_COUNTER, "CancelRequests, by outcome.");
    const char *outcomes[] = {"routed", "to_peer", "broadcast", "one", "dropped", "failed"};
    const uint64_t cancels[] = {st->cancel_routed, st->cancel_to_peer, st->cancel_broadcast,
                                st->cancel_one,    st->cancel_dropped, st->cancel_failed};
    metrics_samples_by(m, "outcome", outcomes, cancels, 6);
    metrics_family(m, "lbd_cancel_limited_total", METRICS_COUNTER,
                   "CancelRequests dropped before any connection, by the bound that dropped them "
                   "(lbd.limits).");
    for (int v = GUARD_DUPLICATE; v <= GUARD_INFLIGHT; v++) {
        const char *vl[] = {"reason", guard_verdict_names[v], NULL};
        metrics_sample(m, vl, (double)l->guard.verdicts[v]);
    }
    metrics_family(m, "lbd_cancel_inflight", METRICS_GAUGE,
                   "CancelRequest connections open now (limits.cancel_inflight bounds them).");
    metrics_sample(m, NULL, l->guard.inflight);
    metrics_family(m, "lbd_peer_refused_total", METRICS_COUNTER,
                   "Connections to the peer cancel listener from another address than "
                   "lbd.peer.address, reset.");
    metrics_sample(m, NULL, (double)st->cancel_peer_refused);
    metrics_family(m, "lbd_accept_failed_total", METRICS_COUNTER,
                   "Connections accepted and closed at once: lbd out of descriptors or memory.");
    metrics_sample(m, NULL, (double)st->accept_failed);
    metrics_family(m, "lbd_checks_skipped_total", METRICS_COUNTER,
                   "Health checks lbd could not start for its own lack of descriptors, memory or "
                   "ports; not counted against the node.");
    metrics_sample(m, NULL, (double)st->checks_skipped_local);
    metrics_family(m, "lbd_timeouts_late_total", METRICS_COUNTER,
                   "Timeouts of a node's (a health check; a session's connect or the node's "
                   "answer) that fired while the answer was already waiting, lbd's loop "
                   "having run late: the answer was read instead of failing the node.");
    const char *k1[] = {"kind", "check", NULL}, *k2[] = {"kind", "session", NULL};
    metrics_sample(m, k1, (double)st->checks_late);
    metrics_sample(m, k2, (double)st->node_timeouts_late);
    metrics_family(m, "lbd_bytes_total", METRICS_COUNTER, "Bytes relayed, by direction.");
    const char *d1[] = {"direction", "to_node", NULL}, *d2[] = {"direction", "to_client", NULL};
    metrics_sample(m, d1, (double)st->bytes_in);
    metrics_sample(m, d2, (double)st->bytes_out);
    metrics_family(m, "lbd_splice_transfers_total", METRICS_COUNTER,
                   "Bulk transfers (256 KiB one way with nothing the other way) relayed "
                   "with splice(2), without copying through lbd.");
    metrics_sample(m, NULL, (double)st->bulk_started);
    metrics_family(m, "lbd_splice_bytes_total", METRICS_COUNTER,
                   "Bytes relayed with splice(2), either way (also in lbd_bytes_total).");
    metrics_sample(m, NULL, (double)st->bulk_bytes);
    metrics_family(m, "lbd_splice_refused_total", METRICS_COUNTER,
                   "Bulk transfers that could not be spliced (out of descriptors) and were "
                   "copied instead.");
    metrics_sample(m, NULL, (double)st->bulk_failed);
    metrics_family(m, "lbd_reuse_idle", METRICS_GAUGE,
                   "Node connections kept for reuse now (pool.reuse), resetting or idle.");
    metrics_sample(m, NULL, (double)RELAXED(l->n_parked));
    metrics_family(m, "lbd_reuse_parked_total", METRICS_COUNTER,
                   "Node connections kept for reuse when their client left cleanly.");
    metrics_sample(m, NULL, (double)st->reuse_parked);
    metrics_family(m, "lbd_reuse_taken_total", METRICS_COUNTER,
                   "Sessions served by a kept node connection (no new backend).");
    metrics_sample(m, NULL, (double)st->reuse_taken);
    metrics_family(m, "lbd_reuse_reset_failed_total", METRICS_COUNTER,
                   "Kept connections closed because DISCARD ALL did not answer as expected.");
    metrics_sample(m, NULL, (double)st->reuse_reset_failed);
    metrics_family(m, "lbd_reuse_expired_total", METRICS_COUNTER,
                   "Kept connections closed after pool.reuse.idle without a taker.");
    metrics_sample(m, NULL, (double)st->reuse_expired);
    reload_metrics(m, "lbd", &l->reload);
    metrics_family(m, "lbd_admin_rejected_total", METRICS_COUNTER,
                   "Admin connections closed unserved (too many from one address, or no memory).");
    metrics_sample(m, NULL, (double)l->admin.rejected);
    metrics_family(m, "lbd_admin_evicted_total", METRICS_COUNTER,
                   "Idle admin connections closed to make room for a new one (all were taken).");
    metrics_sample(m, NULL, (double)l->admin.evicted);
    metrics_family(m, "lbd_liveness_watchers", METRICS_GAUGE,
                   "vrrpd processes connected to the liveness socket (tracking this lbd).");
    metrics_sample(m, NULL, (double)liveness_watchers(l));
    metrics_family(m, "lbd_start_time_seconds", METRICS_GAUGE, "Start time, Unix seconds.");
    metrics_sample(m, NULL, (double)l->started_ms / 1000.0);

    for (size_t k = 0; k < sizeof(node_families) / sizeof(node_families[0]); k++) {
        metrics_family(m, node_families[k].name, node_families[k].type, node_families[k].help);
        for (size_t i = 0; i < l->nodes.pool.n; i++) {
            node_labels(l->nodes.pool.nodes[i], lab);
            metrics_sample(m, lab, node_value(l->nodes.pool.nodes[i], (enum node_metric)k));
        }
    }
    metrics_family(m, "lbd_node_admin", METRICS_GAUGE,
                   "1 for the node's admin state (ready, drain, disabled; pgvipctl).");
    for (size_t i = 0; i < l->nodes.pool.n; i++) {
        const struct pool_node *n = l->nodes.pool.nodes[i];
        for (int a = NODE_ADMIN_READY; a <= NODE_ADMIN_DISABLED; a++) {
            const char *al[] = {"node", n->name, "state", node_admin_name((enum node_admin)a),
                                NULL};
            metrics_sample(m, al, n->admin == (enum node_admin)a);
        }
    }
    metrics_family(m, "lbd_node_bytes_total", METRICS_COUNTER, "Bytes relayed, per node.");
    for (size_t i = 0; i < l->nodes.pool.n; i++) {
        struct pool_node *n = l->nodes.pool.nodes[i];
        const char *a[] = {"node", n->name, "direction", "to_node", NULL};
        const char *b[] = {"node", n->name, "direction", "to_client", NULL};
        metrics_sample(m, a, (double)RELAXED(n->bytes_in));
        metrics_sample(m, b, (double)RELAXED(n->bytes_out));
    }
}

void admin_render_status(struct lbd *l, struct metrics_buf *m)
{
    char ts[40], addr[SOCKADDR_STRLEN];
    struct lbd_stats total;
    lbd_stats_total(l, &total);
    const struct lbd_stats *st = &total;
    metrics_printf(m, "{\"daemon\":\"lbd\",\"instance\":");
    metrics_json_str(m, l->cfg.instance);
    uint64_t now_ms = clock_wall_ms();
    metrics_printf(m, ",\"now\":\"%s\",\"now_ms\":%llu", log_format_ts(now_ms, ts, sizeof(ts)),
                   (unsigned long long)now_ms);
    metrics_printf(m, ",\"started\":\"%s\"", log_format_ts(l->started_ms, ts, sizeof(ts)));
    metrics_printf(m, ",\"config_loaded\":\"%s\"",
                   log_format_ts(l->config_loaded_ms, ts, sizeof(ts)));
    reload_json(m, &l->reload);
    metrics_printf(m, ",\"draining\":%s,\"healthy\":%s", l->draining ? "true" : "false",
                   (!l->draining && pool_count_eligible(&l->nodes.pool) > 0) ? "true" : "false");
    metrics_printf(m, ",\"balance\":\"%s\"", pool_balance_names[l->nodes.pool.balance]);
    /* The event loops (lbd.workers): each one's client sessions and kept connections. */
    metrics_printf(m, ",\"workers\":[");
    for (unsigned i = 0; i < l->n_workers; i++)
        metrics_printf(m, "%s{\"sessions\":%u,\"parked\":%u}", i ? "," : "",
                       RELAXED(l->workers[i].n_sessions), RELAXED(l->workers[i].n_parked));
    metrics_printf(m, "]");
    metrics_printf(m,
                   ",\"sessions\":%u,\"maxconn\":%u,\"sessions_total\":%llu,"
                   "\"sessions_relayed\":%llu,\"bytes_to_node\":%llu,\"bytes_to_client\":%llu",
                   RELAXED(l->n_sessions), l->cfg.maxconn, (unsigned long long)st->sessions_total,
                   (unsigned long long)st->sessions_relayed, (unsigned long long)st->bytes_in,
                   (unsigned long long)st->bytes_out);
    metrics_printf(m,
                   ",\"refused\":{\"maxconn\":%llu,\"no_node\":%llu,\"bad_packet\":%llu,"
                   "\"connect_failed\":%llu,\"local_limit\":%llu,\"source_busy\":%llu}",
                   (unsigned long long)st->refused_maxconn, (unsigned long long)st->refused_no_node,
                   (unsigned long long)st->refused_bad_packet,
                   (unsigned long long)st->refused_connect, (unsigned long long)st->refused_local,
                   (unsigned long long)st->refused_source_busy);
    metrics_printf(m,
                   ",\"cancels\":{\"routed\":%llu,\"to_peer\":%llu,\"broadcast\":%llu,"
                   "\"one\":%llu,\"dropped\":%llu,\"failed\":%llu,\"limited\":%llu}",
                   (unsigned long long)st->cancel_routed, (unsigned long long)st->cancel_to_peer,
                   (unsigned long long)st->cancel_broadcast, (unsigned long long)st->cancel_one,
                   (unsigned long long)st->cancel_dropped, (unsigned long long)st->cancel_failed,
                   (unsigned long long)st->cancel_limited);
    metrics_printf(m,
                   ",\"reuse\":{\"max_idle\":%u,\"idle_ms\":%llu,\"kept\":%u,\"parked\":%llu,"
                   "\"taken\":%llu,\"reset_failed\":%llu,\"expired\":%llu}",
                   l->cfg.reuse_max_idle, (unsigned long long)l->cfg.reuse_idle_ms,
                   RELAXED(l->n_parked), (unsigned long long)st->reuse_parked,
                   (unsigned long long)st->reuse_taken, (unsigned long long)st->reuse_reset_failed,
                   (unsigned long long)st->reuse_expired);
    metrics_printf(m, ",\"nodes\":[");
    for (size_t i = 0; i < l->nodes.pool.n; i++) {
        struct pool_node *n = l->nodes.pool.nodes[i];
        metrics_printf(m, "%s{\"name\":", i ? "," : "");
        metrics_json_str(m, n->name);
        metrics_printf(m, ",\"address\":\"%s\",\"state\":\"%s\",\"since\":\"%s\"",
                       format_sockaddr((struct sockaddr *)&n->addr, addr, sizeof(addr)),
                       node_state_name(n->state), log_format_ts(n->state_since_ms, ts, sizeof(ts)));
        metrics_printf(m,
                       ",\"weight\":%u,\"max_sessions\":%u,\"sessions\":%u,\"sessions_total\":%llu,"
                       "\"bytes_to_node\":%llu,\"bytes_to_client\":%llu,\"connect_failures\":%llu",
                       n->weight, n->max_sessions, RELAXED(n->active),
                       (unsigned long long)RELAXED(n->sessions_total),
                       (unsigned long long)RELAXED(n->bytes_in),
                       (unsigned long long)RELAXED(n->bytes_out),
                       (unsigned long long)RELAXED(n->connect_failures));
        metrics_printf(m, ",\"state_changes\":%llu,\"reuse_kept\":%u",
                       (unsigned long long)n->state_changes, RELAXED(n->parked));
        /* Whether a new session may go there, and if not, why (an "up" node with weight 0
         * takes none: the page must not show it as serving). */
        const char *why = pool_node_eligible(n)          ? "yes"
                          : n->admin != NODE_ADMIN_READY ? node_admin_name(n->admin)
                          : n->state != NODE_UP          ? node_state_name(n->state)
                          : n->weight == 0               ? "weight 0"
                          : n->max_sessions && RELAXED(n->active) >= n->max_sessions ? "full"
                                                                                     : "no";
        metrics_printf(m, ",\"new_sessions\":\"%s\",\"admin\":\"%s\",\"weight_file\":%u", why,
                       node_admin_name(n->admin), n->weight_cfg);
        metrics_printf(m,
                       ",\"check\":{\"ok_run\":%u,\"fail_run\":%u,\"rise\":%u,\"fall\":%u,"
                       "\"latency_ms\":%.3f,\"last\":",
                       n->health.ok_run, n->health.fail_run, n->health.rise, n->health.fall,
                       (double)n->last_check_latency_us / 1000.0);
        metrics_json_str(m, n->last_check);
        metrics_printf(m, "}}");
    }
    metrics_printf(m, "]");
    metrics_printf(m, ",\"admin\":{\"requests\":%llu,\"rejected\":%llu}",
                   (unsigned long long)l->admin.requests, (unsigned long long)l->admin.rejected);
    render_history(l, m);
    render_vrrpd(l, m);
    metrics_printf(m, "}\n");
}

/* ---- this instance's vrrpd, as its state file shows it ---- */

/* vrrpd rewrites its state file every 500 ms; older than this, it is dead or hung. */
#define VRRPD_STALE_MS 2000
#define VRRPD_STATE_MAX (64 * 1024)

/* ,"vrrpd":{"alive":..,"why":..,"age_ms":..,"watching":N,"state":{...}|null} */
static void render_vrrpd(struct lbd *l, struct metrics_buf *m)
{
    const char *path = l->cfg.vrrpd_state_file;
    metrics_printf(m, ",\"vrrpd\":");
    if (path[0] == '\0') {
        metrics_printf(m, "null");
        return;
    }
    char why[300] = "";
    long long age = -1;
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(why, sizeof(why), "no state file %s: %s", path, strerror(errno));
    } else {
        text = malloc(VRRPD_STATE_MAX + 1);
        if (text)
            len = fread(text, 1, VRRPD_STATE_MAX, f);
        fclose(f);
        while (text && len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
            len--;
        struct vrrpd_state_info st;
        if (text)
            text[len] = '\0';
        if (text == NULL || len < 2 || text[0] != '{' || text[len - 1] != '}' ||
            vrrpd_state_parse(path, text, &st, why, sizeof(why)) != 0) {
            if (why[0] == '\0')
                snprintf(why, sizeof(why), "state file %s is not vrrpd's JSON", path);
            len = 0;
        } else {
            age = st.updated_ms > 0 ? (long long)clock_wall_ms() - st.updated_ms : -1;
            if (!st.running)
                snprintf(why, sizeof(why), "vrrpd stopped");
            else if (st.pid > 0 && kill((pid_t)st.pid, 0) != 0 && errno == ESRCH)
                snprintf(why, sizeof(why), "vrrpd (pid %lld) is gone", st.pid);
            else if (age < 0 || age > VRRPD_STALE_MS)
                snprintf(why, sizeof(why),
                         "vrrpd has not updated its state for %.1f s: hung or dead",
                         (double)age / 1000.0);
        }
    }
    metrics_printf(m, "{\"alive\":%s,\"why\":", why[0] ? "false" : "true");
    metrics_json_str(m, why);
    metrics_printf(m, ",\"age_ms\":%lld,\"watching\":%zu,\"adverts_wall_ms\":{", age,
                   liveness_watchers(l));
    for (int v = 0, n = 0; v < 256; v++)
        if (l->vrrp_advert_ms[v])
            metrics_printf(m, "%s\"%d\":%llu", n++ ? "," : "", v,
                           (unsigned long long)l->vrrp_advert_ms[v]);
    metrics_printf(m, "},\"state\":");
    if (len > 0 && text != NULL)
        metrics_printf(m, "%s", text);
    else
        metrics_printf(m, "null");
    metrics_printf(m, "}");
    free(text);
}

/* ---- a per-second history for the page's chart ---- */

static uint64_t refused_total(const struct lbd_stats *st)
{
    return st->refused_maxconn + st->refused_no_node + st->refused_bad_packet +
           st->refused_connect + st->refused_local + st->refused_source_busy;
}

static uint64_t node_connect_failures(const struct lbd *l)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < l->nodes.pool.n; i++)
        sum += RELAXED(l->nodes.pool.nodes[i]->connect_failures);
    return sum;
}

static uint32_t delta(uint64_t now, uint64_t *prev)
{
    uint64_t d = now >= *prev ? now - *prev : 0;
    *prev = now;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void on_history_tick(uv_timer_t *t)
{
    struct lbd *l = t->data;
    struct lbd_sample *s = &l->history[l->history_n % LBD_HISTORY];
    struct lbd_stats total;
    lbd_stats_total(l, &total);
    s->sessions = RELAXED(l->n_sessions);
    s->opened = delta(total.sessions_total, &l->history_prev[0]);
    s->refused = delta(refused_total(&total), &l->history_prev[1]);
    s->connect_failures = delta(node_connect_failures(l), &l->history_prev[2]);
    l->history_n++;
}

static void render_history(struct lbd *l, struct metrics_buf *m)
{
    size_t n = l->history_n < LBD_HISTORY ? l->history_n : LBD_HISTORY;
    size_t first = l->history_n - n;
    static const char *const names[] = {"sessions", "opened", "refused", "connect_failures"};
    metrics_printf(m, ",\"history\":{\"interval_s\":1");
    for (int k = 0; k < 4; k++) {
        metrics_printf(m, ",\"%s\":[", names[k]);
        for (size_t i = 0; i < n; i++) {
            const struct lbd_sample *s = &l->history[(first + i) % LBD_HISTORY];
            uint32_t v = k == 0   ? s->sessions
                         : k == 1 ? s->opened
                         : k == 2 ? s->refused
                                  : s->connect_failures;
            metrics_printf(m, "%s%u", i ? "," : "", v);
        }
        metrics_printf(m, "]");
    }
    metrics_printf(m, "}");
}

/* ---- the endpoint ---- */

extern const char lbd_status_html[]; /* status.html, embedded at build time */
extern const size_t lbd_status_html_len;

static void handle(void *ctx, const char *path, const char *query, struct httpd_reply *r)
{
    (void)query;
    struct lbd *l = ctx;
    if (strcmp(path, "/health") == 0) {
        size_t up = pool_count_eligible(&l->nodes.pool);
        if (l->draining)
            httpd_text(r, 503, "draining\n");
        else if (up == 0)
            httpd_text(r, 503, "no node up\n");
        else
            httpd_text(r, 200, "ok\n");
    } else if (strcmp(path, "/metrics") == 0) {
        r->ctype = "text/plain; version=0.0.4; charset=utf-8";
        admin_render_metrics(l, &r->body);
    } else if (strcmp(path, "/status") == 0) {
        r->ctype = "application/json";
        admin_render_status(l, &r->body);
    } else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        r->ctype = "text/html; charset=utf-8";
        metrics_printf(&r->body, "%.*s", (int)lbd_status_html_len, lbd_status_html);
    } else {
        httpd_text(r, 404, "not found: try /, /health, /metrics or /status\n");
    }
}

int admin_start(struct lbd *l)
{
    if (!l->cfg.admin_enabled)
        return 0;
    uv_timer_init(l->loop, &l->history_timer);
    l->history_timer.data = l;
    l->history_on = true;
    struct lbd_stats total;
    lbd_stats_total(l, &total);
    l->history_prev[0] = total.sessions_total;
    l->history_prev[1] = refused_total(&total);
    l->history_prev[2] = node_connect_failures(l);
    uv_timer_start(&l->history_timer, on_history_tick, 1000, 1000);
    return httpd_start(&l->admin, l->loop, (struct sockaddr *)&l->cfg.admin, handle, l);
}

void admin_stop(struct lbd *l)
{
    httpd_stop(&l->admin);
    if (l->history_on)
        uv_close((uv_handle_t *)&l->history_timer, NULL);
    l->history_on = false;
}
