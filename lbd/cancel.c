/* cancel.c -- routing CancelRequests.
 *
 * A CancelRequest carries the (pid, secret key) the node sent in BackendKeyData. lbd
 * records those keys as it relays (session.c), so a cancel for a session here goes to
 * that session's node. A key unknown here may belong to a session on the peer lbd of
 * the pair (the client opened its cancel connection to the other VIP): forward it to
 * the peer's cancel listener, which routes it but never forwards it again. A key
 * nobody knows follows the pool's policy: `all` healthy nodes (PostgreSQL ignores a
 * wrong key), `one` node (CockroachDB forwards to the right node itself and
 * rate-limits failed cancels), or `drop`. */
#include "lbd.h"

#include "log.h"
#include "parse.h"

#include <stdlib.h>
#include <string.h>

struct cancel_fwd {
    uv_tcp_t tcp; /* data = this */
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    struct lbd *lbd;
    uint8_t pkt[16];
    uint32_t pid, key;
    bool to_peer; /* on failure, apply the unknown-key policy here instead */
    bool done;
    int handles;
    char target[SOCKADDR_STRLEN];
    char client[SOCKADDR_STRLEN];
};

static void cancel_unknown(struct lbd *l, uint32_t pid, uint32_t key, const char *client);

static void fwd_closed(uv_handle_t *h)
{
    struct cancel_fwd *f = h->data;
    if (--f->handles == 0)
        free(f);
}

static void fwd_finish(struct cancel_fwd *f, int status)
{
    if (f->done)
        return;
    f->done = true;
    if (status < 0) {
        f->lbd->stats.cancel_failed++;
        log_emit(LOG_WARN, "cancel_failed", "pid=%u target=%s error=\"%s\"", f->pid, f->target,
                 uv_strerror(status));
        if (f->to_peer)
            cancel_unknown(f->lbd, f->pid, f->key, f->client);
    }
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, fwd_closed);
    uv_close((uv_handle_t *)&f->tcp, fwd_closed);
}

static void fwd_written(uv_write_t *req, int status)
{
    fwd_finish(req->data, status);
}

static void fwd_connected(uv_connect_t *req, int status)
{
    struct cancel_fwd *f = req->data;
    if (f->done)
        return;
    if (status < 0) {
        fwd_finish(f, status);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)f->pkt, sizeof(f->pkt));
    f->wreq.data = f;
    int rc = uv_write(&f->wreq, (uv_stream_t *)&f->tcp, &b, 1, fwd_written);
    if (rc)
        fwd_finish(f, rc);
}

static void fwd_timeout(uv_timer_t *t)
{
    fwd_finish(t->data, UV_ETIMEDOUT);
}

/* Send one CancelRequest to addr on its own connection. */
static void fwd_start(struct lbd *l, const struct sockaddr_storage *addr, uint32_t pid,
                      uint32_t key, bool to_peer, const char *client)
{
    struct cancel_fwd *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        l->stats.cancel_failed++;
        return;
    }
    f->lbd = l;
    f->pid = pid;
    f->key = key;
    f->to_peer = to_peer;
    f->tcp.data = f->timer.data = f->creq.data = f;
    format_sockaddr((const struct sockaddr *)addr, f->target, sizeof(f->target));
    snprintf(f->client, sizeof(f->client), "%s", client);
    pgwire_cancel_build(f->pkt, sizeof(f->pkt), pid, key);
    uv_tcp_init(l->loop, &f->tcp);
    uv_timer_init(l->loop, &f->timer);
    f->handles = 2;
    uv_timer_start(&f->timer, fwd_timeout, l->cfg.connect_ms, 0);
    int rc = uv_tcp_connect(&f->creq, &f->tcp, (const struct sockaddr *)addr, fwd_connected);
    if (rc)
        fwd_finish(f, rc);
}

static void cancel_unknown(struct lbd *l, uint32_t pid, uint32_t key, const char *client)
{
    size_t sent = 0;
    switch (l->cfg.cancel_unknown) {
    case LBD_CANCEL_ALL:
        for (size_t i = 0; i < l->pool.n; i++) {
            struct pool_node *n = l->pool.nodes[i];
            if (n->state == NODE_UP && !n->removed) {
                fwd_start(l, &n->addr, pid, key, false, client);
                sent++;
            }
        }
        l->stats.cancel_broadcast++;
        log_emit(LOG_INFO, "cancel", "client=%s pid=%u outcome=broadcast nodes=%zu", client, pid,
                 sent);
        break;
    case LBD_CANCEL_ONE: {
        int idx = pool_pick(&l->pool, 0, lbd_random(l));
        if (idx >= 0) {
            fwd_start(l, &l->pool.nodes[idx]->addr, pid, key, false, client);
            l->stats.cancel_one++;
            log_emit(LOG_INFO, "cancel", "client=%s pid=%u outcome=one node=%s", client, pid,
                     l->pool.nodes[idx]->name);
            break;
        }
        __attribute__((fallthrough)); /* no node to send it to */
    }
    case LBD_CANCEL_DROP:
    default:
        l->stats.cancel_dropped++;
        log_emit(LOG_WARN, "cancel", "client=%s pid=%u outcome=dropped reason=\"unknown key\"",
                 client, pid);
        break;
    }
}

void cancel_route(struct lbd *l, uint32_t pid, uint32_t key, bool from_peer, const char *client)
{
    uint32_t node_key;
    struct pool_node *n = session_node_for_key(l, pid, key, &node_key);
    if (n != NULL) {
        l->stats.cancel_routed++;
        log_emit(LOG_INFO, "cancel", "client=%s pid=%u outcome=routed node=%s%s", client, pid,
                 n->name, from_peer ? " via=peer" : "");
        fwd_start(l, &n->addr, pid, node_key, false, client);
        return;
    }
    if (!from_peer && l->cfg.has_peer) {
        char peer[SOCKADDR_STRLEN];
        l->stats.cancel_to_peer++;
        log_emit(LOG_INFO, "cancel", "client=%s pid=%u outcome=to_peer peer=%s", client, pid,
                 format_sockaddr((struct sockaddr *)&l->cfg.peer, peer, sizeof(peer)));
        fwd_start(l, &l->cfg.peer, pid, key, true, client);
        return;
    }
    cancel_unknown(l, pid, key, client);
}
