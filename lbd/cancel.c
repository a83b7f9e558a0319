/* cancel.c -- routing CancelRequests, within bounds.
 *
 * A CancelRequest carries the (pid, secret key) the node sent in BackendKeyData. lbd
 * records those keys as it relays (session.c), so a cancel for a session here goes to
 * that session's node. A key unknown here may belong to a session on the peer lbd of
 * the pair (the client opened its cancel connection to the other VIP): forward it to
 * the peer's cancel listener, marked as forwarded (PGWIRE_CODE_CANCEL_FWD), which routes
 * it but never forwards it again. A key nobody knows follows the pool's policy: `one`
 * node (the default: CockroachDB forwards to the right node itself), `all` healthy
 * nodes (PostgreSQL ignores a wrong key), or `drop`.
 *
 * Every cancel costs a connection to somewhere and, on PostgreSQL, a fork there, for
 * 16 bytes and no login. So before any connection is opened guard.h judges it: a
 * repeat of the same (pid, key) within lbd.limits.cancel_window, the source's and
 * everyone's cancels per second, and the forwards open at once are bounded, counted by
 * verdict and logged at most once a second. A forward waits for the node to close
 * first (PostgreSQL does, once it has read the request), so TIME_WAIT stays on the
 * node's side and lbd's ephemeral ports are not used up; one that the node leaves open
 * is reset, never closed with a FIN. */
#include "lbd.h"
#include "session.h"
#include "cancel.h"
#include "worker.h"

#include "bytes.h"

#include "log.h"
#include "parse.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct cancel_fwd {
    uv_tcp_t tcp; /* data = this */
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    struct lbd *lbd;
    struct lbd_worker *w; /* the loop it runs on */
    uint8_t pkt[12 + PGWIRE_MAX_CANCEL_KEY];
    size_t pkt_len;
    uint8_t keyb[PGWIRE_MAX_CANCEL_KEY]; /* the key as the client sent it */
    uint16_t key_len;
    uint8_t rbuf[64]; /* the node says nothing; whatever it says is dropped here */
    uint32_t pid, key;
    bool to_peer; /* on failure, apply the unknown-key policy here instead */
    bool written; /* the request is out: a timeout now only closes */
    bool done;
    int handles;
    char target[SOCKADDR_STRLEN];
    char client[SOCKADDR_STRLEN];
};

struct cancel_key {
    uint32_t pid, key;    /* key: its first 4 bytes (what lbd records and routes by) */
    const uint8_t *bytes; /* the whole key, as the client sent it */
    uint16_t len;
};

static void cancel_unknown(struct lbd_worker *w, const struct cancel_key *k, const char *client,
                           bool admitted);

static void cancel_done(struct lbd *l, uint32_t n)
{
    lbd_lock(l);
    while (n-- > 0)
        guard_cancel_done(&l->guard);
    lbd_unlock(l);
}

static void fwd_closed(uv_handle_t *h)
{
    struct cancel_fwd *f = h->data;
    if (--f->handles == 0)
        free(f);
}

/* Close without TIME_WAIT here: a reset (the request is out or will never be). */
static void fwd_reset(struct cancel_fwd *f)
{
    uv_os_fd_t fd;
    struct linger lg = {1, 0};
    if (uv_fileno((uv_handle_t *)&f->tcp, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void fwd_finish(struct cancel_fwd *f, int status)
{
    struct lbd_worker *w = f->w;
    if (f->done)
        return;
    f->done = true;
    cancel_done(f->lbd, 1);
    /* (Once the request is out, the node's close, or none within the deadline, is
     * the normal end.) */
    if (status < 0 && !(f->written && (status == UV_EOF || status == UV_ETIMEDOUT))) {
        unsigned long long held;
        STAT_INC(w->stats.cancel_failed);
        if (lbd_log_pass(w->lbd, &w->lbd->lim_cancel, &held))
            log_emit(LOG_WARN, "cancel_failed", "pid=%u target=%s error=\"%s\" held_back=%llu",
                     f->pid, f->target, uv_strerror(status), held);
        if (f->to_peer) {
            struct cancel_key k = {f->pid, f->key, f->keyb, f->key_len};
            cancel_unknown(w, &k, f->client, false);
        }
    }
    if (status != UV_EOF)
        fwd_reset(f);
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, fwd_closed);
    uv_close((uv_handle_t *)&f->tcp, fwd_closed);
}

static void fwd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct cancel_fwd *f = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)f->rbuf, sizeof(f->rbuf));
}

static void fwd_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        fwd_finish(st->data, (int)nread); /* UV_EOF: the node closed first, as it should */
}

static void fwd_written(uv_write_t *req, int status)
{
    struct cancel_fwd *f = req->data;
    if (status < 0) {
        fwd_finish(f, status);
        return;
    }
    f->written = true;
    int rc = uv_read_start((uv_stream_t *)&f->tcp, fwd_alloc, fwd_read);
    if (rc)
        fwd_finish(f, rc);
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
    uv_buf_t b = uv_buf_init((char *)f->pkt, (unsigned)f->pkt_len);
    f->wreq.data = f;
    int rc = uv_write(&f->wreq, (uv_stream_t *)&f->tcp, &b, 1, fwd_written);
    if (rc)
        fwd_finish(f, rc);
}

static void fwd_timeout(uv_timer_t *t)
{
    fwd_finish(t->data, UV_ETIMEDOUT);
}

/* Send one CancelRequest for k to addr on its own connection; its slot in
 * guard.inflight was taken by the caller and is given back by fwd_finish. */
static void fwd_start(struct lbd_worker *w, const struct sockaddr_storage *addr,
                      const struct cancel_key *k, bool to_peer, const char *client)
{
    struct cancel_fwd *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        cancel_done(w->lbd, 1);
        STAT_INC(w->stats.cancel_failed);
        return;
    }
    f->lbd = w->lbd;
    f->w = w;
    f->pid = k->pid;
    f->key = k->key;
    f->key_len = k->len;
    memcpy(f->keyb, k->bytes, k->len);
    f->to_peer = to_peer;
    f->tcp.data = f->timer.data = f->creq.data = f;
    format_sockaddr((const struct sockaddr *)addr, f->target, sizeof(f->target));
    snprintf(f->client, sizeof(f->client), "%s", client);
    f->pkt_len = pgwire_cancel_build_key(f->pkt, sizeof(f->pkt), k->pid, k->bytes, k->len, to_peer);
    uv_tcp_init(w->loop, &f->tcp);
    uv_timer_init(w->loop, &f->timer);
    f->handles = 2;
    uv_timer_start(&f->timer, fwd_timeout, w->cfg.connect_ms, 0);
    int rc = uv_tcp_connect(&f->creq, &f->tcp, (const struct sockaddr *)addr, fwd_connected);
    if (rc)
        fwd_finish(f, rc);
}

/* Room for n more forwards (a fallback after the peer failed, which guard admitted as
 * one): descriptors and the in-flight bound. */
static bool room_for(struct lbd_worker *w, uint32_t n, bool admitted)
{
    struct lbd *l = w->lbd;
    if (!lbd_fd_room(l, n))
        return false;
    if (admitted)
        return true;
    lbd_lock(l);
    bool room = !w->cfg.cancel_inflight || l->guard.inflight + n <= w->cfg.cancel_inflight;
    if (room)
        l->guard.inflight += n;
    lbd_unlock(l);
    return room;
}

static void log_dropped(struct lbd_worker *w, const char *client, uint32_t pid, const char *why)
{
    unsigned long long held;
    if (lbd_log_pass(w->lbd, &w->lbd->lim_cancel, &held))
        log_emit(LOG_WARN, "cancel", "client=%s pid=%u outcome=dropped reason=%s held_back=%llu",
                 client, pid, why, held);
}

/* admitted: guard.inflight already holds this cancel's one slot. */
static void cancel_unknown(struct lbd_worker *w, const struct cancel_key *k, const char *client,
                           bool admitted)
{
    struct lbd *l = w->lbd;
    uint32_t pid = k->pid;
    /* The nodes it may go to, copied under the lock (node.h). */
    struct sockaddr_storage to[POOL_MAX_NODES];
    char name[64] = "";
    size_t up = 0;
    lbd_lock(l);
    if (w->cfg.cancel_unknown == LBD_CANCEL_ALL) {
        for (size_t i = 0; i < l->nodes.pool.n; i++)
            if (pool_node_eligible(l->nodes.pool.nodes[i]))
                to[up++] = l->nodes.pool.nodes[i]->addr;
    } else if (w->cfg.cancel_unknown == LBD_CANCEL_ONE) {
        int idx = pool_pick(&l->nodes.pool, 0, worker_random(w));
        if (idx >= 0) {
            to[up++] = l->nodes.pool.nodes[idx]->addr;
            snprintf(name, sizeof(name), "%s", l->nodes.pool.nodes[idx]->name);
        }
    } else {
        up = pool_count_eligible(&l->nodes.pool);
    }
    lbd_unlock(l);
    switch (w->cfg.cancel_unknown) {
    case LBD_CANCEL_ALL:
        if (up == 0)
            break;
        if (admitted)
            cancel_done(l, 1); /* taken again for every node below */
        if (!room_for(w, (uint32_t)up, false)) {
            STAT_INC(w->stats.cancel_limited);
            log_dropped(w, client, pid, "inflight");
            return;
        }
        for (size_t i = 0; i < up; i++)
            fwd_start(w, &to[i], k, false, client);
        STAT_INC(w->stats.cancel_broadcast);
        log_emit(LOG_INFO, "cancel", "client=%s pid=%u outcome=broadcast nodes=%zu", client, pid,
                 up);
        return;
    case LBD_CANCEL_ONE:
        if (up == 0)
            break;
        if (!room_for(w, 1, admitted)) {
            STAT_INC(w->stats.cancel_limited);
            log_dropped(w, client, pid, "inflight");
            return;
        }
        fwd_start(w, &to[0], k, false, client);
        STAT_INC(w->stats.cancel_one);
        log_emit(LOG_INFO, "cancel", "client=%s pid=%u outcome=one node=%s", client, pid, name);
        return;
    case LBD_CANCEL_DROP:
    default:
        break;
    }
    if (admitted)
        cancel_done(l, 1);
    STAT_INC(w->stats.cancel_dropped);
    log_dropped(w, client, pid, up ? "unknown_key" : "no_node");
}

void cancel_route(struct lbd_worker *w, uint32_t pid, const uint8_t *key, size_t key_len,
                  bool from_peer, const uint8_t *src, const char *client)
{
    struct lbd *l = w->lbd;
    struct cancel_key k = {pid, be32_get(key), key, (uint16_t)key_len};
    enum guard_verdict v = GUARD_INFLIGHT;
    if (lbd_fd_room(l, 1)) {
        lbd_lock(l);
        v = guard_cancel_admit(&l->guard, from_peer ? NULL : src, pid, k.key, 1, uv_now(w->loop));
        lbd_unlock(l);
    }
    if (v != GUARD_OK) {
        STAT_INC(w->stats.cancel_limited);
        log_dropped(w, client, pid, guard_verdict_names[v]);
        return;
    }
    /* The session may be on another worker: its node is read under the lock. */
    uint32_t node_key;
    struct sockaddr_storage addr;
    char name[64];
    lbd_lock(l);
    struct pool_node *n = session_node_for_key(l, pid, k.key, &node_key);
    if (n != NULL) {
        addr = n->addr;
        snprintf(name, sizeof(name), "%s", n->name);
    }
    lbd_unlock(l);
    if (n != NULL) {
        /* The node's own key: the client's as sent, or (a reused connection's) the node's
         * 4 bytes that lbd kept. */
        uint8_t nk[4];
        be32_put(nk, node_key);
        struct cancel_key to_node =
            node_key == k.key ? k : (struct cancel_key){pid, node_key, nk, 4};
        STAT_INC(w->stats.cancel_routed);
        log_emit(LOG_INFO, "cancel", "client=%s pid=%u outcome=routed node=%s%s worker=%u", client,
                 pid, name, from_peer ? " via=peer" : "", w->index);
        fwd_start(w, &addr, &to_node, false, client);
        return;
    }
    if (!from_peer && w->cfg.has_peer) {
        char peer[SOCKADDR_STRLEN];
        STAT_INC(w->stats.cancel_to_peer);
        log_emit(LOG_INFO, "cancel", "client=%s pid=%u outcome=to_peer peer=%s", client, pid,
                 format_sockaddr((struct sockaddr *)&w->cfg.peer, peer, sizeof(peer)));
        fwd_start(w, &w->cfg.peer, &k, true, client);
        return;
    }
    cancel_unknown(w, &k, client, true);
}
