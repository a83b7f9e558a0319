/* checker.c -- asynchronous health checks, one runner per node.
 *
 *   tcp:  the node accepts a TCP connection.
 *   pg:   a real StartupMessage; an authentication request or AuthenticationOk ...
 *         ReadyForQuery means up. Quiet for the node: after a password request the
 *         check closes without a word (PostgreSQL logs nothing for that), after
 *         ReadyForQuery it sends Terminate (haproxy #70 logs an error per check).
 *   http: CockroachDB's GET /health?ready=1 on its HTTP port: 200 up, 503 draining.
 *
 * Results go through node_result() (node.h) (rise/fall damping in health.c). */
#include "lbd.h"
#include "checker.h"
#include "worker.h"

#include "fault.h"
#include "log.h"
#include "parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct check {
    uv_timer_t timer; /* data = this; interval between checks, then the check's timeout */
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct lbd *lbd;
    struct pool_node *node;
    int handles;
    bool probing, tcp_open, stopping;
    bool ok, draining; /* result of the probe being closed */
    bool local;        /* it failed for a reason of lbd's own: no result for the node */
    bool connected;    /* the probe's connect has completed */
    bool late_read;    /* its timeout found an answer waiting and gave the loop a turn */
    uint64_t t0_ns;
    size_t rlen;
    uint8_t wbuf[512];
    uint8_t rbuf[2048];
    char reason[128];
};

static void probe_start(uv_timer_t *t);

static void check_closed(uv_handle_t *h)
{
    struct check *c = h->data;
    if (--c->handles > 0)
        return;
    struct pool_node *n = c->node;
    free(c);
    node_unref(n);
}

static void schedule(struct check *c, uint64_t delay)
{
    if (!c->stopping)
        uv_timer_start(&c->timer, probe_start, delay, 0);
}

static void probe_closed(uv_handle_t *h)
{
    struct check *c = h->data;
    struct pool_node *n = c->node;
    c->tcp_open = false;
    c->probing = false;
    if (c->stopping) {
        check_closed(h);
        return;
    }
    c->handles--;
    if (c->local) {
        /* Out of descriptors, memory or local ports here: the node is not to blame,
         * and its state stays as it is until a check can run. */
        struct lbd *l = c->lbd;
        unsigned long long held;
        c->local = false;
        STAT_INC(l->workers[0].stats.checks_skipped_local);
        if (log_limit_pass(&l->lim_check, clock_wall_ms(), &held))
            log_emit(LOG_WARN, "check_skipped",
                     "node=%s error=\"%s\" held_back=%llu "
                     "detail=\"lbd's own limit, not the node's\"",
                     n->name, c->reason, held);
        schedule(c, l->cfg.check_interval_ms);
        return;
    }
    n->last_check_ms = clock_wall_ms();
    n->last_check_latency_us = (uv_hrtime() - c->t0_ns) / 1000;
    snprintf(n->last_check, sizeof(n->last_check), "%s", c->reason);
    if (!c->ok)
        n->checks_failed++;
    node_result(&c->lbd->nodes, n, c->ok, c->draining, c->reason);
    schedule(c, c->lbd->cfg.check_interval_ms);
}

static void probe_finish(struct check *c, bool ok, bool draining, const char *reason)
{
    if (!c->probing || !c->tcp_open || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->ok = ok;
    c->draining = draining;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, probe_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct check *c = h->data;
    size_t room = sizeof(c->rbuf) - c->rlen;
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)room);
}

static void pg_answer(struct check *c)
{
    struct pgwire_check r;
    char reason[160];
    switch (pgwire_check_parse(c->rbuf, c->rlen, &r)) {
    case PGWIRE_CHECK_INCOMPLETE:
        if (c->rlen == sizeof(c->rbuf))
            probe_finish(c, false, false, "answer too long");
        return;
    case PGWIRE_CHECK_ALIVE:
        probe_finish(c, true, false, "pg: authentication requested");
        return;
    case PGWIRE_CHECK_READY: {
        uint8_t x[5];
        uv_buf_t b = uv_buf_init((char *)x, (unsigned)pgwire_terminate_build(x, sizeof(x)));
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        probe_finish(c, true, false, "pg: ready for query");
        return;
    }
    case PGWIRE_CHECK_ERROR:
        /* An authentication failure still proves the server takes sessions; the
         * operator should fix the check user, and the reason says so. */
        snprintf(reason, sizeof(reason), "pg: error %s: %s", r.sqlstate, r.message);
        probe_finish(c, strncmp(r.sqlstate, "28", 2) == 0, false, reason);
        return;
    case PGWIRE_CHECK_BAD:
        probe_finish(c, false, false, "pg: the answer is not PostgreSQL's");
        return;
    }
}

static void http_answer(struct check *c)
{
    char *eol = memchr(c->rbuf, '\n', c->rlen);
    char reason[160];
    if (eol == NULL) {
        if (c->rlen == sizeof(c->rbuf))
            probe_finish(c, false, false, "http: status line too long");
        return;
    }
    int major, minor, status;
    if (sscanf((char *)c->rbuf, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
        probe_finish(c, false, false, "http: not an HTTP answer");
        return;
    }
    snprintf(reason, sizeof(reason), "http: %d", status);
    if (status >= 200 && status < 300)
        probe_finish(c, true, false, reason);
    else if (status == 503)
        probe_finish(c, false, true, "http: 503 (draining or not ready)");
    else
        probe_finish(c, false, false, reason);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct check *c = s->data;
    if (nread < 0) {
        probe_finish(c, false, false,
                     nread == UV_EOF ? "closed by the node" : uv_strerror((int)nread));
        return;
    }
    c->rlen += (size_t)nread;
    if (c->lbd->cfg.check_type == LBD_CHECK_PG)
        pg_answer(c);
    else
        http_answer(c);
}

static void on_written(uv_write_t *req, int status)
{
    struct check *c = req->data;
    if (status < 0)
        probe_finish(c, false, false, uv_strerror(status));
}

static void on_connect(uv_connect_t *req, int status)
{
    struct check *c = req->data;
    const struct lbd_config *cfg = &c->lbd->cfg;
    char reason[128];
    if (status == UV_ECANCELED)
        return;
    if (status < 0) {
        snprintf(reason, sizeof(reason), "connect: %s", uv_strerror(status));
        c->local = lbd_error_is_local(status);
        probe_finish(c, false, false, reason);
        return;
    }
    c->connected = true;
    size_t len = 0;
    if (cfg->check_type == LBD_CHECK_TCP) {
        probe_finish(c, true, false, "tcp: connected");
        return;
    } else if (cfg->check_type == LBD_CHECK_PG) {
        const char *params[] = {"user",
                                cfg->pg_user,
                                "database",
                                cfg->pg_database,
                                "application_name",
                                "lbd-healthcheck",
                                NULL};
        len = pgwire_startup_build(c->wbuf, sizeof(c->wbuf), params);
    } else {
        char host[SOCKADDR_STRLEN];
        int w = snprintf((char *)c->wbuf, sizeof(c->wbuf),
                         "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: lbd\r\nConnection: close"
                         "\r\n\r\n",
                         cfg->http_path,
                         format_ip((struct sockaddr *)&c->node->addr, host, sizeof(host)));
        len = w > 0 && (size_t)w < sizeof(c->wbuf) ? (size_t)w : 0;
    }
    if (len == 0) {
        probe_finish(c, false, false, "check request does not fit");
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        probe_finish(c, false, false, "cannot start the check");
        return;
    }
    if (fault_hit("check_stall")) /* (tests: this loop kept busy past the check's timeout) */
        usleep((useconds_t)(cfg->check_timeout_ms + 300) * 1000);
}

/* A timeout that finds the node's answer waiting gives the loop one turn to read it
 * (lbd.h: lbd_io_waiting; counted in lbd_timeouts_late_total{kind="check"}). */
static void probe_timeout(uv_timer_t *t)
{
    struct check *c = t->data;
    if (!c->late_read && lbd_io_waiting((uv_handle_t *)&c->tcp, !c->connected)) {
        c->late_read = true;
        STAT_INC(c->lbd->workers[0].stats.checks_late);
        uv_timer_start(&c->timer, probe_timeout, 1, 0); /* (after this turn's poll) */
        return;
    }
    char reason[64];
    snprintf(reason, sizeof(reason), "timeout after %llums",
             (unsigned long long)c->lbd->cfg.check_timeout_ms);
    probe_finish(c, false, false, reason);
}

static void probe_start(uv_timer_t *t)
{
    struct check *c = t->data;
    struct lbd *l = c->lbd;
    struct sockaddr_storage addr = c->node->addr;
    if (c->stopping || c->probing)
        return;
    if (l->cfg.check_type == LBD_CHECK_HTTP) {
        uint16_t port = c->node->check_port ? c->node->check_port : (uint16_t)l->cfg.http_port;
        if (addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&addr)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)&addr)->sin6_port = htons(port);
    }
    c->probing = true;
    c->connected = c->late_read = false;
    c->rlen = 0;
    c->t0_ns = uv_hrtime();
    uv_tcp_init(l->loop, &c->tcp);
    c->handles++;
    c->tcp_open = true;
    c->creq.data = c;
    uv_timer_start(&c->timer, probe_timeout, l->cfg.check_timeout_ms, 0);
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&addr, on_connect);
    if (rc != 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "connect: %s", uv_strerror(rc));
        c->local = lbd_error_is_local(rc);
        probe_finish(c, false, false, reason);
    }
}

int check_start(struct lbd *l, struct pool_node *n)
{
    if (l->cfg.check_type == LBD_CHECK_NONE)
        return 0;
    struct check *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->lbd = l;
    c->node = n;
    c->timer.data = c->tcp.data = c;
    uv_timer_init(l->loop, &c->timer);
    c->handles = 1;
    n->check = c;
    /* First check at once, spread a little so nodes are not checked in lockstep. */
    schedule(c, worker_random(&l->workers[0]) % 50);
    return 0;
}

void check_stop(struct lbd *l, struct pool_node *n)
{
    struct check *c = n->check;
    if (c == NULL || c->stopping)
        return;
    c->stopping = true;
    /* The node is free for a new check at once (a reload that changes the check type
     * starts one now); this one holds a reference until its handles are closed. */
    node_ref(n);
    lbd_lock(l);
    n->check = NULL; /* (node_unref reads it under the lock) */
    lbd_unlock(l);
    uv_timer_stop(&c->timer);
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, check_closed);
    uv_close((uv_handle_t *)&c->timer, check_closed);
}
