/* session.c -- one client connection's life: accepted (or adopted), its state (the one
 * setter, session_set_state), its socket reads dispatched by state, its timers, what lbd
 * understands of the relayed streams (framing, idle moments, drains, kills, reuse),
 * refusals with an ErrorResponse, and the one log line when it ends.
 *
 * Neighbours: session_start.c takes a session from its first packet to the relay
 * (classification, the node's connect and startup answer); relay_copy.c and
 * relay_splice.c move an established session's bytes (relay.h); session_int.h is what
 * they share. pgwire.c parses, pool.c chooses, node.c keeps the nodes, cancel.c routes
 * CancelRequests, reuse.c keeps node connections, lbd.c owns the listeners. */
#include "session_int.h"
#include "list.h"
#include "session.h"
#include "reuse.h"

#include "fault.h"
#include "listener.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void session_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct session *s = h->data;
    void *p = worker_buf_get(s->w);
    *buf = uv_buf_init(p, p ? LBD_BUF_SIZE : 0);
}

void session_buf_release(struct session *s, const uv_buf_t *buf)
{
    if (buf && buf->base)
        worker_buf_put(s->w, buf->base);
}

void session_free(struct session *s)
{
    struct lbd_worker *w = s->w;
    for (int d = 0; d < 2; d++) {
        if (s->relay[d].copy.inflight)
            worker_buf_put(w, s->relay[d].copy.inflight);
        if (s->parked[d])
            worker_buf_put(w, s->parked[d]);
    }
    free(s->first);
    free(s->refusal);
    free(s->first_sending);
    free(s->reply);
    free(s->reply_sending);
    free(s->reuse.startup);
    free(s->reuse.params);
    if (s->node) {
        node_unref(s->node);
    }
    free(s);
}

static void on_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    if (--s->handles_open == 0)
        session_free(s);
}

void session_node_unuse_locked(struct session *s)
{
    if (s->node_active) {
        __atomic_sub_fetch(&s->node->active, 1, __ATOMIC_RELAXED);
        s->node_active = false;
    }
}

void session_node_unuse(struct session *s)
{
    if (s->node_active) {
        lbd_lock(s->lbd);
        session_node_unuse_locked(s);
        lbd_unlock(s->lbd);
    }
}

/* On the main loop: the last session over all workers ended while draining. */
static void sessions_gone_main(struct lbd_worker *w0, void *arg)
{
    (void)arg;
    struct lbd *l = w0->lbd;
    if (l->draining && RELAXED(l->n_sessions) == 0)
        l->on_sessions_gone(l);
}

/* ---- the state ---- */

/* On the main loop: a session (of any worker) left its startup while lbd waits for that. */
static void startup_over_main(struct lbd_worker *w0, void *arg)
{
    (void)arg;
    w0->lbd->on_startup_over(w0->lbd);
}

static const char *const state_names[] = {"first", "connecting", "negotiate", "startup_wait",
                                          "relay", "refusing",   "closing"};

void session_set_state(struct session *s, enum session_state st)
{
    const struct lbd_config *c = &s->w->cfg;
    enum session_state old = s->state;
    s->state = st;
    s->late_timer = false;
    if (old < SS_RELAY && st >= SS_RELAY &&
        (RELAXED(s->lbd->startups_wait) || RELAXED(s->lbd->n_quiet_waits)))
        worker_tell_main(s->w, startup_over_main, NULL);
    log_emit(LOG_DEBUG, "session_state", "id=%llu client=%s from=%s to=%s",
             (unsigned long long)s->id, s->client_addr, state_names[old], state_names[st]);
    switch (st) {
    case SS_FIRST:
        session_arm_startup(s);
        session_read_client(s);
        break;
    case SS_CONNECTING:
        uv_timer_start(&s->timer, session_on_timer, c->connect_ms, 0);
        break;
    case SS_NEGOTIATE:
        uv_timer_start(&s->timer, session_on_timer, c->connect_ms + c->startup_ms, 0);
        session_read_server(s);
        break;
    case SS_STARTUP_WAIT:
        uv_timer_start(&s->timer, session_on_timer, c->startup_ms, 0);
        session_read_server(s);
        break;
    case SS_RELAY:
        session_arm_idle(s);
        session_relay_begin(s);
        break;
    case SS_REFUSING:
        uv_timer_start(&s->timer, session_on_timer, 1000, 0);
        break;
    case SS_CLOSING:
        uv_timer_stop(&s->timer);
        break;
    }
}

/* ---- the log line and the end of a session ---- */

static void log_session(struct session *s)
{
    struct lbd_worker *w = s->w;
    uint64_t now = uv_hrtime();
    char ts[40], user[80], db[80], app[80], detail[128], vip[INET6_ADDRSTRLEN] = "-", pid[16] = "-";
    if (s->kind == PGWIRE_FIRST_CANCEL || s->quiet)
        return; /* cancel.c logs its own line */
    double connect_ms = s->t_connect_ns ? (double)(s->t_connect_ns - s->t_accept_ns) / 1e6 : -1;
    /* Where the client came in (the VIP), how many other nodes were tried first, and the
     * node's backend pid, to join with pg_stat_activity. */
    static const uint8_t none6[16];
    if (s->local_ip4)
        inet_ntop(AF_INET, &s->local_ip4, vip, sizeof(vip));
    else if (memcmp(s->local_ip6, none6, 16) != 0)
        inet_ntop(AF_INET6, s->local_ip6, vip, sizeof(vip));
    if (s->key.pid)
        snprintf(pid, sizeof(pid), "%u", s->key.pid);
    int tried = __builtin_popcountll(s->tried);
    int retries = tried > 1 ? tried - 1 : 0;
    log_format_ts(s->start_wall_ms, ts, sizeof(ts));
    if (connect_ms >= 0)
        metrics_hist_observe(&w->stats.connect_s, connect_ms / 1000.0);
    metrics_hist_observe(&w->stats.duration_s, (double)(now - s->t_accept_ns) / 1e9);
    if (!w->cfg.log_sessions && !s->detail[0])
        return; /* (counted above; an error is logged either way) */
    log_emit(s->detail[0] ? LOG_WARN : LOG_INFO, "session_end",
             "client=%s vip=%s node=%s backend_pid=%s retries=%d kind=%s user=%s database=%s "
             "app=%s start=%s connect_ms=%.3f duration_ms=%.3f bytes_in=%llu bytes_out=%llu "
             "tx=%c worker=%u end=%s%s%s%s",
             s->client_addr, vip, s->node ? s->node->name : "-", pid, retries,
             s->tls ? "tls" : pgwire_first_kind_name((enum pgwire_first_kind)s->kind),
             log_quote(user, sizeof(user), s->user[0] ? s->user : "-"),
             log_quote(db, sizeof(db), s->database[0] ? s->database : "-"),
             log_quote(app, sizeof(app), s->app[0] ? s->app : "-"), ts, connect_ms,
             (double)(now - s->t_accept_ns) / 1e6, (unsigned long long)s->bytes[C2S],
             (unsigned long long)s->bytes[S2C], s->tx_status ? s->tx_status : '-', s->w->index,
             s->end_reason, s->detail[0] ? " error=" : "",
             s->detail[0] ? log_quote(detail, sizeof(detail), s->detail) : "",
             !w->cfg.reuse_max_idle ? ""
             : s->reuse.reused
                 ? (s->reuse.parked_out ? " server=reused parked=1" : " server=reused parked=0")
                 : (s->reuse.parked_out ? " server=new parked=1" : " server=new parked=0"));
}

void session_end(struct session *s, const char *reason)
{
    struct lbd *l = s->lbd;
    struct lbd_worker *w = s->w;
    if (s->state == SS_CLOSING)
        return;
    session_set_state(s, SS_CLOSING);
    if (reason)
        s->end_reason = reason;
    for (int d = 0; d < 2; d++)
        if (s->relay[d].ops)
            s->relay[d].ops->stop(s, d);
    log_session(s);
    session_startup_over(s);
    if (s->key.linked || s->node_active) {
        lbd_lock(l);
        keymap_remove(&l->keys, &s->key);
        session_node_unuse_locked(s);
        lbd_unlock(l);
    }
    LIST_UNLINK(w->sessions, s);
    __atomic_store_n(&w->n_sessions, w->n_sessions - 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
    uint32_t left = __atomic_sub_fetch(&l->n_sessions, 1, __ATOMIC_RELAXED);
    uv_close((uv_handle_t *)&s->timer, on_closed);
    uv_close((uv_handle_t *)&s->client, on_closed);
    if (s->srv == SRV_OPEN) {
        s->srv = SRV_CLOSING;
        uv_close((uv_handle_t *)&s->server, on_closed);
    }
    if (left == 0 && RELAXED(l->draining))
        worker_tell_main(w, sessions_gone_main, NULL);
}

static void close_all_on(struct lbd_worker *w, const char *reason)
{
    struct session *s = w->sessions;
    while (s) {
        struct session *next = s->next;
        session_end(s, reason);
        s = next;
    }
}

static size_t starting_on(struct lbd_worker *w)
{
    size_t n = 0;
    for (struct session *s = w->sessions; s; s = s->next)
        n += s->state < SS_RELAY && !s->from_peer && s->kind != PGWIRE_FIRST_CANCEL;
    return n;
}

static size_t starting_on_ip_on(struct lbd_worker *w, const struct sockaddr_storage *ip)
{
    size_t n = 0;
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)ip;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ip;
    for (struct session *s = w->sessions; s; s = s->next) {
        bool here = ip->ss_family == AF_INET ? s->local_ip4 == a4->sin_addr.s_addr
                                             : memcmp(s->local_ip6, &a6->sin6_addr, 16) == 0;
        n += here && s->state < SS_RELAY && !s->from_peer && s->kind != PGWIRE_FIRST_CANCEL;
    }
    return n;
}

static void cut_node_on(struct lbd_worker *w, struct pool_node *n, const char *reason)
{
    struct session *s = w->sessions;
    while (s) {
        struct session *next = s->next;
        if (s->node == n &&
            (s->state == SS_RELAY || s->state == SS_NEGOTIATE || s->state == SS_STARTUP_WAIT))
            session_end(s, reason);
        s = next;
    }
}

static size_t close_on_addr_on(struct lbd_worker *w, int af, const void *ip)
{
    size_t n = 0;
    struct session *s = w->sessions;
    while (s) {
        struct session *next = s->next;
        bool match =
            af == AF_INET ? memcmp(&s->local_ip4, ip, 4) == 0 : memcmp(s->local_ip6, ip, 16) == 0;
        if (match && s->state != SS_CLOSING) {
            /* The address is gone: no FIN could leave from it. Reset instead, so the
             * socket does not linger retransmitting a FIN it cannot send. */
            uv_os_fd_t fd;
            struct linger lg = {1, 0};
            if (uv_fileno((uv_handle_t *)&s->client, &fd) == 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            session_end(s, "vip_gone");
            n++;
        }
        s = next;
    }
    return n;
}

struct pool_node *session_node_for_key(struct lbd *l, uint32_t pid, uint32_t key,
                                       uint32_t *node_key)
{
    struct keymap_entry *e = keymap_find(&l->keys, pid, key);
    if (e == NULL)
        return NULL;
    struct session *s = (struct session *)((char *)e - offsetof(struct session, key));
    *node_key = s->reuse.own_key ? s->reuse.node_key : key;
    return s->node;
}

/* ---- refusing with an ErrorResponse ---- */

/* Bytes the client sends after a refusal are read and dropped into this buffer. */
static char discard_buf[4096];

static void discard_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(discard_buf, sizeof(discard_buf));
}

static void discard_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct session *s = stream->data;
    if (nread < 0 || (s->refusal->discarded += (uint32_t)nread) > REFUSAL_DISCARD_MAX)
        session_end(s, NULL);
}

static void on_refusal_shutdown(uv_shutdown_t *req, int status)
{
    struct session *s = req->handle->data;
    if (s->state == SS_CLOSING)
        return; /* cancelled by the close */
    if (status < 0 || uv_read_start((uv_stream_t *)&s->client, discard_alloc, discard_read) != 0)
        session_end(s, NULL);
}

/* The ErrorResponse is out. Closing now would reset the connection if the client sent
 * more than lbd read (the rest of an oversized packet, a pipelined query): its kernel
 * would then drop the ErrorResponse before the client reads it. So: FIN after the
 * error, read and drop what the client still sends, and close at its EOF, after 64 KiB,
 * or at the refusal's 1 s deadline, whichever comes first. */
static void on_refusal_written(uv_write_t *req, int status)
{
    struct session *s = req->handle->data;
    if (status < 0 || s->state == SS_CLOSING ||
        uv_shutdown(&s->refusal->shutdown, (uv_stream_t *)&s->client, on_refusal_shutdown) != 0)
        session_end(s, NULL);
}

static void close_server(struct session *s)
{
    if (s->srv == SRV_OPEN) {
        s->srv = SRV_CLOSING;
        uv_close((uv_handle_t *)&s->server, on_closed);
    }
    session_node_unuse(s);
}

void session_refuse_raw(struct session *s, const uint8_t *answer, size_t n, const char *why,
                        const char *reason)
{
    if (s->state >= SS_REFUSING)
        return;
    s->end_reason = reason;
    snprintf(s->detail, sizeof(s->detail), "%s", why);
    uv_read_stop((uv_stream_t *)&s->client);
    close_server(s);
    session_set_state(s, SS_REFUSING);
    s->refusal = calloc(1, sizeof(*s->refusal));
    if (s->refusal == NULL || n > REFUSAL_MSG_MAX) {
        session_end(s, NULL);
        return;
    }
    if (n == 0) { /* nothing to say: the FIN, then the lingering close */
        if (uv_shutdown(&s->refusal->shutdown, (uv_stream_t *)&s->client, on_refusal_shutdown))
            session_end(s, NULL);
        return;
    }
    memcpy(s->refusal->msg, answer, n);
    uv_buf_t b = uv_buf_init((char *)s->refusal->msg, (unsigned)n);
    if (uv_write(&s->refusal->write, (uv_stream_t *)&s->client, &b, 1, on_refusal_written))
        session_end(s, NULL);
}

/* Tell the client why in PostgreSQL's own words, then close. */
void session_refuse(struct session *s, const char *sqlstate, const char *msg, const char *reason)
{
    uint8_t e[REFUSAL_MSG_MAX];
    size_t n = pgwire_error_build(e, sizeof(e), "FATAL", sqlstate, msg);
    if (n == 0 && s->state < SS_REFUSING) {
        session_end(s, reason);
        return;
    }
    session_refuse_raw(s, e, n, msg, reason);
}

/* Refuse, but if the client's packet is an encryption request, first answer 'N' and
 * wait for its StartupMessage, so the reason reaches the user (PostgreSQL does the same
 * for "too many clients"). */
void session_refuse_after_negotiation(struct session *s, const char *sqlstate, const char *msg,
                                      const char *reason)
{
    bool encrypting = s->kind == PGWIRE_FIRST_SSL || s->kind == PGWIRE_FIRST_GSSENC;
    if (!encrypting || s->srv != SRV_NONE) {
        session_refuse(s, sqlstate, msg, reason);
        return;
    }
    s->pending_sqlstate = sqlstate;
    s->pending_reason = reason;
    if (msg != s->pending_msg) /* a repeat passes our own buffer: never copy onto itself */
        snprintf(s->pending_msg, sizeof(s->pending_msg), "%s", msg);
    uv_buf_t no = uv_buf_init("N", 1);
    if (uv_try_write((uv_stream_t *)&s->client, &no, 1) != 1) {
        session_refuse(s, sqlstate, msg, reason);
        return;
    }
    s->first_len = 0;
    session_set_state(s, SS_FIRST);
}

/* ---- timers ---- */

void session_arm_startup(struct session *s)
{
    uint64_t now = uv_now(s->w->loop);
    uv_timer_start(&s->timer, session_on_timer, s->deadline_ms > now ? s->deadline_ms - now : 0, 0);
}

void session_startup_over(struct session *s)
{
    if (s->src_counted) {
        s->src_counted = false;
        lbd_lock(s->lbd);
        guard_source_startup_end(&s->lbd->guard, s->src);
        lbd_unlock(s->lbd);
    }
}

void session_arm_idle(struct session *s)
{
    const struct lbd_config *c = &s->w->cfg;
    uint64_t now = uv_now(s->w->loop), wait = UINT64_MAX;
    if (c->client_idle_ms) {
        uint64_t due = s->last_active_ms[C2S] + c->client_idle_ms;
        wait = due > now ? due - now : 0;
    }
    if (c->server_idle_ms) {
        uint64_t due = s->last_active_ms[S2C] + c->server_idle_ms;
        uint64_t w = due > now ? due - now : 0;
        wait = w < wait ? w : wait;
    }
    if (s->drain_grace_due > now && s->drain_grace_due - now < wait)
        wait = s->drain_grace_due - now;
    if (wait == UINT64_MAX)
        uv_timer_stop(&s->timer);
    else
        uv_timer_start(&s->timer, session_on_timer, wait, 0);
}

void session_on_timer(uv_timer_t *t)
{
    struct session *s = t->data;
    struct lbd_worker *w = s->w;
    uint64_t now = uv_now(w->loop);
    /* The node's deadlines: an answer (or the connect's completion) already waiting gets
     * one loop turn before it counts against the node (lbd.h: lbd_io_waiting). */
    bool node_wait =
        s->state == SS_CONNECTING || s->state == SS_NEGOTIATE || s->state == SS_STARTUP_WAIT;
    if (node_wait && !s->late_timer && s->srv == SRV_OPEN &&
        lbd_io_waiting((uv_handle_t *)&s->server, s->state == SS_CONNECTING)) {
        s->late_timer = true;
        STAT_INC(w->stats.node_timeouts_late);
        uv_timer_start(&s->timer, session_on_timer, 1, 0);
        return;
    }
    switch (s->state) {
    case SS_FIRST:
        /* PostgreSQL's authentication_timeout ends the process without a word. */
        STAT_INC(w->stats.startup_timeouts);
        session_refuse_raw(s, NULL, 0, "no startup packet within timeouts.startup",
                           "startup_timeout");
        break;
    case SS_CONNECTING:
        session_connect_failed(s, UV_ETIMEDOUT);
        break;
    case SS_NEGOTIATE:
        snprintf(s->detail, sizeof(s->detail), "node did not answer the encryption request");
        session_end(s, "node_timeout");
        break;
    case SS_STARTUP_WAIT:
        snprintf(s->detail, sizeof(s->detail), "node did not answer the startup packet");
        session_end(s, "node_timeout");
        break;
    case SS_RELAY:
        if (s->drain_grace_due && now >= s->drain_grace_due && session_drain_if_idle(s))
            break;
        if (w->cfg.client_idle_ms && now - s->last_active_ms[C2S] >= w->cfg.client_idle_ms) {
            STAT_INC(w->stats.idle_timeouts);
            session_end(s, "client_idle_timeout");
        } else if (w->cfg.server_idle_ms && now - s->last_active_ms[S2C] >= w->cfg.server_idle_ms) {
            STAT_INC(w->stats.idle_timeouts);
            session_end(s, "server_idle_timeout");
        } else {
            session_arm_idle(s);
        }
        break;
    case SS_REFUSING:
        session_end(s, NULL);
        break;
    case SS_CLOSING:
        break;
    }
}

/* ---- accept ---- */

static void session_begin(struct session *s, bool from_peer, const struct sockaddr_storage *listen);

/* A new session with its client handle initialised (nothing connected yet). */
static struct session *session_alloc(struct lbd_worker *w)
{
    struct session *s = fault_hit("session_alloc") ? NULL : calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->lbd = w->lbd;
    s->w = w;
    s->client.data = s;
    s->timer.data = s;
    s->server.data = s;
    uv_tcp_init(w->loop, &s->client);
    s->handles_open = 1;
    return s;
}

/* No memory for a session: the connection is closed at once (the listener's, with
 * listener_drop_pending, or libuv, whose accepted_fd would stay taken, stops polling the
 * listener for good). */
static void accept_failed(struct lbd_worker *w)
{
    unsigned long long held;
    STAT_INC(w->stats.accept_failed);
    __atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
    if (lbd_log_pass(w->lbd, &w->lbd->lim_accept, &held))
        log_emit(LOG_WARN, "accept_failed", "error=\"out of memory for a session\" held_back=%llu",
                 held);
}

void session_accept(struct lbd_listener *ls, struct lbd_worker *w)
{
    struct session *s = session_alloc(w);
    if (s == NULL) {
        listener_drop_pending((uv_stream_t *)&ls->tcp);
        accept_failed(w);
        return;
    }
    if (uv_accept((uv_stream_t *)&ls->tcp, (uv_stream_t *)&s->client) != 0) {
        __atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
        uv_close((uv_handle_t *)&s->client, on_closed);
        return;
    }
    session_begin(s, ls->peer, &ls->addr);
}

void session_adopt(struct lbd_worker *w, int fd, bool from_peer,
                   const struct sockaddr_storage *listen)
{
    struct session *s = session_alloc(w);
    if (s == NULL) {
        close(fd);
        accept_failed(w);
        return;
    }
    if (uv_tcp_open(&s->client, fd) != 0) {
        close(fd);
        __atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
        uv_close((uv_handle_t *)&s->client, on_closed);
        return;
    }
    session_begin(s, from_peer, listen);
}

/* listen: the listener's own address, or NULL; when it names one IPv4 address (a VIP),
 * that is where the client connected, with no getsockname() per session. */
static void session_begin(struct session *s, bool from_peer, const struct sockaddr_storage *listen)
{
    struct lbd *l = s->lbd;
    struct lbd_worker *w = s->w;
    uv_timer_init(w->loop, &s->timer);
    s->handles_open++;
    s->from_peer = from_peer;
    s->t_accept_ns = uv_hrtime();
    s->start_wall_ms = clock_wall_ms();
    s->end_reason = "client_closed";
    s->kind = PGWIRE_FIRST_INCOMPLETE;
    struct sockaddr_storage peer;
    int plen = sizeof(peer);
    memset(&peer, 0, sizeof(peer));
    bool gone = uv_tcp_getpeername(&s->client, (struct sockaddr *)&peer, &plen) != 0;
    if (!gone)
        format_sockaddr((struct sockaddr *)&peer, s->client_addr, sizeof(s->client_addr));
    else
        snprintf(s->client_addr, sizeof(s->client_addr), "-");
    guard_source_key(&peer, s->src);
    s->deadline_ms = uv_now(w->loop) + w->cfg.startup_ms;
    const struct sockaddr_in *l4 = (const struct sockaddr_in *)listen;
    const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)listen;
    if (listen && listen->ss_family == AF_INET && l4->sin_addr.s_addr != htonl(INADDR_ANY)) {
        s->local_ip4 = l4->sin_addr.s_addr;
    } else if (listen && listen->ss_family == AF_INET6 &&
               !IN6_IS_ADDR_UNSPECIFIED(&l6->sin6_addr)) {
        memcpy(s->local_ip6, &l6->sin6_addr, 16);
    } else {
        struct sockaddr_storage local;
        plen = sizeof(local);
        if (uv_tcp_getsockname(&s->client, (struct sockaddr *)&local, &plen) == 0) {
            if (local.ss_family == AF_INET)
                s->local_ip4 = ((struct sockaddr_in *)&local)->sin_addr.s_addr;
            else if (local.ss_family == AF_INET6)
                memcpy(s->local_ip6, &((struct sockaddr_in6 *)&local)->sin6_addr, 16);
        }
    }
    LIST_PUSH(w->sessions, s);
    __atomic_store_n(&w->n_sessions, w->n_sessions + 1, __ATOMIC_RELAXED);
    uint32_t open = __atomic_add_fetch(&l->n_sessions, 1, __ATOMIC_RELAXED);
    STAT_INC(w->stats.sessions_total);
    s->id = __atomic_add_fetch(&l->session_ids, 1, __ATOMIC_RELAXED);
    /* The client socket came from a listener and has its options (lbd.c tune_listener). */
    if (gone) {
        /* Reset before it was accepted: nobody to answer, and no source to hold to its
         * bounds (what it sent must not be acted on anonymously). */
        s->quiet = true;
        session_end(s, "client_error");
        return;
    }
    if (from_peer &&
        !sockaddr_ip_equal((struct sockaddr *)&peer, (struct sockaddr *)&w->cfg.peer)) {
        /* Only the peer lbd sends here: anyone else gets a reset, and costs nothing more. */
        unsigned long long held;
        struct linger lg = {1, 0};
        uv_os_fd_t fd;
        STAT_INC(w->stats.cancel_peer_refused);
        if (lbd_log_pass(w->lbd, &w->lbd->lim_peer, &held))
            log_emit(LOG_WARN, "peer_refused",
                     "client=%s held_back=%llu detail=\"the peer "
                     "listener takes connections from lbd.peer.address only\"",
                     s->client_addr, held);
        if (uv_fileno((uv_handle_t *)&s->client, &fd) == 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        s->quiet = true;
        session_end(s, "peer_refused");
        return;
    }
    bool counted = false;
    enum guard_verdict v = GUARD_OK;
    if (!from_peer) {
        lbd_lock(l);
        v = guard_source_startup_begin(&l->guard, s->src, uv_now(w->loop), &counted);
        lbd_unlock(l);
    }
    s->src_counted = counted;
    if (v != GUARD_OK || !lbd_fd_room(l, 2)) {
        /* Refused after its first packet, as maxconn below (libpq shows an error
         * that answers an SSLRequest only as "error response during SSL exchange"),
         * but with a second to send it: a client that says nothing is gone then. */
        unsigned long long held;
        bool busy = v != GUARD_OK;
        if (busy)
            STAT_INC(w->stats.refused_source_busy);
        else
            STAT_INC(w->stats.refused_local);
        if (lbd_log_pass(w->lbd, busy ? &w->lbd->lim_busy : &w->lbd->lim_local, &held))
            log_emit(LOG_WARN, busy ? "source_busy" : "local_exhaustion",
                     "client=%s held_back=%llu detail=%s", s->client_addr, held,
                     busy ? "\"limits.startup_per_source connections from this address have "
                            "not logged in yet\""
                          : "\"lbd is out of file descriptors (LimitNOFILE, ulimit -n)\"");
        s->quiet = true; /* (that line, once a second, and the counter say it) */
        s->pending_sqlstate = "53300";
        s->pending_reason = busy ? "source_busy" : "local_exhaustion";
        snprintf(s->pending_msg, sizeof(s->pending_msg), "%s",
                 busy ? "sorry, too many connections from this address are starting up (lbd "
                        "limits.startup_per_source)"
                      : "sorry, too many clients already (lbd is out of file descriptors)");
        if (w->cfg.startup_ms > 1000)
            s->deadline_ms = uv_now(w->loop) + 1000;
        session_set_state(s, SS_FIRST);
        return;
    }
    if (open > w->cfg.maxconn) {
        /* Refused after its first packet: the reason survives SSL negotiation, and a
         * CancelRequest is still routed. */
        STAT_INC(w->stats.refused_maxconn);
        s->pending_sqlstate = "53300";
        s->pending_reason = "maxconn";
        snprintf(s->pending_msg, sizeof(s->pending_msg),
                 "sorry, too many clients already (lbd maxconn)");
    }
    session_set_state(s, SS_FIRST);
}

/* ---- reading: one callback per socket, whatever the session's state ----
 *
 * A socket stays in libuv's read mode from its first read to the session's end (the
 * relay's back-pressure and splicing aside): a read stopped and started again
 * costs two epoll_ctl calls at the next poll, and a session's startup did that five
 * times (10 of its 49 system calls). So each socket has one callback that hands a read
 * to what the session's state expects; a read in a state that expects nothing from
 * that side (the client while lbd connects or waits for the node's answer, the node
 * while lbd waits for the client's StartupMessage after an 'N') is parked: its buffer
 * is held, reading stops, and the read is handed on when the state changes to one
 * that reads that side. */

static void park(struct session *s, int side, uv_stream_t *stream, ssize_t nread,
                 const uv_buf_t *buf)
{
    if (nread == 0) {
        session_buf_release(s, buf);
        return;
    }
    uv_read_stop(stream);
    s->parked[side] = nread > 0 ? buf->base : NULL;
    s->parked_n[side] = nread;
    if (nread < 0)
        session_buf_release(s, buf);
}

static void client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    if (s->state == SS_FIRST)
        session_first_read(stream, nread, buf);
    else if (s->state == SS_RELAY)
        s->relay[C2S].ops->data_arrived(s, C2S, nread, buf);
    else
        park(s, 0, stream, nread, buf);
}

static void server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    if (s->state == SS_NEGOTIATE)
        session_negotiate_read(stream, nread, buf);
    else if (s->state == SS_STARTUP_WAIT)
        session_startup_reply_read(stream, nread, buf);
    else if (s->state == SS_RELAY)
        s->relay[S2C].ops->data_arrived(s, S2C, nread, buf);
    else
        park(s, 1, stream, nread, buf);
}

/* Read a side for the current state: first what was parked, then the socket (when
 * already reading, uv_read_start leaves it so: UV_EALREADY). */
static void read_side(struct session *s, int side)
{
    uv_stream_t *stream = (uv_stream_t *)(side == 0 ? &s->client : &s->server);
    uv_read_cb cb = side == 0 ? client_read : server_read;
    if (s->parked_n[side]) {
        uv_buf_t b = uv_buf_init(s->parked[side], s->parked[side] ? LBD_BUF_SIZE : 0);
        ssize_t n = s->parked_n[side];
        s->parked[side] = NULL;
        s->parked_n[side] = 0;
        cb(stream, n, &b);
        /* (Not when that read ended or refused the session, parked again, or left a
         * write in flight: the relay reads on once it is written.) */
        if (n < 0 || s->parked_n[side] || s->state == SS_CLOSING || s->state == SS_REFUSING ||
            (s->state == SS_RELAY && !s->relay[side].ops->at_rest(s, side)))
            return;
    }
    uv_read_start(stream, session_on_alloc, cb);
}

void session_read_client(struct session *s)
{
    read_side(s, 0);
}

void session_read_server(struct session *s)
{
    read_side(s, 1);
}

/* ---- the relay ---- */

void session_on_backend_event(void *ctx, const struct pgwire_event *ev)
{
    struct session *s = ctx;
    if (ev->kind == PGWIRE_EV_BACKEND_KEY) {
        lbd_lock(s->lbd);
        keymap_add(&s->lbd->keys, &s->key, ev->pid, ev->key);
        lbd_unlock(s->lbd);
    } else if (ev->kind == PGWIRE_EV_READY) {
        s->tx_status = ev->tx_status;
        if (s->ready_seen)
            s->readies++;
        s->ready_seen = true;
    } else if (ev->kind == PGWIRE_EV_PARAM && s->ready_seen) {
        s->reuse.reusable = false; /* a setting reported since the startup: replay would lie */
    }
}

uv_tcp_t *session_sender(struct session *s, int d)
{
    return d == C2S ? &s->client : &s->server;
}

int session_fd(uv_tcp_t *t)
{
    uv_os_fd_t fd;
    return uv_fileno((uv_handle_t *)t, &fd) == 0 ? fd : -1;
}

static bool relay_at_rest(const struct session *s, int d)
{
    return s->relay[d].ops->at_rest(s, d);
}

/* Give direction d to relay ops (its current one lets go once the new one has it). */
static bool relay_use(struct session *s, int d, const struct relay_ops *ops)
{
    const struct relay_ops *old = s->relay[d].ops;
    s->relay[d].ops = ops; /* (set first: a start may hand on a read at once) */
    if (ops->start(s, d) != 0) {
        s->relay[d].ops = old;
        return false;
    }
    if (old)
        old->stop(s, d);
    if (!ops->sees_bytes) {
        /* Unseen bytes: the stream is no longer framed, so neither a reuse nor an idle
         * moment can be known for the rest of the session. */
        s->reuse.reusable = false;
        if (d == C2S) {
            s->cframe_lost = true;
        } else {
            s->opaque = true;
            s->tx_status = 0;
        }
    }
    return true;
}

void session_relay_begin(struct session *s)
{
    s->relay[C2S].ops = s->relay[S2C].ops = &relay_copy;
    for (int d = 0; d < 2 && s->state == SS_RELAY; d++) /* (a parked read may end it) */
        (void)relay_copy.start(s, d);
}

/* n bytes of direction d went through lbd (copied or spliced): the session's, the
 * node's and lbd's byte counts, and both sides are active. */
void session_relay_moved(struct session *s, int d, uint64_t n)
{
    struct lbd_worker *w = s->w;
    s->bytes[d] += n;
    if (d == C2S) {
        __atomic_add_fetch(&s->node->bytes_in, n, __ATOMIC_RELAXED);
        STAT_ADD(w->stats.bytes_in, n);
    } else {
        __atomic_add_fetch(&s->node->bytes_out, n, __ATOMIC_RELAXED);
        STAT_ADD(w->stats.bytes_out, n);
    }
    s->last_active_ms[C2S] = s->last_active_ms[S2C] = uv_now(w->loop);
}

void session_relay_failed(struct session *s, int d, bool eof, bool in_error)
{
    if (eof)
        session_end(s, d == C2S ? "client_closed" : "node_closed");
    else if (in_error == (d == C2S))
        session_end(s, "client_error");
    else
        session_end(s, "node_error");
}

void session_relay_quiet(struct session *s, int d)
{
    s->relay[d].run = 0;
    if (!relay_use(s, d, &relay_copy))
        session_end(s, d == C2S ? "client_error" : "node_error");
}

/* Direction d read BULK_AFTER bytes with the other direction silent, all written: splice
 * it from here on, until it is quiet (true). Only once the startup is over: a spliced
 * node stream is not parsed, so the transaction state is unknown from then on. */
static bool relay_maybe_splice(struct session *s, int d)
{
    if (s->relay[d].run < BULK_AFTER || !s->relay[d].ops->sees_bytes ||
        !(s->ready_seen || s->opaque))
        return false;
    if (relay_use(s, d, &relay_splice))
        return true;
    s->relay[d].run = 0; /* (refused: try again after another BULK_AFTER bytes) */
    return false;
}

bool session_relay_at_rest(struct session *s, int d)
{
    if (s->state != SS_RELAY)
        return false;
    if (d == S2C && session_drain_if_idle(s))
        return false;
    return !relay_maybe_splice(s, d);
}

/* An idle moment: the node's last message was ReadyForQuery outside a transaction,
 * every request the client sent has its ReadyForQuery, no extended-protocol batch is
 * open, both streams are at a message boundary and nothing is on its way either way. A
 * session closed now loses nothing: PostgreSQL's own pg_terminate_backend() of an idle
 * backend looks the same to the client. */
static bool session_idle_point(const struct session *s)
{
    return s->state == SS_RELAY && !s->opaque && !s->cframe_lost && s->ready_seen &&
           s->tx_status == 'I' && s->cstream.syncs == s->readies && !s->cstream.open_batch &&
           s->cstream.hdr_len == 0 && s->cstream.remaining == 0 && s->sstream.hdr_len == 0 &&
           s->sstream.remaining == 0 && relay_at_rest(s, C2S) && relay_at_rest(s, S2C);
}

/* The frontend's Terminate message. */
static const uint8_t terminate_msg[5] = {'X', 0, 0, 0, 4};

bool session_drain_if_idle(struct session *s)
{
    bool asked = s->kill_at_idle || (s->node && pool_node_draining(s->node) &&
                                     s->w->cfg.on_node_drain == LBD_ON_DRAIN_AT_IDLE);
    if (s->node == NULL || !asked || !session_idle_point(s))
        return false;
    /* A session that has asked nothing since its startup: its client has just connected
     * and is about to send its first request, which a close now would fail (seen in
     * the docker drill: a new session every 100 ms, each drained before its SELECT).
     * It gets DRAIN_FRESH_GRACE_MS; still idle then, it goes. (A pool's warm connection
     * that never asks anything costs that second, no more.) */
    if (s->readies == 0 && !s->kill_at_idle) {
        uint64_t now = uv_now(s->w->loop);
        if (s->drain_grace_due == 0) {
            s->drain_grace_due = now + DRAIN_FRESH_GRACE_MS;
            session_arm_idle(s);
            return false;
        }
        if (now < s->drain_grace_due)
            return false;
    }
    /* The node's backend ends cleanly (a Terminate, as a client leaving), then the client
     * hears why, as from PostgreSQL. */
    uv_buf_t t = uv_buf_init((char *)terminate_msg, sizeof(terminate_msg));
    (void)uv_try_write((uv_stream_t *)&s->server, &t, 1);
    if (s->kill_at_idle)
        STAT_INC(s->w->stats.killed_at_idle);
    else
        STAT_INC(s->w->stats.drained_at_idle);
    session_refuse(s, "57P01", "terminating connection due to administrator command",
                   s->kill_at_idle ? "killed_at_idle" : "node_draining");
    return true;
}

static void drain_node_on(struct lbd_worker *w, struct pool_node *n)
{
    struct session *s = w->sessions;
    while (s) {
        struct session *next = s->next;
        if (s->node == n)
            session_drain_if_idle(s);
        s = next;
    }
}

/* End a relaying session now: PostgreSQL's words when the node's stream is at a message
 * boundary (an ErrorResponse inside another message would corrupt it), a plain close
 * otherwise. The node rolls an open transaction back either way, as after
 * pg_terminate_backend(). */
static void session_terminate(struct session *s, const char *reason)
{
    if (!s->opaque && s->sstream.hdr_len == 0 && s->sstream.remaining == 0 && relay_at_rest(s, S2C))
        session_refuse(s, "57P01", "terminating connection due to administrator command", reason);
    else
        session_end(s, reason);
}

static void drain_deadline_on(struct lbd_worker *w, struct pool_node *n)
{
    struct session *s = w->sessions;
    while (s) {
        struct session *next = s->next;
        if (s->node == n && s->state == SS_RELAY) {
            STAT_INC(w->stats.drain_deadline_ended);
            session_terminate(s, "node_drain_deadline");
        }
        s = next;
    }
}

/* A client session (not a cancel, not one ending) as the control socket shows it. */
static bool session_listed(const struct session *s)
{
    return s->kind != PGWIRE_FIRST_CANCEL && !s->from_peer && s->state != SS_CLOSING &&
           s->state != SS_REFUSING;
}

static const char *session_view_state(const struct session *s)
{
    if (s->state != SS_RELAY || !s->ready_seen)
        return "startup";
    if (s->opaque)
        return "encrypted"; /* (TLS: lbd cannot see the messages) */
    if (s->cframe_lost || !s->relay[C2S].ops->sees_bytes || !s->relay[S2C].ops->sees_bytes)
        return "active";
    bool waiting = s->cstream.syncs != s->readies || s->cstream.open_batch || s->cstream.hdr_len ||
                   s->cstream.remaining;
    if (waiting)
        return "active";
    return s->tx_status == 'T'   ? "idle in transaction"
           : s->tx_status == 'E' ? "idle in failed transaction"
                                 : "idle";
}

static void each_on(struct lbd_worker *w, void (*fn)(void *ctx, const struct session_view *v),
                    void *ctx)
{
    uint64_t now = clock_wall_ms();
    static const uint8_t none6[16];
    for (struct session *s = w->sessions; s; s = s->next) {
        if (!session_listed(s))
            continue;
        struct session_view v = {.id = s->id,
                                 .client = s->client_addr,
                                 .user = s->user,
                                 .database = s->database,
                                 .app = s->app,
                                 .node = s->node,
                                 .state = session_view_state(s),
                                 .age_ms = now > s->start_wall_ms ? now - s->start_wall_ms : 0,
                                 .bytes_in = s->bytes[C2S],
                                 .bytes_out = s->bytes[S2C],
                                 .backend_pid = s->key.pid,
                                 .kill_pending = s->kill_at_idle};
        snprintf(v.vip, sizeof(v.vip), "-");
        if (s->local_ip4)
            inet_ntop(AF_INET, &s->local_ip4, v.vip, sizeof(v.vip));
        else if (memcmp(s->local_ip6, none6, 16) != 0)
            inet_ntop(AF_INET6, s->local_ip6, v.vip, sizeof(v.vip));
        fn(ctx, &v);
    }
}

/* Kill one session: now, or at its next idle moment (at once when it is idle now, or
 * has not reached a node yet: nothing of the client's can be lost then). */
static void session_kill_one(struct session *s, bool now)
{
    if (s->state != SS_RELAY) {
        session_end(s, "killed");
        return;
    }
    if (now) {
        STAT_INC(s->w->stats.killed_now);
        session_terminate(s, "killed");
        return;
    }
    s->kill_at_idle = true;
    session_drain_if_idle(s);
}

static int kill_on(struct lbd_worker *w, uint64_t id, bool now)
{
    for (struct session *s = w->sessions; s; s = s->next) {
        if (s->id == id && session_listed(s)) {
            session_kill_one(s, now);
            return 0;
        }
    }
    return -ENOENT;
}

static size_t kill_node_on(struct lbd_worker *w, struct pool_node *n, bool now)
{
    size_t count = 0;
    struct session *s = w->sessions;
    while (s) {
        struct session *next = s->next;
        if (s->node == n && session_listed(s)) {
            session_kill_one(s, now);
            count++;
        }
        s = next;
    }
    return count;
}

/* This read is the client's Terminate, alone, at a clean point: every Query and Sync
 * answered by its ReadyForQuery, no extended-protocol batch open, no transaction, the
 * node's stream at a message boundary and nothing in flight either way. Anything else
 * (and a bad frame) makes the session not reusable. */
static bool client_left_cleanly(struct session *s, const uint8_t *data, size_t n)
{
    return !s->cframe_lost && n == 5 && memcmp(data, terminate_msg, 5) == 0 &&
           s->cstream.terminated && !s->cstream.open_batch && s->cstream.syncs == s->readies &&
           s->tx_status == 'I' && s->sstream.hdr_len == 0 && relay_at_rest(s, C2S) &&
           relay_at_rest(s, S2C) && reuse_can_park(s->w, s->node);
}

/* The client left cleanly: its node connection goes to reuse.c (a descriptor of its own:
 * the session closes its handle as usual) instead of being closed. */
static void park_node_connection(struct session *s)
{
    int fd = session_fd(&s->server);
    int own = fd >= 0 ? dup(fd) : -1;
    if (own < 0)
        return;
    uint8_t *startup = s->reuse.startup, *params = s->reuse.params;
    s->reuse.startup = s->reuse.params = NULL;
    if (reuse_park(s->w, s->node, own, startup, s->reuse.startup_len, params, s->reuse.params_len,
                   s->key.pid, s->reuse.node_key) == 0)
        s->reuse.parked_out = true;
}

bool session_relay_observe(struct session *s, int d, const uint8_t *data, size_t n)
{
    if (s->state != SS_RELAY)
        return false;
    /* The client's messages are framed (not parsed) so lbd knows when every request has
     * its answer: a reusable connection, a session a drain may close. */
    if (d == C2S && !s->cframe_lost && pgwire_front_feed(&s->cstream, data, n) != 0) {
        s->cframe_lost = true;
        s->reuse.reusable = false;
    }
    if (d == C2S && s->reuse.reusable && client_left_cleanly(s, data, n)) {
        session_relay_moved(s, C2S, n);
        park_node_connection(s);
        session_end(s, "client_closed");
        return false;
    }
    if (d == S2C && !s->opaque &&
        pgwire_stream_feed(&s->sstream, data, n, session_on_backend_event, s) != 0) {
        s->opaque = true;
        log_emit(LOG_WARN, "protocol_error",
                 "client=%s node=%s detail=\"node sent a bad message length; relaying as is\"",
                 s->client_addr, s->node->name);
    }
    return true;
}

/* ---- worker 0 asks every worker (session.h) ---- */

struct on_all {
    const char *reason;
    struct pool_node *n;
    const struct sockaddr_storage *ip;
    int af;
    const void *addr;
    uint64_t id;
    bool now, found;
    void (*fn)(void *ctx, const struct session_view *v);
    void *ctx;
    size_t count;
};

static void all_close(struct lbd_worker *w, void *arg)
{
    close_all_on(w, ((struct on_all *)arg)->reason);
}

void session_close_all(struct lbd *l, const char *reason)
{
    struct on_all a = {.reason = reason};
    workers_run(l, all_close, &a);
}

static void all_starting(struct lbd_worker *w, void *arg)
{
    struct on_all *a = arg;
    a->count += a->ip ? starting_on_ip_on(w, a->ip) : starting_on(w);
}

size_t session_count_starting(struct lbd *l)
{
    struct on_all a = {.ip = NULL};
    workers_run(l, all_starting, &a);
    return a.count;
}

size_t session_count_starting_on(struct lbd *l, const struct sockaddr_storage *ip)
{
    struct on_all a = {.ip = ip};
    workers_run(l, all_starting, &a);
    return a.count;
}

static void all_cut(struct lbd_worker *w, void *arg)
{
    struct on_all *a = arg;
    cut_node_on(w, a->n, a->reason);
}

void session_cut_node(struct lbd *l, struct pool_node *n, const char *reason)
{
    struct on_all a = {.n = n, .reason = reason};
    workers_run(l, all_cut, &a);
}

static void all_close_on_addr(struct lbd_worker *w, void *arg)
{
    struct on_all *a = arg;
    a->count += close_on_addr_on(w, a->af, a->addr);
}

size_t session_close_on_addr(struct lbd *l, int af, const void *ip)
{
    struct on_all a = {.af = af, .addr = ip};
    workers_run(l, all_close_on_addr, &a);
    return a.count;
}

static void all_drain(struct lbd_worker *w, void *arg)
{
    drain_node_on(w, ((struct on_all *)arg)->n);
}

void session_drain_node(struct lbd *l, struct pool_node *n)
{
    struct on_all a = {.n = n};
    workers_run(l, all_drain, &a);
}

static void all_drain_deadline(struct lbd_worker *w, void *arg)
{
    drain_deadline_on(w, ((struct on_all *)arg)->n);
}

void session_drain_deadline(struct lbd *l, struct pool_node *n)
{
    struct on_all a = {.n = n};
    workers_run(l, all_drain_deadline, &a);
}

static void all_each(struct lbd_worker *w, void *arg)
{
    struct on_all *a = arg;
    each_on(w, a->fn, a->ctx);
}

void session_each(struct lbd *l, void (*fn)(void *ctx, const struct session_view *v), void *ctx)
{
    struct on_all a = {.fn = fn, .ctx = ctx};
    workers_run(l, all_each, &a);
}

static void all_kill(struct lbd_worker *w, void *arg)
{
    struct on_all *a = arg;
    if (!a->found)
        a->found = kill_on(w, a->id, a->now) == 0;
}

int session_kill(struct lbd *l, uint64_t id, bool now)
{
    struct on_all a = {.id = id, .now = now};
    workers_run(l, all_kill, &a);
    return a.found ? 0 : -ENOENT;
}

static void all_kill_node(struct lbd_worker *w, void *arg)
{
    struct on_all *a = arg;
    a->count += kill_node_on(w, a->n, a->now);
}

size_t session_kill_node(struct lbd *l, struct pool_node *n, bool now)
{
    struct on_all a = {.n = n, .now = now};
    workers_run(l, all_kill_node, &a);
    return a.count;
}
