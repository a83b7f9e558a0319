/* admin.c -- the admin HTTP endpoint (localhost by default, read-only):
 *   GET /health   200 when this lbd can serve (a node up, not draining), else 503
 *   GET /metrics  Prometheus text
 *   GET /status   JSON: the proxy, its counters and every node
 * One request per connection (HTTP/1.0 style); requests over 4 KiB are refused. */
#include "lbd.h"

#include "log.h"
#include "metrics.h"
#include "parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_MAX_REQUEST 4096

struct admin_conn {
    uv_tcp_t tcp; /* data = this */
    uv_timer_t timer;
    uv_write_t wreq;
    struct lbd *lbd;
    char *resp;
    size_t len;
    int handles;
    bool responded;
    char req[ADMIN_MAX_REQUEST];
};

static void conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    if (--c->handles == 0) {
        free(c->resp);
        free(c);
    }
}

static void conn_close(struct admin_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        uv_close((uv_handle_t *)&c->timer, conn_closed);
    }
}

static void on_written(uv_write_t *req, int status)
{
    conn_close(req->data);
}

static void respond(struct admin_conn *c, int code, const char *ctype, const char *body,
                    size_t blen)
{
    const char *text = code == 200   ? "OK"
                       : code == 404 ? "Not Found"
                       : code == 405 ? "Method Not Allowed"
                       : code == 503 ? "Service Unavailable"
                                     : "Bad Request";
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                      code, text, ctype, blen);
    c->responded = true;
    c->resp = malloc((size_t)hl + blen);
    if (c->resp == NULL) {
        conn_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)hl);
    memcpy(c->resp + hl, body, blen);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)((size_t)hl + blen));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        conn_close(c);
}

static void respond_text(struct admin_conn *c, int code, const char *body)
{
    respond(c, code, "text/plain; charset=utf-8", body, strlen(body));
}

static void node_labels(const struct pool_node *n, const char **labels)
{
    labels[0] = "node";
    labels[1] = n->name;
    labels[2] = NULL;
}

void admin_render_metrics(struct lbd *l, struct metrics_buf *m)
{
    const struct lbd_stats *st = &l->stats;
    const char *lab[8];
    metrics_family(m, "lbd_up", METRICS_GAUGE, "1 while lbd runs.");
    metrics_sample(m, NULL, 1);
    metrics_family(m, "lbd_draining", METRICS_GAUGE, "1 while lbd drains for shutdown.");
    metrics_sample(m, NULL, l->draining);
    metrics_family(m, "lbd_sessions", METRICS_GAUGE, "Client sessions open now.");
    metrics_sample(m, NULL, l->n_sessions);
    metrics_family(m, "lbd_sessions_limit", METRICS_GAUGE, "maxconn.");
    metrics_sample(m, NULL, l->cfg.maxconn);
    metrics_family(m, "lbd_sessions_total", METRICS_COUNTER, "Client connections accepted.");
    metrics_sample(m, NULL, (double)st->sessions_total);
    metrics_family(m, "lbd_sessions_relayed_total", METRICS_COUNTER,
                   "Sessions connected to a node.");
    metrics_sample(m, NULL, (double)st->sessions_relayed);
    metrics_family(m, "lbd_refused_total", METRICS_COUNTER, "Sessions refused, by reason.");
    const char *reasons[] = {"maxconn", "no_node", "bad_packet", "connect_failed"};
    const uint64_t refused[] = {st->refused_maxconn, st->refused_no_node,
                                st->refused_bad_packet, st->refused_connect};
    for (int i = 0; i < 4; i++) {
        const char *rl[] = {"reason", reasons[i], NULL};
        metrics_sample(m, rl, (double)refused[i]);
    }
    metrics_family(m, "lbd_timeouts_total", METRICS_COUNTER, "Sessions ended by a timeout.");
    const char *t1[] = {"kind", "startup", NULL}, *t2[] = {"kind", "idle", NULL};
    metrics_sample(m, t1, (double)st->startup_timeouts);
    metrics_sample(m, t2, (double)st->idle_timeouts);
    metrics_family(m, "lbd_cancel_requests_total", METRICS_COUNTER,
                   "CancelRequests, by outcome.");
    const char *outcomes[] = {"routed", "to_peer", "broadcast", "one", "dropped", "failed"};
    const uint64_t cancels[] = {st->cancel_routed, st->cancel_to_peer, st->cancel_broadcast,
                                st->cancel_one, st->cancel_dropped, st->cancel_failed};
    for (int i = 0; i < 6; i++) {
        const char *ol[] = {"outcome", outcomes[i], NULL};
        metrics_sample(m, ol, (double)cancels[i]);
    }
    metrics_family(m, "lbd_bytes_total", METRICS_COUNTER, "Bytes relayed, by direction.");
    const char *d1[] = {"direction", "to_node", NULL}, *d2[] = {"direction", "to_client", NULL};
    metrics_sample(m, d1, (double)st->bytes_in);
    metrics_sample(m, d2, (double)st->bytes_out);
    metrics_family(m, "lbd_config_reloads_total", METRICS_COUNTER, "Configuration reloads.");
    metrics_sample(m, NULL, (double)st->reloads);
    metrics_family(m, "lbd_config_reload_failures_total", METRICS_COUNTER,
                   "Reloads rejected (the old configuration stayed).");
    metrics_sample(m, NULL, (double)st->reload_failures);
    metrics_family(m, "lbd_config_last_reload_successful", METRICS_GAUGE,
                   "0 when the last reload was rejected.");
    metrics_sample(m, NULL, !l->last_reload_failed);
    metrics_family(m, "lbd_start_time_seconds", METRICS_GAUGE, "Start time, Unix seconds.");
    metrics_sample(m, NULL, (double)l->started_ms / 1000.0);

    metrics_family(m, "lbd_node_up", METRICS_GAUGE, "1 when the node takes new sessions.");
    for (size_t i = 0; i < l->pool.n; i++) {
        node_labels(l->pool.nodes[i], lab);
        metrics_sample(m, lab, l->pool.nodes[i]->state == NODE_UP);
    }
    metrics_family(m, "lbd_node_draining", METRICS_GAUGE,
                   "1 when the node's readiness check says it drains.");
    for (size_t i = 0; i < l->pool.n; i++) {
        node_labels(l->pool.nodes[i], lab);
        metrics_sample(m, lab, l->pool.nodes[i]->state == NODE_DRAINING);
    }
    metrics_family(m, "lbd_node_sessions", METRICS_GAUGE, "Sessions on the node now.");
    for (size_t i = 0; i < l->pool.n; i++) {
        node_labels(l->pool.nodes[i], lab);
        metrics_sample(m, lab, l->pool.nodes[i]->active);
    }
    metrics_family(m, "lbd_node_sessions_total", METRICS_COUNTER, "Sessions sent to the node.");
    for (size_t i = 0; i < l->pool.n; i++) {
        node_labels(l->pool.nodes[i], lab);
        metrics_sample(m, lab, (double)l->pool.nodes[i]->sessions_total);
    }
    metrics_family(m, "lbd_node_connect_failures_total", METRICS_COUNTER,
                   "Failed connects to the node.");
    for (size_t i = 0; i < l->pool.n; i++) {
        node_labels(l->pool.nodes[i], lab);
        metrics_sample(m, lab, (double)l->pool.nodes[i]->connect_failures);
    }
    metrics_family(m, "lbd_node_check_failures_total", METRICS_COUNTER,
                   "Failed health checks.");
    for (size_t i = 0; i < l->pool.n; i++) {
        node_labels(l->pool.nodes[i], lab);
        metrics_sample(m, lab, (double)l->pool.nodes[i]->checks_failed);
    }
    metrics_family(m, "lbd_node_check_latency_seconds", METRICS_GAUGE,
                   "Duration of the last health check.");
    for (size_t i = 0; i < l->pool.n; i++) {
        node_labels(l->pool.nodes[i], lab);
        metrics_sample(m, lab, (double)l->pool.nodes[i]->last_check_latency_us / 1e6);
    }
    metrics_family(m, "lbd_node_bytes_total", METRICS_COUNTER, "Bytes relayed, per node.");
    for (size_t i = 0; i < l->pool.n; i++) {
        struct pool_node *n = l->pool.nodes[i];
        const char *a[] = {"node", n->name, "direction", "to_node", NULL};
        const char *b[] = {"node", n->name, "direction", "to_client", NULL};
        metrics_sample(m, a, (double)n->bytes_in);
        metrics_sample(m, b, (double)n->bytes_out);
    }
}

void admin_render_status(struct lbd *l, struct metrics_buf *m)
{
    char ts[40], addr[SOCKADDR_STRLEN];
    const struct lbd_stats *st = &l->stats;
    metrics_printf(m, "{\"daemon\":\"lbd\",\"instance\":");
    metrics_json_str(m, l->cfg.instance);
    metrics_printf(m, ",\"now\":\"%s\"", log_format_ts(lbd_wall_ms(), ts, sizeof(ts)));
    metrics_printf(m, ",\"started\":\"%s\"", log_format_ts(l->started_ms, ts, sizeof(ts)));
    metrics_printf(m, ",\"config_loaded\":\"%s\"",
                   log_format_ts(l->config_loaded_ms, ts, sizeof(ts)));
    metrics_printf(m, ",\"last_reload_failed\":%s,\"last_reload_error\":",
                   l->last_reload_failed ? "true" : "false");
    metrics_json_str(m, l->last_reload_error);
    metrics_printf(m, ",\"draining\":%s,\"healthy\":%s", l->draining ? "true" : "false",
                   (!l->draining && pool_count_eligible(&l->pool) > 0) ? "true" : "false");
    metrics_printf(m, ",\"balance\":\"%s\"", pool_balance_names[l->pool.balance]);
    metrics_printf(m,
                   ",\"sessions\":%u,\"maxconn\":%u,\"sessions_total\":%llu,"
                   "\"sessions_relayed\":%llu,\"bytes_to_node\":%llu,\"bytes_to_client\":%llu",
                   l->n_sessions, l->cfg.maxconn, (unsigned long long)st->sessions_total,
                   (unsigned long long)st->sessions_relayed, (unsigned long long)st->bytes_in,
                   (unsigned long long)st->bytes_out);
    metrics_printf(m,
                   ",\"refused\":{\"maxconn\":%llu,\"no_node\":%llu,\"bad_packet\":%llu,"
                   "\"connect_failed\":%llu}",
                   (unsigned long long)st->refused_maxconn, (unsigned long long)st->refused_no_node,
                   (unsigned long long)st->refused_bad_packet,
                   (unsigned long long)st->refused_connect);
    metrics_printf(m,
                   ",\"cancels\":{\"routed\":%llu,\"to_peer\":%llu,\"broadcast\":%llu,"
                   "\"one\":%llu,\"dropped\":%llu,\"failed\":%llu}",
                   (unsigned long long)st->cancel_routed, (unsigned long long)st->cancel_to_peer,
                   (unsigned long long)st->cancel_broadcast, (unsigned long long)st->cancel_one,
                   (unsigned long long)st->cancel_dropped, (unsigned long long)st->cancel_failed);
    metrics_printf(m, ",\"nodes\":[");
    for (size_t i = 0; i < l->pool.n; i++) {
        struct pool_node *n = l->pool.nodes[i];
        metrics_printf(m, "%s{\"name\":", i ? "," : "");
        metrics_json_str(m, n->name);
        metrics_printf(m, ",\"address\":\"%s\",\"state\":\"%s\",\"since\":\"%s\"",
                       format_sockaddr((struct sockaddr *)&n->addr, addr, sizeof(addr)),
                       node_state_name(n->state), log_format_ts(n->state_since_ms, ts, sizeof(ts)));
        metrics_printf(m,
                       ",\"weight\":%u,\"max_sessions\":%u,\"sessions\":%u,\"sessions_total\":%llu,"
                       "\"bytes_to_node\":%llu,\"bytes_to_client\":%llu,\"connect_failures\":%llu",
                       n->weight, n->max_sessions, n->active,
                       (unsigned long long)n->sessions_total, (unsigned long long)n->bytes_in,
                       (unsigned long long)n->bytes_out, (unsigned long long)n->connect_failures);
        metrics_printf(m,
                       ",\"check\":{\"ok_run\":%u,\"fail_run\":%u,\"rise\":%u,\"fall\":%u,"
                       "\"latency_ms\":%.3f,\"last\":",
                       n->health.ok_run, n->health.fail_run, n->health.rise, n->health.fall,
                       (double)n->last_check_latency_us / 1000.0);
        metrics_json_str(m, n->last_check);
        metrics_printf(m, "}}");
    }
    metrics_printf(m, "]}\n");
}

static void handle(struct admin_conn *c)
{
    struct lbd *l = c->lbd;
    char method[8], path[256];
    if (sscanf(c->req, "%7s %255s", method, path) != 2) {
        respond_text(c, 400, "bad request\n");
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond_text(c, 405, "only GET\n");
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    if (strcmp(path, "/health") == 0) {
        size_t up = pool_count_eligible(&l->pool);
        if (l->draining)
            respond_text(c, 503, "draining\n");
        else if (up == 0)
            respond_text(c, 503, "no node up\n");
        else
            respond_text(c, 200, "ok\n");
        return;
    }
    struct metrics_buf m;
    metrics_init(&m);
    if (strcmp(path, "/metrics") == 0) {
        admin_render_metrics(l, &m);
        if (!m.failed)
            respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", m.data, m.len);
    } else if (strcmp(path, "/status") == 0) {
        admin_render_status(l, &m);
        if (!m.failed)
            respond(c, 200, "application/json", m.data, m.len);
    } else {
        respond_text(c, 404, "not found: try /health, /metrics or /status\n");
    }
    if (m.failed)
        respond_text(c, 503, "out of memory\n");
    metrics_free(&m);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;
    size_t used = strlen(c->req);
    *buf = uv_buf_init(c->req + used, (unsigned)(sizeof(c->req) - 1 - used));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;
    if (c->responded)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    buf->base[nread] = '\0';
    if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
        uv_read_stop(s);
        handle(c);
    } else if (strlen(c->req) >= sizeof(c->req) - 1) {
        uv_read_stop(s);
        respond_text(c, 400, "request too large\n");
    }
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct lbd *l = server->data;
    if (status < 0)
        return;
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->lbd = l;
    c->tcp.data = c->timer.data = c;
    uv_tcp_init(l->loop, &c->tcp);
    uv_timer_init(l->loop, &c->timer);
    c->handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, 5000, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int admin_start(struct lbd *l)
{
    if (!l->cfg.admin_enabled)
        return 0;
    uv_tcp_init(l->loop, &l->admin);
    l->admin.data = l;
    l->admin_open = true;
    int rc = uv_tcp_bind(&l->admin, (struct sockaddr *)&l->cfg.admin, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->admin, 64, on_connection);
    return rc;
}

void admin_stop(struct lbd *l)
{
    if (l->admin_open && !uv_is_closing((uv_handle_t *)&l->admin))
        uv_close((uv_handle_t *)&l->admin, NULL);
    l->admin_open = false;
}
