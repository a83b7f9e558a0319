/* session.c -- one client connection: read and classify the first packet, choose a
 * node (trying the next one when a connect fails before any byte was relayed), pass
 * TLS/GSS negotiation through end to end, then relay both directions with
 * back-pressure, and log one line when it ends.
 *
 * Neighbours: pgwire.c parses, pool.c chooses, cancel.c routes CancelRequests,
 * lbd.c owns the listeners and the node states; bulk.c splices bulk transfers. */
#include "lbd.h"

#include "bulk.h"
#include "log.h"
#include "parse.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum session_state {
    SS_FIRST,      /* reading the client's first packet (or the next one after an 'N') */
    SS_CONNECTING, /* connecting to a node */
    SS_NEGOTIATE,  /* SSL/GSSENC request forwarded; waiting for the node's one byte */
    SS_STARTUP_WAIT, /* StartupMessage forwarded; judging the node's first answer */
    SS_RELAY,      /* relaying both ways */
    SS_REFUSING,   /* writing an ErrorResponse, then closing */
    SS_CLOSING,    /* handles closing; freed by the last close callback */
};

enum { C2S = 0, S2C = 1 };

/* Client messages lbd relays itself before a session goes to the kernel: a handoff and
 * its undoing cost about 25 system calls, more than a few queries relayed here, so a
 * session that ends after one transaction (pgbench -C, a health probe) never pays them. */
#define KRELAY_AFTER 4

/* Bytes read in one direction with nothing read the other way meanwhile, after which
 * that direction is spliced (bulk.h): a COPY or a big result, not a conversation.
 * Starting and ending a splice costs about 15 system calls. */
#define BULK_AFTER (256 * 1024)

/* A refusal: the ErrorResponse, then a lingering close (see on_refusal_written). */
#define REFUSAL_MSG_MAX 256
#define REFUSAL_DISCARD_MAX (64 * 1024)
struct refusal {
    uv_shutdown_t shutdown;
    uint32_t discarded;
    uint8_t msg[REFUSAL_MSG_MAX];
};
enum server_state { SRV_NONE, SRV_OPEN, SRV_CLOSING };

struct session {
    uv_tcp_t client; /* data = this session */
    uv_tcp_t server;
    uv_timer_t timer; /* startup, connect, negotiation or idle deadline */
    uv_connect_t connect_req;
    uv_write_t wreq[2]; /* one write in flight per direction at most */
    uv_write_t first_wreq;
    struct lbd *lbd;
    struct session *prev, *next; /* on lbd->sessions */
    struct pool_node *node;      /* holds a reference while set */
    enum session_state state;
    enum server_state srv;
    uint8_t handles_open;
    uint8_t attempts;
    uint8_t kind; /* enum pgwire_first_kind of the (last) first packet */
    bool node_active, from_peer, tls, opaque, counted_relayed;
    bool ready_seen;  /* the node's first ReadyForQuery went by: the startup is over */
    bool krelay;      /* the kernel relays this session (krelay.h) */
    bool krelay_tried;
    uint8_t kflush;   /* 1 + the direction whose sender closed, while its rest is sent */
    char tx_status;
    uint64_t tried; /* node indexes already tried */
    uint8_t *first; /* first-packet bytes until forwarded */
    uint32_t first_len, first_cap;
    void *inflight[2];  /* buffers being written, returned by the write callback */
    struct refusal *refusal; /* ErrorResponse being written, then the lingering close */
    uint8_t *first_sending; /* first bytes the kernel did not take at once */
    uint8_t *reply;         /* the node's first answer to a StartupMessage, being judged */
    uint32_t reply_len;
    uint8_t *reply_sending;
    uv_write_t reply_wreq;
    struct pgwire_stream sstream;
    struct keymap_entry key;
    uint64_t t_accept_ns, t_connect_ns, start_wall_ms;
    /* Loop time of the last data from or to each side: [C2S] the client, [S2C] the node
     * (a client receiving a long result, or only notifications, is not idle). */
    uint64_t last_active_ms[2];
    uint64_t kflush_written, kflush_progress_ms; /* see krelay_flush_check */
    /* Kernel relay, per direction d (its sender is the client for C2S): */
    uint64_t kcookie[2];   /* the sockets' cookies, client then server */
    uint64_t kacked0[2];   /* bytes d's receiving socket had acked at the handoff */
    uint64_t kwritten0[2]; /* bytes written into d's receiving socket at the handoff */
    uint64_t kread[2];     /* bytes lbd read from d's sender since the handoff */
    uint64_t kdemote_ms[2]; /* loop time d was taken back from the kernel */
    /* 0: the kernel relays d; 1: d waits for the kernel to send its rest; 2: lbd relays
     * d; 3: lbd has asked the kernel to take d again (krelay_return) and reads nothing
     * from d's sender until the program's note says whether it did. */
    uint8_t kdemote[2];
    uint8_t relay_reads;   /* client reads since the relay began, up to KRELAY_AFTER */
    uint8_t kdemote_wait;  /* ms until the next look at a direction being taken back */
    uint32_t run[2];       /* bytes read in d since the other direction read any */
    /* A read that came while its socket had nothing to say (see park): its buffer and
     * nread, [0] the client's, [1] the node's; nread 0 when none. */
    char *parked[2];
    ssize_t parked_n[2];
    struct bulk *bulk[2];  /* a bulk transfer spliced in direction d (bulk.h) */
    uint64_t bytes[2];
    const char *end_reason;
    char detail[96];
    /* A refusal waiting for the StartupMessage: clients asked for encryption first, and
     * libpq shows an error only when it arrives after the negotiation ('N'). */
    const char *pending_sqlstate, *pending_reason;
    char pending_msg[96];
    /* Reuse of node connections (reuse.c): */
    bool reuse_ok;     /* plaintext protocol 3.0 startup, reuse on: may take or leave one */
    bool reusable;     /* trusted startup, nothing since that forbids parking it */
    bool reused;       /* the node connection was a parked one */
    bool parked_out;   /* the node connection was parked when the client left */
    bool own_key;      /* the client saw a secret key of lbd's; node_key is the node's */
    uint32_t node_key;
    uint64_t readies;  /* ReadyForQuery messages after the startup's */
    struct pgwire_front cstream; /* the client's messages, framed while reusable */
    uint8_t *startup, *params;   /* while reusable: the StartupMessage, the ParameterStatus */
    uint32_t startup_len, params_len;
    char user[64], database[64], app[64];
    char client_addr[SOCKADDR_STRLEN];
    uint32_t local_ip4; /* the address the client connected to (a VIP), network order; 0: not IPv4 */
};

static void relay_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static int handle_fd(uv_tcp_t *t);
static void read_client(struct session *s);
static void read_server(struct session *s);
static void first_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void negotiate_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void startup_reply_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_backend_event(void *ctx, const struct pgwire_event *ev);
static void on_first_written(uv_write_t *req, int status);
static void connect_node(struct session *s);
static void session_end(struct session *s, const char *reason);
static void refuse(struct session *s, const char *sqlstate, const char *msg, const char *reason);
static void on_timer(uv_timer_t *t);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct session *s = h->data;
    void *p = lbd_buf_get(s->lbd);
    *buf = uv_buf_init(p, p ? LBD_BUF_SIZE : 0);
}

static void release(struct session *s, const uv_buf_t *buf)
{
    if (buf && buf->base)
        lbd_buf_put(s->lbd, buf->base);
}

static void krelay_drain_notes(struct lbd *l, struct session *ending);
static void bulk_end(struct session *s, int d);
static bool bulk_begin(struct session *s, int d);

static void free_session(struct session *s)
{
    struct lbd *l = s->lbd;
    /* Notes the program wrote for this session before its sockets closed are in the
     * ring now (the program runs under the socket lock close() takes): read them
     * before the tag they carry points at freed memory. */
    if (s->krelay && krelay_is_open(&l->krelay)) /* (closed: lbd is stopping) */
        krelay_drain_notes(l, s);
    for (int d = 0; d < 2; d++) {
        if (s->inflight[d])
            lbd_buf_put(l, s->inflight[d]);
        if (s->parked[d])
            lbd_buf_put(l, s->parked[d]);
    }
    free(s->first);
    free(s->refusal);
    free(s->first_sending);
    free(s->reply);
    free(s->reply_sending);
    free(s->startup);
    free(s->params);
    if (s->node) {
        s->node->refs--;
        lbd_node_release(l, s->node);
    }
    free(s);
}

static void on_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    if (--s->handles_open == 0)
        free_session(s);
}

static void node_unuse(struct session *s)
{
    if (s->node_active) {
        s->node->active--;
        s->node_active = false;
    }
}

/* ---- the log line and the end of a session ---- */

static void log_session(struct session *s)
{
    struct lbd *l = s->lbd;
    uint64_t now = uv_hrtime();
    char ts[40], user[80], db[80], app[80], detail[128];
    double connect_ms = s->t_connect_ns ? (double)(s->t_connect_ns - s->t_accept_ns) / 1e6 : -1;
    log_format_ts(s->start_wall_ms, ts, sizeof(ts));
    if (s->kind == PGWIRE_FIRST_CANCEL)
        return; /* cancel.c logs its own line */
    log_emit(s->detail[0] ? LOG_WARN : LOG_INFO, "session_end",
             "client=%s node=%s kind=%s user=%s database=%s app=%s start=%s connect_ms=%.3f "
             "duration_ms=%.3f bytes_in=%llu bytes_out=%llu tx=%c relay=%s end=%s%s%s%s",
             s->client_addr, s->node ? s->node->name : "-",
             s->tls ? "tls" : pgwire_first_kind_name((enum pgwire_first_kind)s->kind),
             log_quote(user, sizeof(user), s->user[0] ? s->user : "-"),
             log_quote(db, sizeof(db), s->database[0] ? s->database : "-"),
             log_quote(app, sizeof(app), s->app[0] ? s->app : "-"), ts, connect_ms,
             (double)(now - s->t_accept_ns) / 1e6, (unsigned long long)s->bytes[C2S],
             (unsigned long long)s->bytes[S2C], s->tx_status ? s->tx_status : '-',
             s->krelay ? "kernel" : "user", s->end_reason, s->detail[0] ? " error=" : "",
             s->detail[0] ? log_quote(detail, sizeof(detail), s->detail) : "",
             !l->cfg.reuse_max_idle ? ""
             : s->reused ? (s->parked_out ? " server=reused parked=1" : " server=reused parked=0")
                         : (s->parked_out ? " server=new parked=1" : " server=new parked=0"));
}

static void krelay_account(struct session *s);

static void session_end(struct session *s, const char *reason)
{
    struct lbd *l = s->lbd;
    if (s->state == SS_CLOSING)
        return;
    s->state = SS_CLOSING;
    if (reason)
        s->end_reason = reason;
    if (s->krelay) {
        krelay_account(s);
        krelay_forget(&l->krelay, s->kcookie);
    }
    for (int d = 0; d < 2; d++)
        bulk_end(s, d);
    log_session(s);
    keymap_remove(&l->keys, &s->key);
    node_unuse(s);
    if (s->prev)
        s->prev->next = s->next;
    else
        l->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    l->n_sessions--;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_closed);
    uv_close((uv_handle_t *)&s->client, on_closed);
    if (s->srv == SRV_OPEN) {
        s->srv = SRV_CLOSING;
        uv_close((uv_handle_t *)&s->server, on_closed);
    }
    if (l->draining && l->n_sessions == 0)
        lbd_session_gone(l);
}

void session_close_all(struct lbd *l, const char *reason)
{
    struct session *s = l->sessions;
    while (s) {
        struct session *next = s->next;
        session_end(s, reason);
        s = next;
    }
}

void session_cut_node(struct lbd *l, struct pool_node *n, const char *reason)
{
    struct session *s = l->sessions;
    while (s) {
        struct session *next = s->next;
        if (s->node == n && (s->state == SS_RELAY || s->state == SS_NEGOTIATE ||
                             s->state == SS_STARTUP_WAIT))
            session_end(s, reason);
        s = next;
    }
}

size_t session_close_on_addr(struct lbd *l, uint32_t ip4)
{
    size_t n = 0;
    struct session *s = l->sessions;
    while (s) {
        struct session *next = s->next;
        if (s->local_ip4 == ip4 && s->state != SS_CLOSING) {
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
    *node_key = s->own_key ? s->node_key : key;
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
    if (nread < 0 ||
        (s->refusal->discarded += (uint32_t)nread) > REFUSAL_DISCARD_MAX)
        session_end(s, NULL);
}

static void on_refusal_shutdown(uv_shutdown_t *req, int status)
{
    struct session *s = req->handle->data;
    if (s->state == SS_CLOSING)
        return; /* cancelled by the close */
    if (status < 0 ||
        uv_read_start((uv_stream_t *)&s->client, discard_alloc, discard_read) != 0)
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
    node_unuse(s);
}

/* Tell the client why in PostgreSQL's own words, then close. */
static void refuse(struct session *s, const char *sqlstate, const char *msg, const char *reason)
{
    if (s->state >= SS_REFUSING)
        return;
    s->end_reason = reason;
    snprintf(s->detail, sizeof(s->detail), "%s", msg);
    uv_read_stop((uv_stream_t *)&s->client);
    close_server(s);
    s->state = SS_REFUSING;
    s->refusal = calloc(1, sizeof(*s->refusal));
    size_t n = s->refusal ? pgwire_error_build(s->refusal->msg, REFUSAL_MSG_MAX, "FATAL",
                                               sqlstate, msg)
                          : 0;
    uv_buf_t b = uv_buf_init((char *)(s->refusal ? s->refusal->msg : NULL), (unsigned)n);
    if (n == 0 || uv_write(&s->wreq[S2C], (uv_stream_t *)&s->client, &b, 1, on_refusal_written))
        session_end(s, NULL);
    else
        uv_timer_start(&s->timer, on_timer, 1000, 0);
}

/* Refuse, but if the client's packet is an encryption request, first answer 'N' and
 * wait for its StartupMessage, so the reason reaches the user (PostgreSQL does the same
 * for "too many clients"). */
static void refuse_after_negotiation(struct session *s, const char *sqlstate, const char *msg,
                                     const char *reason)
{
    bool encrypting = s->kind == PGWIRE_FIRST_SSL || s->kind == PGWIRE_FIRST_GSSENC;
    if (!encrypting || s->srv != SRV_NONE) {
        refuse(s, sqlstate, msg, reason);
        return;
    }
    s->pending_sqlstate = sqlstate;
    s->pending_reason = reason;
    if (msg != s->pending_msg) /* a repeat passes our own buffer: never copy onto itself */
        snprintf(s->pending_msg, sizeof(s->pending_msg), "%s", msg);
    uv_buf_t no = uv_buf_init("N", 1);
    if (uv_try_write((uv_stream_t *)&s->client, &no, 1) != 1) {
        refuse(s, sqlstate, msg, reason);
        return;
    }
    s->first_len = 0;
    s->state = SS_FIRST;
    uv_timer_start(&s->timer, on_timer, s->lbd->cfg.startup_ms, 0);
    read_client(s);
}

/* ---- timers ---- */


static void arm_idle(struct session *s)
{
    const struct lbd_config *c = &s->lbd->cfg;
    uint64_t now = uv_now(s->lbd->loop), wait = UINT64_MAX;
    if (c->client_idle_ms) {
        uint64_t due = s->last_active_ms[C2S] + c->client_idle_ms;
        wait = due > now ? due - now : 0;
    }
    if (c->server_idle_ms) {
        uint64_t due = s->last_active_ms[S2C] + c->server_idle_ms;
        uint64_t w = due > now ? due - now : 0;
        wait = w < wait ? w : wait;
    }
    if (wait == UINT64_MAX)
        uv_timer_stop(&s->timer);
    else
        uv_timer_start(&s->timer, on_timer, wait, 0);
}

static void connect_failed(struct session *s, int status);
static void krelay_flush_check(struct session *s);
static bool krelay_demote_check(struct session *s);
static void krelay_refresh_idle(struct session *s, uint64_t now);
static void krelay_handoff(struct session *s);
static void krelay_try_return(struct session *s, int d);
static void krelay_closed(struct session *s, int dir, bool hangup);

static void on_timer(uv_timer_t *t)
{
    struct session *s = t->data;
    struct lbd *l = s->lbd;
    uint64_t now = uv_now(l->loop);
    switch (s->state) {
    case SS_FIRST:
        l->stats.startup_timeouts++;
        refuse(s, "08P01", "timeout waiting for the startup packet", "startup_timeout");
        break;
    case SS_CONNECTING:
        connect_failed(s, UV_ETIMEDOUT);
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
        if (s->kflush) {
            krelay_flush_check(s);
            break;
        }
        if ((s->kdemote[C2S] == 1 || s->kdemote[S2C] == 1) && krelay_demote_check(s))
            break;
        if (s->krelay)
            krelay_refresh_idle(s, now);
        if (l->cfg.client_idle_ms && now - s->last_active_ms[C2S] >= l->cfg.client_idle_ms) {
            l->stats.idle_timeouts++;
            session_end(s, "client_idle_timeout");
        } else if (l->cfg.server_idle_ms &&
                   now - s->last_active_ms[S2C] >= l->cfg.server_idle_ms) {
            l->stats.idle_timeouts++;
            session_end(s, "server_idle_timeout");
        } else {
            arm_idle(s);
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

static void session_begin(struct session *s, bool from_peer,
                          const struct sockaddr_storage *listen);

/* A new session with its client handle initialised (nothing connected yet). */
static struct session *session_alloc(struct lbd *l)
{
    struct session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->lbd = l;
    s->client.data = s;
    s->timer.data = s;
    s->server.data = s;
    uv_tcp_init(l->loop, &s->client);
    s->handles_open = 1;
    return s;
}

void session_accept(struct lbd_listener *ls)
{
    struct session *s = session_alloc(ls->lbd);
    if (s == NULL)
        return; /* libuv calls again while the connection waits */
    if (uv_accept((uv_stream_t *)&ls->tcp, (uv_stream_t *)&s->client) != 0) {
        uv_close((uv_handle_t *)&s->client, on_closed);
        return;
    }
    session_begin(s, ls->peer, &ls->addr);
}

void session_adopt(struct lbd *l, int fd)
{
    struct session *s = session_alloc(l);
    if (s == NULL) {
        close(fd);
        return;
    }
    if (uv_tcp_open(&s->client, fd) != 0) {
        close(fd);
        uv_close((uv_handle_t *)&s->client, on_closed);
        return;
    }
    session_begin(s, false, NULL);
}

/* listen: the listener's own address, or NULL; when it names one IPv4 address (a VIP),
 * that is where the client connected, with no getsockname() per session. */
static void session_begin(struct session *s, bool from_peer,
                          const struct sockaddr_storage *listen)
{
    struct lbd *l = s->lbd;
    uv_timer_init(l->loop, &s->timer);
    s->handles_open++;
    s->from_peer = from_peer;
    s->t_accept_ns = uv_hrtime();
    s->start_wall_ms = lbd_wall_ms();
    s->end_reason = "client_closed";
    s->kind = PGWIRE_FIRST_INCOMPLETE;
    struct sockaddr_storage peer;
    int plen = sizeof(peer);
    if (uv_tcp_getpeername(&s->client, (struct sockaddr *)&peer, &plen) == 0)
        format_sockaddr((struct sockaddr *)&peer, s->client_addr, sizeof(s->client_addr));
    else
        snprintf(s->client_addr, sizeof(s->client_addr), "-");
    const struct sockaddr_in *l4 = (const struct sockaddr_in *)listen;
    if (listen && listen->ss_family == AF_INET && l4->sin_addr.s_addr != htonl(INADDR_ANY)) {
        s->local_ip4 = l4->sin_addr.s_addr;
    } else {
        struct sockaddr_storage local;
        plen = sizeof(local);
        if (uv_tcp_getsockname(&s->client, (struct sockaddr *)&local, &plen) == 0 &&
            local.ss_family == AF_INET)
            s->local_ip4 = ((struct sockaddr_in *)&local)->sin_addr.s_addr;
    }
    s->next = l->sessions;
    if (l->sessions)
        l->sessions->prev = s;
    l->sessions = s;
    l->n_sessions++;
    l->stats.sessions_total++;
    /* The client socket came from a listener and has its options (lbd.c tune_listener). */
    if (l->n_sessions > l->cfg.maxconn) {
        /* Refused after its first packet: the reason survives SSL negotiation, and a
         * CancelRequest is still routed. */
        l->stats.refused_maxconn++;
        s->pending_sqlstate = "53300";
        s->pending_reason = "maxconn";
        snprintf(s->pending_msg, sizeof(s->pending_msg),
                 "sorry, too many clients already (lbd maxconn)");
    }
    uv_timer_start(&s->timer, on_timer, l->cfg.startup_ms, 0);
    read_client(s);
}

/* ---- reading: one callback per socket, whatever the session's state ----
 *
 * A socket stays in libuv's read mode from its first read to the session's end (the
 * relay's back-pressure and the kernel relay aside): a read stopped and started again
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
        release(s, buf);
        return;
    }
    uv_read_stop(stream);
    s->parked[side] = nread > 0 ? buf->base : NULL;
    s->parked_n[side] = nread;
    if (nread < 0)
        release(s, buf);
}

static void client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    if (s->state == SS_FIRST)
        first_read(stream, nread, buf);
    else if (s->state == SS_RELAY)
        relay_read(stream, nread, buf);
    else
        park(s, 0, stream, nread, buf);
}

static void server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    if (s->state == SS_NEGOTIATE)
        negotiate_read(stream, nread, buf);
    else if (s->state == SS_STARTUP_WAIT)
        startup_reply_read(stream, nread, buf);
    else if (s->state == SS_RELAY)
        relay_read(stream, nread, buf);
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
            (s->state == SS_RELAY && s->inflight[side]))
            return;
    }
    uv_read_start(stream, on_alloc, cb);
}

static void read_client(struct session *s)
{
    read_side(s, 0);
}

static void read_server(struct session *s)
{
    read_side(s, 1);
}

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
    s->state = SS_RELAY;
    arm_idle(s);
    read_client(s);
    if (s->state == SS_RELAY) /* (what was parked may have ended it) */
        read_server(s);
    if (s->state == SS_RELAY)
        krelay_handoff(s);
}

/* Forward the buffered first bytes to the connected node and move on. A
 * StartupMessage stays buffered until the node's first answer is judged, so a node
 * that refuses it (shutting down, starting up, full) can be replaced by another. */
static void forward_first(struct session *s)
{
    struct lbd *l = s->lbd;
    if (send_now(s, (uv_stream_t *)&s->server, s->first, s->first_len, &s->first_sending,
                 &s->first_wreq) != 0) {
        session_end(s, "node_error");
        return;
    }
    uint64_t now = uv_now(l->loop);
    s->last_active_ms[C2S] = s->last_active_ms[S2C] = now;
    if (s->kind == PGWIRE_FIRST_SSL || s->kind == PGWIRE_FIRST_GSSENC) {
        /* The request stays buffered until the node answers: another node can take it
         * if this one closes first. */
        s->state = SS_NEGOTIATE;
        uv_timer_start(&s->timer, on_timer, l->cfg.connect_ms + l->cfg.startup_ms, 0);
        read_server(s);
        return;
    }
    s->state = SS_STARTUP_WAIT;
    s->reply_len = 0;
    uv_timer_start(&s->timer, on_timer, l->cfg.startup_ms, 0);
    read_server(s);
}

/* Refusals a node gives before a session exists, after which another node may do. */
static bool startup_refusal_retryable(const char *sqlstate)
{
    return strcmp(sqlstate, "57P03") == 0    /* cannot_connect_now: starting/stopping */
           || strcmp(sqlstate, "53300") == 0 /* too_many_connections */
           || strcmp(sqlstate, "57P01") == 0; /* admin_shutdown */
}

/* The node's first answer is judged: pass it to the client and relay from here. */
static void pass_reply(struct session *s)
{
    struct lbd *l = s->lbd;
    if (pgwire_stream_feed(&s->sstream, s->reply, s->reply_len, on_backend_event, s) != 0)
        s->opaque = true;
    s->bytes[C2S] += s->first_len;
    s->node->bytes_in += s->first_len;
    l->stats.bytes_in += s->first_len;
    s->bytes[S2C] += s->reply_len;
    s->node->bytes_out += s->reply_len;
    l->stats.bytes_out += s->reply_len;
    if (s->reusable) { /* the key a parked connection is found by */
        s->startup = s->first;
        s->startup_len = s->first_len;
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

static void on_server_closed_retry(uv_handle_t *h);

/* Nothing of this node's has reached the client yet (it refused or vanished before
 * answering the startup or the encryption request): try the next node. health_reason,
 * when set, counts as a failed check for the node. */
static void retry_elsewhere(struct session *s, const char *health_reason)
{
    if (health_reason)
        lbd_node_result(s->lbd, s->node, false, false, health_reason);
    free(s->reply);
    s->reply = NULL;
    s->reply_len = 0;
    uv_read_stop((uv_stream_t *)&s->server);
    node_unuse(s);
    uv_timer_stop(&s->timer);
    s->state = SS_CONNECTING;
    s->srv = SRV_CLOSING;
    uv_close((uv_handle_t *)&s->server, on_server_closed_retry);
}

/* The node closed (or failed) before its first answer: retry while attempts remain. */
static void lost_before_answer(struct session *s, ssize_t nread)
{
    const char *what = s->state == SS_NEGOTIATE ? "the encryption request" : "the startup";
    if (s->attempts > s->lbd->cfg.retries) {
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
    s->params = params;
    s->params_len = (uint32_t)plen;
    s->own_key = s->reusable = true;
    s->node_key = r->key;
    pgwire_reply_set_key(s->reply, r, (uint32_t)lbd_random(s->lbd));
    return 0;
}

static void startup_reply_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    struct lbd *l = s->lbd;
    if (nread <= 0) {
        release(s, buf);
        if (nread < 0)
            lost_before_answer(s, nread);
        return;
    }
    uint8_t *p = realloc(s->reply, s->reply_len + (size_t)nread);
    if (p == NULL) {
        release(s, buf);
        session_end(s, "node_error");
        return;
    }
    s->reply = p;
    memcpy(s->reply + s->reply_len, buf->base, (size_t)nread);
    s->reply_len += (uint32_t)nread;
    release(s, buf);
    if (s->reuse_ok) {
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
    if (s->reply_len < 5)
        return;
    uint32_t mlen = (uint32_t)s->reply[1] << 24 | (uint32_t)s->reply[2] << 16 |
                    (uint32_t)s->reply[3] << 8 | s->reply[4];
    if (s->reply[0] != 'E' || mlen > 8192 || mlen < 4) {
        pass_reply(s);
        return;
    }
    if (s->reply_len < 1 + mlen)
        return; /* wait for the whole ErrorResponse */
    struct pgwire_check c;
    pgwire_check_parse(s->reply, 1 + mlen, &c);
    if (!startup_refusal_retryable(c.sqlstate) || s->attempts > l->cfg.retries) {
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
static bool reuse_no_tls(struct lbd *l)
{
    uint64_t now = uv_now(l->loop);
    size_t eligible = 0;
    if (!l->cfg.reuse_max_idle)
        return false;
    for (size_t i = 0; i < l->pool.n; i++) {
        const struct pool_node *n = l->pool.nodes[i];
        if (!pool_node_eligible(n))
            continue;
        if (n->tls_no_ms == 0 || now - n->tls_no_ms > TLS_NO_FRESH_MS)
            return false;
        eligible++;
    }
    return eligible > 0;
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
    s->state = SS_FIRST;
    uv_timer_start(&s->timer, on_timer, s->lbd->cfg.startup_ms, 0);
    read_client(s);
}

static void classify(struct session *s)
{
    struct lbd *l = s->lbd;
    struct pgwire_first f;
    char msg[96];
    switch (pgwire_first_parse(s->first, s->first_len, &f)) {
    case PGWIRE_FIRST_INCOMPLETE:
        return;
    case PGWIRE_FIRST_BAD:
        l->stats.refused_bad_packet++;
        snprintf(msg, sizeof(msg), "invalid startup packet: %s", f.reason);
        refuse(s, "08P01", msg, "bad_packet");
        return;
    case PGWIRE_FIRST_CANCEL:
        s->kind = PGWIRE_FIRST_CANCEL;
        s->pending_sqlstate = NULL; /* a cancel is served even when sessions are not */
        if (s->srv != SRV_NONE) {
            l->stats.refused_bad_packet++;
            refuse(s, "08P01", "cancel request after encryption negotiation", "bad_packet");
            return;
        }
        uv_read_stop((uv_stream_t *)&s->client);
        cancel_route(l, f.cancel_pid, f.cancel_key, s->from_peer, s->client_addr);
        session_end(s, "cancel");
        return;
    case PGWIRE_FIRST_SSL:
    case PGWIRE_FIRST_GSSENC:
        if (s->first_len > f.len) {
            /* Plaintext after the request, before the handshake: an injection attempt
             * (CVE-2021-23214) or a broken client. Never relay it. */
            l->stats.refused_bad_packet++;
            refuse(s, "08P01", "unexpected data after an encryption request", "bad_packet");
            return;
        }
        break;
    case PGWIRE_FIRST_STARTUP:
        snprintf(s->user, sizeof(s->user), "%s", f.user);
        snprintf(s->database, sizeof(s->database), "%s", f.database);
        snprintf(s->app, sizeof(s->app), "%s", f.application_name);
        /* (After an encryption request the node connection exists: it is this one.) */
        s->reuse_ok = l->cfg.reuse_max_idle > 0 && f.proto == 3u << 16 && !f.replication &&
                      s->srv == SRV_NONE && s->first_len == f.len;
        break;
    }
    s->kind = (uint8_t)f.kind;
    if (s->pending_sqlstate) {
        uv_read_stop((uv_stream_t *)&s->client);
        if (f.kind == PGWIRE_FIRST_STARTUP)
            refuse(s, s->pending_sqlstate, s->pending_msg, s->pending_reason);
        else /* another encryption request: 'N' again */
            refuse_after_negotiation(s, s->pending_sqlstate, s->pending_msg, s->pending_reason);
        return;
    }
    if (s->from_peer) {
        l->stats.refused_bad_packet++;
        refuse(s, "08P01", "the peer listener takes only cancel requests", "bad_packet");
        return;
    }
    if (f.kind == PGWIRE_FIRST_SSL && s->srv == SRV_NONE && reuse_no_tls(l)) {
        answer_no_tls(s);
        return;
    }
    /* The client keeps being read: it has nothing to say until the node answers, and a
     * read stopped and started again costs libuv two epoll_ctl calls (see park). */
    if (s->srv == SRV_OPEN)
        forward_first(s);
    else
        connect_node(s);
}

static void first_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    if (nread < 0) {
        release(s, buf);
        session_end(s, nread == UV_EOF ? "client_closed" : "client_error");
        return;
    }
    if (nread == 0) {
        release(s, buf);
        return;
    }
    int rc = first_append(s, buf->base, (size_t)nread);
    release(s, buf);
    if (rc != 0) {
        s->lbd->stats.refused_bad_packet++;
        refuse(s, "08P01", "invalid startup packet: too long", "bad_packet");
        return;
    }
    classify(s);
}

/* The node's one-byte answer to SSLRequest/GSSENCRequest ('S'/'G' yes, 'N' no). */
static void negotiate_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    if (nread <= 0) {
        release(s, buf);
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
        s->node->tls_no_ms = answer == 'N' ? uv_now(s->lbd->loop) : 0;
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    s->bytes[S2C] += (uint64_t)nread;
    int rc = uv_try_write((uv_stream_t *)&s->client, &b, 1);
    release(s, buf);
    if (rc != nread) {
        session_end(s, "client_error");
        return;
    }
    if (answer == 'N' && nread == 1) {
        /* Plaintext follows: read the client's next packet (a StartupMessage). */
        s->state = SS_FIRST;
        uv_timer_start(&s->timer, on_timer, s->lbd->cfg.startup_ms, 0);
        read_client(s);
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
            free_session(s);
        return;
    }
    if (s->attempts > s->lbd->cfg.retries) {
        s->lbd->stats.refused_connect++;
        refuse(s, "08006", "could not connect to a database node", "connect_failed");
        return;
    }
    connect_node(s);
}

static void connect_failed(struct session *s, int status)
{
    struct lbd *l = s->lbd;
    struct pool_node *n = s->node;
    char reason[128];
    n->connect_failures++;
    snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(status));
    log_emit(LOG_WARN, "connect_failed", "client=%s node=%s attempt=%u error=\"%s\"",
             s->client_addr, n->name, s->attempts, uv_strerror(status));
    node_unuse(s);
    lbd_node_result(l, n, false, false, reason);
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
        connect_failed(s, status);
        return;
    }
    s->t_connect_ns = uv_hrtime();
    s->node->sessions_total++;
    s->lbd->stats.sessions_relayed++;
    forward_first(s);
}

/* Serve the client from a parked node connection: lbd answers its startup as the node
 * did (AuthenticationOk, the node's ParameterStatus, BackendKeyData with the node's pid
 * and a secret key of lbd's, ReadyForQuery 'I') and relays from there. */
static void adopt_parked(struct session *s, struct reuse_grant *g)
{
    struct lbd *l = s->lbd;
    uv_tcp_init(l->loop, &s->server);
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
    s->own_key = true;
    s->node_key = g->key;
    pgwire_trusted_build(r, n, g->params, g->params_len, g->pid, (uint32_t)lbd_random(l));
    s->params = g->params;
    s->params_len = g->params_len;
    s->reused = s->reusable = true;
    s->t_connect_ns = uv_hrtime();
    s->node->sessions_total++;
    l->stats.sessions_relayed++;
    s->reply = r;
    s->reply_len = (uint32_t)n;
    uv_timer_stop(&s->timer);
    /* pass_reply counts it as the node's and the StartupMessage as sent: what the client
     * saw and sent. */
    pass_reply(s);
}

static void connect_node(struct session *s)
{
    struct lbd *l = s->lbd;
    int idx = pool_pick(&l->pool, s->tried, lbd_random(l));
    if (idx < 0) {
        if (s->attempts == 0) {
            l->stats.refused_no_node++;
            refuse_after_negotiation(s, "57P03", "no database node is available (lbd)",
                                     "no_node");
        } else {
            l->stats.refused_connect++;
            refuse_after_negotiation(s, "08006", "could not connect to a database node",
                                     "connect_failed");
        }
        return;
    }
    struct pool_node *n = l->pool.nodes[idx];
    s->tried |= 1ULL << idx;
    s->attempts++;
    if (s->node) {
        s->node->refs--;
        lbd_node_release(l, s->node);
    }
    s->node = n;
    n->refs++;
    n->active++;
    s->node_active = true;
    s->state = SS_CONNECTING;
    struct reuse_grant g;
    if (s->reuse_ok && reuse_take(l, n, s->first, s->first_len, &g) == 0) {
        adopt_parked(s, &g);
        return;
    }
    /* The socket now, so its options are set before the SYN; if that fails (EMFILE),
     * the connect below reports it. */
    if (uv_tcp_init_ex(l->loop, &s->server, n->addr.ss_family) != 0)
        uv_tcp_init(l->loop, &s->server);
    s->handles_open++;
    s->srv = SRV_OPEN;
    lbd_tune_socket(l, &s->server);
    s->connect_req.data = s;
    uv_timer_start(&s->timer, on_timer, l->cfg.connect_ms, 0);
    int rc = uv_tcp_connect(&s->connect_req, &s->server, (const struct sockaddr *)&n->addr,
                            on_connect);
    if (rc != 0)
        connect_failed(s, rc);
}

/* ---- the relay ---- */

static void on_backend_event(void *ctx, const struct pgwire_event *ev)
{
    struct session *s = ctx;
    if (ev->kind == PGWIRE_EV_BACKEND_KEY) {
        keymap_add(&s->lbd->keys, &s->key, ev->pid, ev->key);
    } else if (ev->kind == PGWIRE_EV_READY) {
        s->tx_status = ev->tx_status;
        if (s->ready_seen)
            s->readies++;
        s->ready_seen = true;
    } else if (ev->kind == PGWIRE_EV_PARAM && s->ready_seen) {
        s->reusable = false; /* a setting reported since the startup: replay would lie */
    }
}

/* n bytes of direction d went through lbd (copied or spliced): the session's, the
 * node's and lbd's byte counts, and both sides are active. */
static void count_relayed(struct session *s, int d, uint64_t n)
{
    struct lbd *l = s->lbd;
    s->bytes[d] += n;
    if (d == C2S) {
        s->node->bytes_in += n;
        l->stats.bytes_in += n;
    } else {
        s->node->bytes_out += n;
        l->stats.bytes_out += n;
    }
    s->last_active_ms[C2S] = s->last_active_ms[S2C] = uv_now(l->loop);
}

static void on_relay_written(uv_write_t *req, int status)
{
    struct session *s = req->handle->data;
    int dir = req == &s->wreq[C2S] ? C2S : S2C;
    lbd_buf_put(s->lbd, s->inflight[dir]);
    s->inflight[dir] = NULL;
    if (s->state != SS_RELAY)
        return;
    if (status < 0) {
        session_end(s, dir == C2S ? "node_error" : "client_error");
        return;
    }
    uv_stream_t *from = (uv_stream_t *)(dir == C2S ? &s->client : &s->server);
    if (s->run[dir] >= BULK_AFTER && bulk_begin(s, dir))
        return;
    uv_read_start(from, on_alloc, relay_read);
    krelay_handoff(s);
    krelay_try_return(s, dir);
}

/* This read is the client's Terminate, alone, at a clean point: every Query and Sync
 * answered by its ReadyForQuery, no extended-protocol batch open, no transaction, the
 * node's stream at a message boundary and nothing in flight either way. Anything else
 * (and a bad frame) makes the session not reusable. */
static bool client_left_cleanly(struct session *s, const uv_buf_t *buf, ssize_t nread)
{
    static const uint8_t terminate[5] = {'X', 0, 0, 0, 4};
    if (pgwire_front_feed(&s->cstream, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        s->reusable = false;
        return false;
    }
    return nread == 5 && memcmp(buf->base, terminate, 5) == 0 && s->cstream.terminated &&
           !s->cstream.open_batch && s->cstream.syncs == s->readies && s->tx_status == 'I' &&
           s->sstream.hdr_len == 0 && !s->inflight[C2S] && !s->inflight[S2C] &&
           !s->server.write_queue_size && !s->krelay && !s->bulk[C2S] && !s->bulk[S2C] &&
           reuse_can_park(s->lbd, s->node);
}

/* The client left cleanly: its node connection goes to reuse.c (a descriptor of its own:
 * the session closes its handle as usual) instead of being closed. */
static void park_node_connection(struct session *s)
{
    int fd = handle_fd(&s->server);
    int own = fd >= 0 ? dup(fd) : -1;
    if (own < 0)
        return;
    uint8_t *startup = s->startup, *params = s->params;
    s->startup = s->params = NULL;
    if (reuse_park(s->lbd, s->node, own, startup, s->startup_len, params, s->params_len,
                   s->key.pid, s->node_key) == 0)
        s->parked_out = true;
}

static void relay_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    int dir = stream == (uv_stream_t *)&s->client ? C2S : S2C;
    if (nread <= 0) {
        release(s, buf);
        if (nread == UV_EOF && s->krelay && s->state == SS_RELAY) {
            /* A direction lbd took back from the kernel: the other one may still have
             * bytes on their way through the kernel (or this one, just returned to it). */
            uv_read_stop(stream);
            krelay_closed(s, dir, true);
            return;
        }
        if (nread < 0) {
            if (dir == C2S)
                session_end(s, nread == UV_EOF ? "client_closed" : "client_error");
            else
                session_end(s, nread == UV_EOF ? "node_closed" : "node_error");
        }
        return;
    }
    if (s->state != SS_RELAY) {
        release(s, buf);
        return;
    }
    if (dir == C2S && s->reusable && client_left_cleanly(s, buf, nread)) {
        count_relayed(s, C2S, (uint64_t)nread);
        release(s, buf);
        park_node_connection(s);
        session_end(s, "client_closed");
        return;
    }
    if (dir == S2C && !s->opaque &&
        pgwire_stream_feed(&s->sstream, (uint8_t *)buf->base, (size_t)nread, on_backend_event,
                           s) != 0) {
        s->opaque = true;
        log_emit(LOG_WARN, "protocol_error",
                 "client=%s node=%s detail=\"node sent a bad message length; relaying as is\"",
                 s->client_addr, s->node->name);
    }
    count_relayed(s, dir, (uint64_t)nread);
    if (s->krelay) {
        s->kread[dir] += (uint64_t)nread;
    }
    if (dir == C2S && s->relay_reads < KRELAY_AFTER)
        s->relay_reads++;
    if (s->run[dir] < BULK_AFTER)
        s->run[dir] += (uint32_t)nread;
    s->run[!dir] = 0;
    uv_stream_t *to = (uv_stream_t *)(dir == C2S ? &s->server : &s->client);
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    int w = uv_try_write(to, &b, 1);
    if (w == nread) {
        release(s, buf);
        if (s->run[dir] >= BULK_AFTER && bulk_begin(s, dir))
            return;
        /* A full buffer means more is waiting (a bulk transfer): no handoff attempt,
         * which would only find the receive queue non-empty, two ioctls later. */
        if ((size_t)nread < LBD_BUF_SIZE) {
            krelay_handoff(s);
            krelay_try_return(s, dir);
        }
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        release(s, buf);
        session_end(s, dir == C2S ? "node_error" : "client_error");
        return;
    }
    if (w > 0) {
        b.base += w;
        b.len -= (size_t)w;
    }
    /* The receiver is slower than the sender: hold this one buffer and stop reading
     * the sender until it is written. Memory per direction stays at one buffer. */
    s->inflight[dir] = buf->base;
    uv_read_stop(stream);
    if (uv_write(&s->wreq[dir], to, &b, 1, on_relay_written) != 0)
        session_end(s, dir == C2S ? "node_error" : "client_error");
}

/* ---- the kernel relay (krelay.h) ---- */

static int handle_fd(uv_tcp_t *t)
{
    uv_os_fd_t fd;
    return uv_fileno((uv_handle_t *)t, &fd) == 0 ? fd : -1;
}

static bool totals(struct session *s, int dir, struct krelay_totals *t);

/* The socket direction d's data arrives on: the client for C2S, the node for S2C. */
static uv_tcp_t *sender(struct session *s, int d)
{
    return d == C2S ? &s->client : &s->server;
}

/* The socket that receives direction d is the one d's data is read from for the other
 * direction: the server for C2S, the client for S2C. */
static bool receiver_totals(struct session *s, int d, struct krelay_totals *t)
{
    return totals(s, d == C2S ? S2C : C2S, t);
}

static void relay_resume(struct session *s)
{
    uv_read_start((uv_stream_t *)&s->client, on_alloc, relay_read);
    uv_read_start((uv_stream_t *)&s->server, on_alloc, relay_read);
}

/* Take a socket lbd no longer reads out of libuv's epoll set. uv_read_stop leaves it
 * there until an event for it comes back, and with the kernel relay none ever does: the
 * relay's data_ready still wakes the waiters of each socket a segment arrives on, and
 * epoll, finding nothing readable, sleeps again. lbd woke 0.3-0.8 times per transaction
 * for nothing that way. libuv counts the socket as unwatched already (the caller makes
 * sure: no read, no write waiting on it) and adds it again when lbd reads or writes it. */
static void libuv_unwatch(struct session *s, uv_tcp_t *t)
{
    int fd = handle_fd(t);
    struct epoll_event ev = {0};
    if (fd >= 0)
        (void)epoll_ctl(uv_backend_fd(s->lbd->loop), EPOLL_CTL_DEL, fd, &ev);
}

static uint64_t session_tag(struct session *s, int dir)
{
    return (uint64_t)(uintptr_t)s | (uint64_t)dir;
}

static struct session *tag_session(uint64_t tag, int *dir)
{
    *dir = (int)(tag & 1);
    return (struct session *)(uintptr_t)(tag & ~(uint64_t)1);
}

/* ---- bulk transfers (bulk.h) ---- */

static void on_bulk(void *ctx, enum bulk_event ev, size_t n)
{
    int d;
    struct session *s = tag_session((uint64_t)(uintptr_t)ctx, &d);
    struct lbd *l = s->lbd;
    switch (ev) {
    case BULK_MOVED:
        count_relayed(s, d, n);
        l->stats.bulk_bytes += n;
        break;
    case BULK_QUIET: /* lbd reads d itself again (and may hand the session to the kernel) */
        bulk_end(s, d);
        s->run[d] = 0;
        uv_read_start((uv_stream_t *)sender(s, d), on_alloc, relay_read);
        break;
    case BULK_EOF:
        session_end(s, d == C2S ? "client_closed" : "node_closed");
        break;
    case BULK_IN_ERROR:
        session_end(s, d == C2S ? "client_error" : "node_error");
        break;
    case BULK_OUT_ERROR:
        session_end(s, d == C2S ? "node_error" : "client_error");
        break;
    }
}

/* Direction d read BULK_AFTER bytes with the other direction silent, all written:
 * splice it from here on, until it is quiet (true). Only the copying relay does this (the
 * kernel relay needs neither), and only once the startup is over: a spliced node
 * stream is not parsed, so the session's transaction state is unknown from then on. */
static bool bulk_begin(struct session *s, int d)
{
    struct lbd *l = s->lbd;
    uv_tcp_t *to = sender(s, !d); /* (d's receiver) */
    if (s->bulk[d] || s->krelay || s->state != SS_RELAY || !(s->ready_seen || s->opaque) ||
        s->inflight[d] || to->write_queue_size)
        return false;
    int in = handle_fd(sender(s, d)), out = handle_fd(to);
    if (in < 0 || out < 0)
        return false;
    s->bulk[d] = bulk_start(l->loop, in, out, on_bulk, (void *)(uintptr_t)session_tag(s, d));
    if (s->bulk[d] == NULL) {
        s->run[d] = 0; /* (EMFILE: try again after another BULK_AFTER bytes) */
        if (l->stats.bulk_failed++ == 0)
            log_emit(LOG_WARN, "splice_refused",
                     "client=%s detail=\"%s; relayed by copying (counted in "
                     "lbd_splice_refused_total)\"",
                     s->client_addr, strerror(errno));
        return false;
    }
    s->handles_open++;
    s->reusable = false; /* a spliced stream is not framed */
    uv_read_stop((uv_stream_t *)sender(s, d));
    if (!s->inflight[!d] && !sender(s, d)->write_queue_size)
        libuv_unwatch(s, sender(s, d));
    if (d == S2C) {
        s->opaque = true;
        s->tx_status = 0;
    }
    l->stats.bulk_started++;
    return true;
}

static void on_bulk_closed(void *ctx)
{
    int d;
    struct session *s = tag_session((uint64_t)(uintptr_t)ctx, &d);
    if (--s->handles_open == 0)
        free_session(s);
}

static void bulk_end(struct session *s, int d)
{
    if (s->bulk[d] == NULL)
        return;
    bulk_stop(s->bulk[d], on_bulk_closed);
    s->bulk[d] = NULL;
}

/* Hand the session to the kernel once its startup is over (the node's first
 * ReadyForQuery went by, so its BackendKeyData is recorded; or the bytes are TLS), the
 * client has sent KRELAY_AFTER reads' worth, and nothing lbd read is still waiting to
 * be written. Otherwise, or when the kernel refuses, lbd keeps relaying. */
static void krelay_handoff(struct session *s)
{
    struct lbd *l = s->lbd;
    if (s->krelay || s->krelay_tried || s->state != SS_RELAY || !krelay_is_open(&l->krelay) ||
        s->bulk[C2S] || s->bulk[S2C] ||
        !(s->ready_seen || s->opaque) || s->relay_reads < KRELAY_AFTER ||
        s->inflight[C2S] || s->inflight[S2C] ||
        s->client.write_queue_size || s->server.write_queue_size)
        return;
    int cfd = handle_fd(&s->client), sfd = handle_fd(&s->server);
    if (cfd < 0 || sfd < 0)
        return;
    /* Nothing unread on either socket. The kernel's relay takes whole segments from the
     * receive queue (tcp_read_skb), so a segment lbd has read only part of (a 64 KiB
     * segment, 32 KiB buffers) would go out again from its start. lbd tries again after
     * its next read; a bulk transfer may never get here, and is better off with lbd. */
    int unread_c = 0, unread_s = 0;
    if (ioctl(cfd, FIONREAD, &unread_c) != 0 || ioctl(sfd, FIONREAD, &unread_s) != 0 ||
        unread_c > 0 || unread_s > 0)
        return;
    s->krelay_tried = true;
    uv_read_stop((uv_stream_t *)&s->client);
    uv_read_stop((uv_stream_t *)&s->server);
    /* What each receiving socket has acked and been given so far: the program's
     * counters start from here. */
    struct krelay_totals t[2];
    if (!totals(s, C2S, &t[C2S]) || !totals(s, S2C, &t[S2C])) {
        s->krelay_tried = false;
        relay_resume(s);
        return;
    }
    int rc = krelay_join(&l->krelay, cfd, sfd, session_tag(s, C2S), session_tag(s, S2C),
                         s->kcookie);
    if (rc != 0) {
        if (l->stats.krelay_join_failed++ == 0)
            log_emit(LOG_WARN, "kernel_relay_refused",
                     "client=%s detail=\"%s; this and later refused sessions are relayed by "
                     "lbd (counted in lbd_kernel_relay_refused_total)\"",
                     s->client_addr, strerror(-rc));
        relay_resume(s);
        return;
    }
    /* C2S is received by the server socket, S2C by the client socket. */
    s->kacked0[C2S] = t[S2C].acked;
    s->kwritten0[C2S] = t[S2C].written;
    s->kacked0[S2C] = t[C2S].acked;
    s->kwritten0[S2C] = t[C2S].written;
    libuv_unwatch(s, &s->client);
    libuv_unwatch(s, &s->server);
    s->krelay = true;
    s->reusable = false;
    s->opaque = true; /* lbd no longer sees the whole stream */
    s->tx_status = 0;
    l->n_krelay++;
    l->stats.krelay_handoffs++;
}

static bool totals(struct session *s, int dir, struct krelay_totals *t)
{
    int fd = handle_fd(sender(s, dir));
    return fd >= 0 && krelay_socket_totals(fd, dir == S2C, t) == 0;
}

/* The byte counts the kernel kept: what each socket received is what was relayed
 * (lbd's own share before the handoff included). */
static void krelay_account(struct session *s)
{
    struct lbd *l = s->lbd;
    for (int dir = 0; dir < 2; dir++) {
        struct krelay_totals t;
        if (!totals(s, dir, &t) || t.received <= s->bytes[dir])
            continue;
        uint64_t more = t.received - s->bytes[dir];
        s->bytes[dir] = t.received;
        if (dir == C2S) {
            s->node->bytes_in += more;
            l->stats.bytes_in += more;
        } else {
            s->node->bytes_out += more;
            l->stats.bytes_out += more;
        }
    }
    l->n_krelay--;
}

static void krelay_refresh_idle(struct session *s, uint64_t now)
{
    for (int dir = 0; dir < 2; dir++) {
        struct krelay_totals t;
        if (totals(s, dir, &t))
            s->last_active_ms[dir] = now > t.idle_ms ? now - t.idle_ms : 0;
    }
}

/* How long a sender's rest may take to leave when the receiver reads nothing. */
#define KFLUSH_STALL_MS 10000

/* One side closed: end the session once the kernel has sent on everything that side
 * sent before its FIN (the relay queues segments for the other socket's send side and
 * a worker sends them a moment later; closing first would drop them, like a last
 * ErrorResponse before the node closes). lbd relaying itself gets the same order for
 * free: it reads the FIN only after writing what came before. */
static void krelay_flush_check(struct session *s)
{
    int from = s->kflush - 1;
    struct krelay_totals in, out;
    uint64_t now = uv_now(s->lbd->loop);
    const char *reason = from == C2S ? "client_closed" : "node_closed";
    if (!totals(s, from, &in) || !receiver_totals(s, from, &out) ||
        out.written + (in.reset ? 1 : 0) >= in.received) {
        session_end(s, reason);
        return;
    }
    if (out.written != s->kflush_written) {
        s->kflush_written = out.written;
        s->kflush_progress_ms = now;
    } else if (now - s->kflush_progress_ms >= KFLUSH_STALL_MS) {
        snprintf(s->detail, sizeof(s->detail), "%llu bytes not taken by the %s in %d s",
                 (unsigned long long)(in.received - out.written),
                 from == C2S ? "node" : "client", KFLUSH_STALL_MS / 1000);
        session_end(s, reason);
        return;
    }
    uv_timer_start(&s->timer, on_timer, now - s->kflush_progress_ms < 10 ? 1 : 20, 0);
}

/* One side closed (FIN) or was reset. Reported as closed either way: with the kernel
 * relaying, lbd looks after the fact, when a reset may already follow a FIN (a TLS
 * client closes, the node's close_notify reaches it late, its kernel answers with a
 * reset), so "reset" is not evidence of an error here. */
static void krelay_closed(struct session *s, int dir, bool hangup)
{
    struct krelay_totals t;
    if (s->state != SS_RELAY || !s->krelay)
        return;
    if (s->kflush == 1 + dir) /* the same close, seen by libuv and by the watch */
        return;
    if (s->kflush) { /* the receiver of the rest went away too */
        session_end(s, s->kflush - 1 == C2S ? "client_closed" : "node_closed");
        return;
    }
    if (!hangup || !totals(s, dir, &t)) {
        session_end(s, dir == C2S ? "client_error" : "node_error");
        return;
    }
    s->kflush = (uint8_t)(1 + dir);
    s->kflush_written = UINT64_MAX;
    s->kflush_progress_ms = uv_now(s->lbd->loop);
    struct krelay_totals out;
    if (receiver_totals(s, dir, &out) && out.written + (t.reset ? 1 : 0) < t.received)
        s->lbd->stats.krelay_flush_waits++;
    krelay_flush_check(s);
}

/* The receiver of direction d fell a window behind (its allowance ran out and the
 * program now keeps d's data on the sending socket): once the kernel has sent on
 * everything it redirected, lbd relays d itself, with its usual back-pressure.
 * Returns true while a direction still waits (the timer is re-armed). */
static bool krelay_demote_check(struct session *s)
{
    struct lbd *l = s->lbd;
    bool waiting = false;
    for (int d = 0; d < 2; d++) {
        if (s->kdemote[d] != 1)
            continue;
        struct krelay_state st;
        struct krelay_totals out;
        if (krelay_state_get(&l->krelay, s->kcookie[d], &st) != 0 ||
            !receiver_totals(s, d, &out)) {
            session_end(s, d == C2S ? "node_error" : "client_error");
            return true;
        }
        if (out.written < s->kwritten0[d] + st.redirected) {
            waiting = true;
            continue;
        }
        s->kdemote[d] = 2;
        s->kdemote_ms[d] = uv_now(l->loop);
        uv_read_start((uv_stream_t *)sender(s, d), on_alloc, relay_read);
    }
    if (waiting) {
        /* 2 ms, doubling to 128: a receiver that reads again is caught quickly, one that
         * stays away costs a few looks a second. */
        s->kdemote_wait = !s->kdemote_wait         ? 2
                          : s->kdemote_wait < 128 ? (uint8_t)(s->kdemote_wait * 2)
                                                  : 128;
        uv_timer_start(&s->timer, on_timer, s->kdemote_wait, 0);
    } else {
        s->kdemote_wait = 0;
        arm_idle(s);
    }
    return waiting;
}

/* lbd stops reading d's sender, and takes it out of libuv's epoll set unless lbd is
 * writing to it (the other direction is lbd's and blocked). */
static void krelay_stop_reading(struct session *s, int d)
{
    uv_read_stop((uv_stream_t *)sender(s, d));
    if (!s->inflight[!d] && !sender(s, d)->write_queue_size)
        libuv_unwatch(s, sender(s, d));
}

/* How long a direction stays with lbd after it was taken back before lbd offers it to
 * the kernel again: a bulk transfer to a slow reader would otherwise go back and forth
 * every window. */
#define KRELAY_RETURN_MS 1000

/* Whether lbd offers a taken-back direction to the kernel again at all. Off: on Linux
 * 6.18 a socket whose verdict went from passing to redirecting and back to passing was
 * now and then given one segment (about 64 KiB) twice to read (lbd_kernel_relay's
 * rounds of fall back and return: the program's count of bytes passed grew by one
 * segment more than the node sent, and the client's stream broke at that point, in
 * about 1 round in 30). A session whose direction fell back keeps it with lbd from then
 * on. (A single fallback did the same once in 116 sessions: scripts/krelay-stress.sh,
 * and why relay: kernel is not the default.) */
#define KRELAY_RETURN 0

/* Direction d, taken back from the kernel a while ago, is quiet: lbd has written all it
 * read and nothing is waiting on d's sender. Offer it to the kernel again (a pooled
 * connection that once ran a big query would otherwise keep that direction in user
 * space for good). The program takes it only if nothing was passed to lbd in between;
 * otherwise (a MISSED note) lbd reads on and offers again at its next quiet moment. */
static void krelay_try_return(struct session *s, int d)
{
    struct lbd *l = s->lbd;
    if (!KRELAY_RETURN || !s->krelay || s->kdemote[d] != 2 || s->kflush || s->inflight[d] ||
        uv_now(l->loop) - s->kdemote_ms[d] < KRELAY_RETURN_MS)
        return;
    int unread = 0, fd = handle_fd(sender(s, d));
    struct krelay_state st;
    struct krelay_totals out;
    if (sender(s, !d)->write_queue_size || fd < 0 || ioctl(fd, FIONREAD, &unread) != 0 || unread > 0 ||
        krelay_state_get(&l->krelay, s->kcookie[d], &st) != 0 || st.passed != s->kread[d] ||
        !receiver_totals(s, d, &out) || out.written < st.redirected)
        return;
    /* The receiver's counters as if the kernel had relayed everything lbd wrote: the
     * flush, the demotion's wait and the allowance count from here. */
    s->kwritten0[d] = s->kacked0[d] = out.written - st.redirected;
    if (krelay_return(&l->krelay, s->kcookie[d], st.redirected + KRELAY_WINDOW, st.passed) != 0)
        return;
    /* lbd reads nothing more from d's sender until the program says which way the next
     * segment went (RETURNED or MISSED): a segment lbd read while the kernel took the
     * direction back could overtake what the kernel was sending, or be sent twice. */
    s->kdemote[d] = 3;
    krelay_stop_reading(s, d);
}

static void krelay_note(struct session *s, int d, enum krelay_note_kind kind)
{
    struct lbd *l = s->lbd;
    struct krelay_totals out;
    if (s->state != SS_RELAY || !s->krelay)
        return;
    if (kind == KRELAY_NOTE_RETURNED) {
        /* The kernel relays d again (lbd stopped reading its sender when it asked). */
        s->kdemote[d] = 0;
        l->stats.krelay_returned++;
        return;
    }
    if (kind == KRELAY_NOTE_MISSED) {
        /* A segment came between lbd's look and its request: d stays lbd's, and lbd
         * offers it again at its next quiet moment. */
        if (s->kdemote[d] == 3) {
            s->kdemote[d] = 2;
            l->stats.krelay_return_missed++;
            uv_read_start((uv_stream_t *)sender(s, d), on_alloc, relay_read);
        }
        return;
    }
    if (s->kdemote[d])
        return;
    if (kind == KRELAY_NOTE_LOW) {
        /* Let the kernel run a window ahead of what the receiver's peer acked. */
        if (receiver_totals(s, d, &out)) {
            uint64_t acked = out.acked > s->kacked0[d] ? out.acked - s->kacked0[d] : 0;
            (void)krelay_allow(&l->krelay, s->kcookie[d], acked + KRELAY_WINDOW);
        }
        return;
    }
    s->kdemote[d] = 1;
    l->stats.krelay_demoted++;
    if (!s->kflush)
        krelay_demote_check(s);
}

static void krelay_drain_notes(struct lbd *l, struct session *ending)
{
    uint64_t tag;
    enum krelay_note_kind kind;
    int dir;
    while (krelay_next_note(&l->krelay, &tag, &kind) == 1) {
        struct session *s = tag_session(tag, &dir);
        if (s != ending)
            krelay_note(s, dir, kind);
    }
}

void session_krelay_events(struct lbd *l)
{
    uint64_t tag;
    bool hangup;
    int r, dir;
    /* A session's sockets leave the watch when they close, and its notes are read
     * before it is freed, so no tag outlives its session (lbd never shares these
     * fds). */
    while ((r = krelay_next_event(&l->krelay, &tag, &hangup)) != 0) {
        if (r == 2) {
            krelay_drain_notes(l, NULL);
        } else {
            struct session *s = tag_session(tag, &dir);
            krelay_closed(s, dir, hangup);
        }
    }
}
