/* session_start.c -- a session until it relays: the client's first packet read and
 * classified (StartupMessage, SSLRequest/GSSENCRequest passed through, CancelRequest
 * routed, garbage refused), a node chosen and connected (the next one when a connect
 * fails before any byte was relayed, or a kept connection from reuse.c), and the node's
 * answer to the startup judged. session.c owns the session's life and its relay.
 */
#include "session_int.h"
#include "cancel.h"
#include "reuse.h"
#include "control.h"

#include "fault.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the first packet ---- */

static int first_append(struct session *s, const char *data, size_t n)
{
    size_t need = (size_t)s->first_len + n;
    if (need > PGWIRE_MAX_STARTUP + LBD_BUF_SIZE)
        return -1;
    if (need > s->first_cap) {
        size_t cap = s->first_cap ? s->first_cap : 256;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(s->first, cap);
        if (p == NULL)
            return -1;
        s->first = p;
        s->first_cap = (uint32_t)cap;
    }
    memcpy(s->first + s->first_len, data, n);
    s->first_len = (uint32_t)need;
    return 0;
}

static void on_first_written(uv_write_t *req, int status)
{
    struct session *s = req->handle->data;
    if (status < 0 && status != UV_ECANCELED && s->state != SS_CLOSING)
        session_end(s, req == &s->reply_wreq ? "client_error" : "node_error");
}

/* Write bytes to a stream now; what the kernel does not take goes out by a write
 * request from a heap copy held in *pending (freed with the session). */
static int send_now(struct session *s, uv_stream_t *to, const uint8_t *data, size_t len,
                    uint8_t **pending, uv_write_t *req)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_try_write(to, &b, 1);
    if (rc == (int)len)
        return 0;
    if (rc < 0 && rc != UV_EAGAIN)
        return rc;
    size_t off = rc > 0 ? (size_t)rc : 0;
    uint8_t *copy = malloc(len - off);
    if (copy == NULL)
        return UV_ENOMEM;
    memcpy(copy, data + off, len - off);
    free(*pending);
    *pending = copy;
    uv_buf_t rest = uv_buf_init((char *)copy, (unsigned)(len - off));
    return uv_write(req, to, &rest, 1, on_first_written);
}

static void start_relay(struct session *s)
{
    session_startup_over(s);
    session_set_state(s, SS_RELAY);
}

/* Forward the buffered first bytes to the connected node and move on. A
 * StartupMessage stays buffered until the node's first answer is judged, so a node
 * that refuses it (shutting down, starting up, full) can be replaced by another. */
static void forward_first(struct session *s)
{
    struct lbd_worker *w = s->w;
    if (send_now(s, (uv_stream_t *)&s->server, s->first, s->first_len, &s->first_sending,
                 &s->first_wreq) != 0) {
        session_end(s, "node_error");
        return;
    }
    uint64_t now = uv_now(w->loop);
    s->last_active_ms[C2S] = s->last_active_ms[S2C] = now;
    if (s->kind == PGWIRE_FIRST_SSL || s->kind == PGWIRE_FIRST_GSSENC) {
        /* The request stays buffered until the node answers: another node can take it
         * if this one closes first. */
        session_set_state(s, SS_NEGOTIATE);
        return;
    }
    s->reply_len = 0;
    session_set_state(s, SS_STARTUP_WAIT);
}

/* Refusals a node gives before a session exists, after which another node may do. */
/* The longest ErrorResponse to a StartupMessage lbd holds to judge it (a refusal is a few
 * hundred bytes); a longer one goes to the client as it comes. */
#define STARTUP_ERROR_MAX 8192

static bool startup_refusal_retryable(const char *sqlstate)
{
    return strcmp(sqlstate, "57P03") == 0     /* cannot_connect_now: starting/stopping */
           || strcmp(sqlstate, "53300") == 0  /* too_many_connections */
           || strcmp(sqlstate, "57P01") == 0; /* admin_shutdown */
}

/* The node's first answer is judged: pass it to the client and relay from here. */
static void pass_reply(struct session *s)
{
    struct lbd_worker *w = s->w;
    if (pgwire_stream_feed(&s->sstream, s->reply, s->reply_len, session_on_backend_event, s) != 0)
        s->opaque = true;
    s->bytes[C2S] += s->first_len;
    __atomic_add_fetch(&s->node->bytes_in, s->first_len, __ATOMIC_RELAXED);
    STAT_ADD(w->stats.bytes_in, s->first_len);
    s->bytes[S2C] += s->reply_len;
    __atomic_add_fetch(&s->node->bytes_out, s->reply_len, __ATOMIC_RELAXED);
    STAT_ADD(w->stats.bytes_out, s->reply_len);
    if (s->reuse.reusable) { /* the key a parked connection is found by */
        s->reuse.startup = s->first;
        s->reuse.startup_len = s->first_len;
    } else {
        free(s->first);
    }
    s->first = NULL;
    s->first_len = s->first_cap = 0;
    int rc = send_now(s, (uv_stream_t *)&s->client, s->reply, s->reply_len, &s->reply_sending,
                      &s->reply_wreq);
    free(s->reply);
    s->reply = NULL;
    if (rc != 0) {
        session_end(s, "client_error");
        return;
    }
    start_relay(s);
}

/* A node's failed connect or startup counts against it on worker 0, which alone changes
 * nodes (node.h): another worker tells it (the node is referenced until then). */
struct node_failure {
    struct pool_node *n;
    char reason[128];
};

static void node_failure_main(struct lbd_worker *w0, void *arg)
{
    struct node_failure *f = arg;
    node_result(&w0->lbd->nodes, f->n, false, false, f->reason);
    node_unref(f->n);
    free(f);
}

static void node_failed(struct session *s, struct pool_node *n, const char *reason)
{
    struct lbd *l = s->lbd;
    if (s->w->index == 0) {
        node_result(&l->nodes, n, false, false, reason);
        return;
    }
    struct node_failure *f = malloc(sizeof(*f));
    if (f == NULL)
        return; /* (the checks still see the node) */
    f->n = n;
    node_ref(n);
    snprintf(f->reason, sizeof(f->reason), "%s", reason);
    if (!worker_post(&l->workers[0], node_failure_main, f)) {
        node_unref(n);
        free(f);
    }
}

static void on_server_closed_retry(uv_handle_t *h);

/* Nothing of this node's has reached the client yet (it refused or vanished before
 * answering the startup or the encryption request): try the next node. health_reason,
 * when set, counts as a failed check for the node. */
static void retry_elsewhere(struct session *s, const char *health_reason)
{
    if (health_reason)
        node_failed(s, s->node, health_reason);
    free(s->reply);
    s->reply = NULL;
    s->reply_len = 0;
    uv_read_stop((uv_stream_t *)&s->server);
    session_node_unuse(s);
    session_set_state(s, SS_CONNECTING);
    uv_timer_stop(&s->timer); /* (none while the node's handle closes for the retry) */
    s->srv = SRV_CLOSING;
    uv_close((uv_handle_t *)&s->server, on_server_closed_retry);
}

/* The node closed (or failed) before its first answer: retry while attempts remain. */
static void lost_before_answer(struct session *s, ssize_t nread)
{
    const char *what = s->state == SS_NEGOTIATE ? "the encryption request" : "the startup";
    if (s->attempts > s->w->cfg.retries) {
        session_end(s, nread == UV_EOF ? "node_closed" : "node_error");
        return;
    }
    char reason[160];
    snprintf(reason, sizeof(reason), "closed before answering %s: %s", what,
             uv_strerror((int)nread));
    log_emit(LOG_WARN, "startup_lost", "client=%s node=%s detail=\"%s\" action=retry",
             s->client_addr, s->node->name, reason);
    retry_elsewhere(s, reason);
}

/* The node let the user in without asking anything: keep its ParameterStatus and its
 * secret key, and give the client a key of lbd's, so that this connection can serve
 * another client later (reuse.c) and no client ever holds the node's own key. */
static int capture_trusted(struct session *s, const struct pgwire_reply *r)
{
    size_t plen = pgwire_reply_params(s->reply, r, NULL);
    uint8_t *params = malloc(plen ? plen : 1);
    if (params == NULL)
        return -1;
    pgwire_reply_params(s->reply, r, params);
    s->reuse.params = params;
    s->reuse.params_len = (uint32_t)plen;
    s->reuse.own_key = s->reuse.reusable = true;
    s->reuse.node_key = r->key;
    pgwire_reply_set_key(s->reply, r, lbd_secret_key());
    return 0;
}

void session_startup_reply_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    struct lbd_worker *w = s->w;
    if (nread <= 0) {
        session_buf_release(s, buf);
        if (nread < 0)
            lost_before_answer(s, nread);
        return;
    }
    uint8_t *p = realloc(s->reply, s->reply_len + (size_t)nread);
    if (p == NULL) {
        session_buf_release(s, buf);
        session_end(s, "node_error");
        return;
    }
    s->reply = p;
    memcpy(s->reply + s->reply_len, buf->base, (size_t)nread);
    s->reply_len += (uint32_t)nread;
    session_buf_release(s, buf);
    if (s->reuse.ok) {
        struct pgwire_reply r;
        switch (pgwire_reply_parse(s->reply, s->reply_len, &r)) {
        case PGWIRE_REPLY_INCOMPLETE:
            return;
        case PGWIRE_REPLY_TRUSTED:
            if (capture_trusted(s, &r) == 0) {
                pass_reply(s);
                return;
            }
            break;
        case PGWIRE_REPLY_OTHER:
            break;
        }
    }
    /* An ErrorResponse first may be a refusal another node can make good: wait for it
     * whole (up to STARTUP_ERROR_MAX bytes held). Anything else goes to the client. */
    struct pgwire_msg m;
    enum pgwire_frame f = pgwire_frame(s->reply, s->reply_len, &m);
    if (f == PGWIRE_FRAME_SHORT)
        return;
    if (f == PGWIRE_FRAME_BAD || m.type != 'E' || m.size > STARTUP_ERROR_MAX) {
        pass_reply(s);
        return;
    }
    if (f == PGWIRE_FRAME_PARTIAL)
        return; /* wait for the whole ErrorResponse */
    struct pgwire_check c;
    pgwire_check_parse(s->reply, m.size, &c);
    if (!startup_refusal_retryable(c.sqlstate) || s->attempts > w->cfg.retries) {
        pass_reply(s);
        return;
    }
    char msg[160], reason[200];
    log_emit(LOG_WARN, "startup_refused", "client=%s node=%s sqlstate=%s message=%s action=retry",
             s->client_addr, s->node->name, c.sqlstate, log_quote(msg, sizeof(msg), c.message));
    snprintf(reason, sizeof(reason), "refused a startup: %s %s", c.sqlstate, c.message);
    retry_elsewhere(s, strcmp(c.sqlstate, "53300") != 0 ? reason : NULL);
}

/* With reuse on, an SSLRequest is answered 'N' by lbd itself when every node that can
 * take a session answered 'N' to one in the last 10 s: the client then sends its
 * StartupMessage to lbd, which may serve it from a parked connection (libpq's default,
 * sslmode=prefer, asks first). A node that starts answering 'S' is seen within 10 s:
 * the next request goes to a node again. */
#define TLS_NO_FRESH_MS 10000
static bool reuse_no_tls(struct lbd_worker *w)
{
    struct lbd *l = w->lbd;
    uint64_t now = uv_now(w->loop); /* (every loop's clock is the same monotonic one) */
    size_t eligible = 0;
    bool all = true;
    if (!w->cfg.reuse_max_idle)
        return false;
    lbd_lock(l);
    for (size_t i = 0; i < l->nodes.pool.n && all; i++) {
        const struct pool_node *n = l->nodes.pool.nodes[i];
        if (!pool_node_eligible(n))
            continue;
        uint64_t no = RELAXED(n->tls_no_ms);
        if (no == 0 || (now > no && now - no > TLS_NO_FRESH_MS))
            all = false;
        eligible++;
    }
    lbd_unlock(l);
    return all && eligible > 0;
}

static void answer_no_tls(struct session *s)
{
    uv_buf_t b = uv_buf_init((char *)"N", 1);
    s->bytes[C2S] += s->first_len;
    s->bytes[S2C] += 1;
    free(s->first);
    s->first = NULL;
    s->first_len = s->first_cap = 0;
    if (uv_try_write((uv_stream_t *)&s->client, &b, 1) != 1) {
        session_end(s, "client_error");
        return;
    }
    session_set_state(s, SS_FIRST);
}

static void classify(struct session *s)
{
    struct lbd *l = s->lbd;
    struct lbd_worker *w = s->w;
    struct pgwire_first f;
    char msg[96];
    switch (pgwire_first_parse(s->first, s->first_len, &f)) {
    case PGWIRE_FIRST_INCOMPLETE:
        return;
    case PGWIRE_FIRST_BAD: {
        /* What PostgreSQL sends for it (often nothing), and its close. */
        uint8_t answer[256];
        size_t n = pgwire_first_answer_build(answer, sizeof(answer), &f);
        STAT_INC(w->stats.refused_bad_packet);
        snprintf(msg, sizeof(msg), "%s", f.reason);
        session_refuse_raw(s, answer, n, msg, "bad_packet");
        return;
    }
    case PGWIRE_FIRST_PEER_CONTROL: {
        s->kind = PGWIRE_FIRST_PEER_CONTROL;
        if (!s->from_peer || s->srv != SRV_NONE) {
            /* On a client port, what PostgreSQL says to a protocol it does not know. */
            STAT_INC(w->stats.refused_bad_packet);
            session_refuse(s, "0A000",
                           "unsupported frontend protocol 1234.5778: server supports 3.0 to 3.0",
                           "bad_packet");
            return;
        }
        uint8_t answer[REFUSAL_MSG_MAX];
        size_t n = control_peer_request(l, s->first + 8, f.len - 8, answer, sizeof(answer));
        session_refuse_raw(s, answer, n, "", "peer_control");
        return;
    }
    case PGWIRE_FIRST_CANCEL:
        s->kind = PGWIRE_FIRST_CANCEL;
        s->pending_sqlstate = NULL; /* a cancel is served even when sessions are not */
        if (s->srv != SRV_NONE) {
            STAT_INC(w->stats.refused_bad_packet);
            session_refuse(s, "08P01", "cancel request after encryption negotiation", "bad_packet");
            return;
        }
        if (f.forwarded && !s->from_peer) {
            /* A forward from an lbd whose peer.address names this client port: never
             * forwarded again (no loop), and not a client's. */
            STAT_INC(w->stats.refused_bad_packet);
            session_refuse(s, "0A000",
                           "unsupported frontend protocol 1234.5777: server supports 3.0 to 3.0",
                           "bad_packet");
            return;
        }
        uv_read_stop((uv_stream_t *)&s->client);
        cancel_route(s->w, f.cancel_pid, f.cancel_key_bytes, f.cancel_key_len, s->from_peer, s->src,
                     s->client_addr);
        session_end(s, "cancel");
        return;
    case PGWIRE_FIRST_SSL:
    case PGWIRE_FIRST_GSSENC:
        if (s->srv == SRV_NONE && (f.kind == PGWIRE_FIRST_SSL ? s->asked_ssl : s->asked_gss)) {
            /* A second request of the same kind, which lbd would answer itself again:
             * PostgreSQL takes one of each, and answers a repeat as an unknown protocol
             * (ProcessStartupPacket). (With a node connection open, the node answers.) */
            STAT_INC(w->stats.refused_bad_packet);
            session_refuse(
                s, "0A000",
                f.kind == PGWIRE_FIRST_SSL
                    ? "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0"
                    : "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0",
                "bad_packet");
            return;
        }
        if (f.kind == PGWIRE_FIRST_SSL)
            s->asked_ssl = true;
        else
            s->asked_gss = true;
        if (s->first_len > f.len) {
            /* Plaintext after the request, before the handshake: an injection attempt
             * (CVE-2021-23214) or a broken client. Never relay it; answer as PostgreSQL
             * does (its 'N', then this error). */
            uint8_t answer[320];
            bool ssl = f.kind == PGWIRE_FIRST_SSL;
            answer[0] = 'N';
            size_t n = pgwire_error_build_detail(
                answer + 1, sizeof(answer) - 1, "FATAL", "08P01",
                ssl ? "received unencrypted data after SSL request"
                    : "received unencrypted data after GSSAPI encryption request",
                "This could be either a client-software bug or evidence of an attempted "
                "man-in-the-middle attack.");
            STAT_INC(w->stats.refused_bad_packet);
            session_refuse_raw(s, answer, n + 1, "unexpected data after an encryption request",
                               "bad_packet");
            return;
        }
        break;
    case PGWIRE_FIRST_STARTUP:
        snprintf(s->user, sizeof(s->user), "%s", f.user);
        snprintf(s->database, sizeof(s->database), "%s", f.database);
        snprintf(s->app, sizeof(s->app), "%s", f.application_name);
        /* (After an encryption request the node connection exists: it is this one.) */
        s->reuse.ok = w->cfg.reuse_max_idle > 0 && f.proto == 3u << 16 && !f.replication &&
                      s->srv == SRV_NONE && s->first_len == f.len;
        break;
    }
    s->kind = (uint8_t)f.kind;
    if (s->pending_sqlstate) {
        uv_read_stop((uv_stream_t *)&s->client);
        if (f.kind == PGWIRE_FIRST_STARTUP)
            session_refuse(s, s->pending_sqlstate, s->pending_msg, s->pending_reason);
        else /* another encryption request: 'N' again */
            session_refuse_after_negotiation(s, s->pending_sqlstate, s->pending_msg,
                                             s->pending_reason);
        return;
    }
    if (s->from_peer) {
        STAT_INC(w->stats.refused_bad_packet);
        session_refuse(s, "08P01", "the peer listener takes only cancel requests", "bad_packet");
        return;
    }
    if (f.kind == PGWIRE_FIRST_SSL && s->srv == SRV_NONE && reuse_no_tls(s->w)) {
        answer_no_tls(s);
        return;
    }
    /* The client keeps being read: it has nothing to say until the node answers, and a
     * read stopped and started again costs libuv two epoll_ctl calls (see park). */
    if (s->srv == SRV_OPEN)
        forward_first(s);
    else
        session_connect_node(s);
}

void session_first_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    if (nread < 0) {
        session_buf_release(s, buf);
        session_end(s, nread == UV_EOF ? "client_closed" : "client_error");
        return;
    }
    if (nread == 0) {
        session_buf_release(s, buf);
        return;
    }
    int rc = first_append(s, buf->base, (size_t)nread);
    session_buf_release(s, buf);
    if (rc != 0) {
        STAT_INC(s->w->stats.refused_bad_packet);
        session_refuse(s, "08P01", "invalid startup packet: too long", "bad_packet");
        return;
    }
    classify(s);
}

/* The node's one-byte answer to SSLRequest/GSSENCRequest ('S'/'G' yes, 'N' no). */
void session_negotiate_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    if (nread <= 0) {
        session_buf_release(s, buf);
        if (nread < 0)
            lost_before_answer(s, nread);
        return;
    }
    s->bytes[C2S] += s->first_len;
    free(s->first);
    s->first = NULL;
    s->first_len = s->first_cap = 0;
    char answer = buf->base[0];
    if (s->kind == PGWIRE_FIRST_SSL && nread == 1)
        __atomic_store_n(&s->node->tls_no_ms, answer == 'N' ? uv_now(s->w->loop) : 0,
                         __ATOMIC_RELAXED);
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    s->bytes[S2C] += (uint64_t)nread;
    int rc = uv_try_write((uv_stream_t *)&s->client, &b, 1);
    session_buf_release(s, buf);
    if (rc != nread) {
        session_end(s, "client_error");
        return;
    }
    if (answer == 'N' && nread == 1) {
        /* Plaintext follows: read the client's next packet (a StartupMessage). */
        session_set_state(s, SS_FIRST);
        return;
    }
    /* 'S'/'G': encrypted end to end from here; 'E': the node's error, then it closes. */
    s->tls = answer == 'S' || answer == 'G';
    s->opaque = true;
    start_relay(s);
}

/* ---- connecting to a node ---- */

static void on_server_closed_retry(uv_handle_t *h)
{
    struct session *s = h->data;
    s->srv = SRV_NONE;
    s->handles_open--;
    if (s->state != SS_CONNECTING) {
        if (s->handles_open == 0)
            session_free(s);
        return;
    }
    if (s->attempts > s->w->cfg.retries) {
        STAT_INC(s->w->stats.refused_connect);
        session_refuse(s, "08006", "could not connect to a database node",
                       "session_connect_failed");
        return;
    }
    session_connect_node(s);
}

/* The connect failed for a reason of lbd's own (out of descriptors, memory, buffers or
 * local ports): the node is not to blame, and another would fail the same way. */
static void connect_failed_here(struct session *s, int status)
{
    struct lbd_worker *w = s->w;
    unsigned long long held;
    STAT_INC(w->stats.refused_local);
    if (lbd_log_pass(w->lbd, &w->lbd->lim_local, &held))
        log_emit(LOG_WARN, "local_exhaustion",
                 "client=%s node=%s error=\"%s\" held_back=%llu detail=\"lbd's own limit, not "
                 "the node's: the node keeps its state\"",
                 s->client_addr, s->node->name, uv_strerror(status), held);
    session_node_unuse(s);
    session_refuse_after_negotiation(s, "53300",
                                     "sorry, too many clients already (lbd is out of resources)",
                                     "local_exhaustion");
}

void session_connect_failed(struct session *s, int status)
{
    struct pool_node *n = s->node;
    char reason[128];
    if (lbd_error_is_local(status)) {
        connect_failed_here(s, status);
        return;
    }
    __atomic_add_fetch(&n->connect_failures, 1, __ATOMIC_RELAXED);
    snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(status));
    log_emit(LOG_WARN, "session_connect_failed", "client=%s node=%s attempt=%u error=\"%s\"",
             s->client_addr, n->name, s->attempts, uv_strerror(status));
    session_node_unuse(s);
    node_failed(s, n, reason);
    uv_timer_stop(&s->timer);
    s->srv = SRV_CLOSING;
    uv_close((uv_handle_t *)&s->server, on_server_closed_retry);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct session *s = req->data;
    if (status == UV_ECANCELED || s->state != SS_CONNECTING || s->srv != SRV_OPEN)
        return;
    if (status < 0) {
        session_connect_failed(s, status);
        return;
    }
    s->t_connect_ns = uv_hrtime();
    __atomic_add_fetch(&s->node->sessions_total, 1, __ATOMIC_RELAXED);
    STAT_INC(s->w->stats.sessions_relayed);
    forward_first(s);
}

/* Serve the client from a parked node connection: lbd answers its startup as the node
 * did (AuthenticationOk, the node's ParameterStatus, BackendKeyData with the node's pid
 * and a secret key of lbd's, ReadyForQuery 'I') and relays from there. */
static void adopt_parked(struct session *s, struct reuse_grant *g)
{
    struct lbd_worker *w = s->w;
    uv_tcp_init(w->loop, &s->server);
    s->server.data = s;
    s->handles_open++;
    s->srv = SRV_OPEN;
    size_t n = PGWIRE_TRUSTED_FIXED + g->params_len;
    uint8_t *r = malloc(n);
    if (r == NULL || uv_tcp_open(&s->server, g->fd) != 0) {
        close(g->fd); /* (a handle that failed to open it does not own it) */
        free(r);
        free(g->params);
        session_end(s, "node_error");
        return;
    }
    s->reuse.own_key = true;
    s->reuse.node_key = g->key;
    pgwire_trusted_build(r, n, g->params, g->params_len, g->pid, lbd_secret_key());
    s->reuse.params = g->params;
    s->reuse.params_len = g->params_len;
    s->reuse.reused = s->reuse.reusable = true;
    s->t_connect_ns = uv_hrtime();
    __atomic_add_fetch(&s->node->sessions_total, 1, __ATOMIC_RELAXED);
    STAT_INC(w->stats.sessions_relayed);
    s->reply = r;
    s->reply_len = (uint32_t)n;
    uv_timer_stop(&s->timer);
    /* pass_reply counts it as the node's and the StartupMessage as sent: what the client
     * saw and sent. */
    pass_reply(s);
}

void session_connect_node(struct session *s)
{
    struct lbd *l = s->lbd;
    struct lbd_worker *w = s->w;
    if (s->node) {
        node_unref(s->node);
        s->node = NULL;
    }
    lbd_lock(l);
    int idx = pool_pick(&l->nodes.pool, s->tried, worker_random(w));
    struct pool_node *n = idx < 0 ? NULL : l->nodes.pool.nodes[idx];
    if (n) {
        node_ref(n);
        __atomic_add_fetch(&n->active, 1, __ATOMIC_RELAXED);
    }
    lbd_unlock(l);
    if (n == NULL) {
        if (s->attempts == 0) {
            STAT_INC(w->stats.refused_no_node);
            session_refuse_after_negotiation(s, "57P03", "no database node is available (lbd)",
                                             "no_node");
        } else {
            STAT_INC(w->stats.refused_connect);
            session_refuse_after_negotiation(s, "08006", "could not connect to a database node",
                                             "session_connect_failed");
        }
        return;
    }
    s->tried |= 1ULL << idx;
    s->attempts++;
    s->node = n;
    s->node_active = true;
    session_set_state(s, SS_CONNECTING);
    struct reuse_grant g;
    if (s->reuse.ok && reuse_take(w, n, s->first, s->first_len, &g) == 0) {
        adopt_parked(s, &g);
        return;
    }
    /* The socket now, so its options are set before the SYN; if that fails (EMFILE),
     * the connect below reports it. */
    if (uv_tcp_init_ex(w->loop, &s->server, n->addr.ss_family) != 0)
        uv_tcp_init(w->loop, &s->server);
    s->handles_open++;
    s->srv = SRV_OPEN;
    lbd_tune_socket(&w->cfg, &s->server);
    s->connect_req.data = s;
    int rc =
        uv_tcp_connect(&s->connect_req, &s->server, (const struct sockaddr *)&n->addr, on_connect);
    if (rc != 0)
        session_connect_failed(s, rc);
    else if (fault_hit("connect_stall")) /* (tests: this loop busy past the connect timeout) */
        usleep((useconds_t)(w->cfg.connect_ms + 300) * 1000);
}
