/* reuse.c -- node connections kept for the next client (lbd.pool.reuse).
 *
 * PostgreSQL forks a backend for every connection: for a session of one transaction
 * (pgbench -C, a PHP page, a serverless function) that fork and the backend's start are
 * most of the cost, and no L4 proxy can avoid them. lbd can, for the connections where
 * it is safe:
 *
 * - the node let the user in without asking anything (trust: AuthenticationOk first),
 *   so any client with the same StartupMessage would have been let in the same way
 *   (the node sees lbd's address either way);
 * - the client left at a clean point: Terminate, with every query answered, no
 *   extended-protocol batch open, no transaction open, and no ParameterStatus since the
 *   startup (the ParameterStatus lbd replays are then the node's current ones);
 * - lbd relayed the session itself (not handed to the kernel, not spliced).
 *
 * Such a connection is parked here instead of closed: lbd sends DISCARD ALL (temporary
 * tables, prepared statements, LISTEN, advisory locks, session settings), and once the
 * node answers CommandComplete and ReadyForQuery 'I' exactly, the connection waits, at
 * most pool.reuse.idle, for a client with the same StartupMessage (byte for byte) that
 * the balancer sends to the same node. session.c answers that client itself
 * (AuthenticationOk, the ParameterStatus, BackendKeyData with the node's pid and a new
 * secret key, ReadyForQuery) and relays from there. Clients never see the node's own
 * secret key, so a client that left cannot cancel the next one's query.
 *
 * Workers (worker.h): the worker whose session parked a connection owns it (its
 * handles are on that worker's loop, which sends the reset and reads the answer). Once
 * reset, the connection is idle: its owner stops reading it and lists it in l->idle
 * (under the shared lock), where a session of any worker may take it, with a descriptor
 * of its own; the owner then only closes its handles (told with worker_post), without
 * the Terminate it sends when it closes an idle connection itself. A connection the
 * node closed while idle is seen when taken (still_quiet), or at its idle limit.
 *
 * Neighbours: session.c parks and takes connections; lbd.c closes them when a node goes
 * down, drains or is removed, on reload and at shutdown. */
#include "lbd.h"
#include "list.h"
#include "reuse.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum park_state {
    PARK_RESETTING, /* the owner reads the reset's answer */
    PARK_IDLE,      /* on l->idle: anyone may take it (changes under the lock) */
    PARK_TAKEN,     /* a session took it: the owner closes its handles, no Terminate */
    PARK_CLOSING,   /* handles closing */
};

struct lbd_parked {
    uv_tcp_t tcp;                     /* data = this */
    uv_timer_t timer;                 /* the reset's deadline, then the idle limit */
    struct lbd_worker *w;             /* its owner: the loop its handles are on */
    struct pool_node *node;           /* holds a reference */
    struct lbd_parked *prev, *next;   /* on w->parked (the owner's), newest first */
    struct lbd_parked *iprev, *inext; /* on l->idle while PARK_IDLE */
    uint8_t *startup, *params;
    uint32_t startup_len, params_len;
    uint32_t pid, key; /* the node's BackendKeyData */
    uint8_t state;     /* enum park_state (under the lock once shared) */
    uint8_t handles;
    bool counted; /* in node->parked and l->n_parked (changes under the lock) */
    bool shared;  /* (the owner's) it went on l->idle: its state is read under the lock */
    bool shut;    /* (the owner's) its handles are closing */
    struct worker_msg close_msg; /* close_taken, posted to the owner by the taker */
    uint32_t reply_len;
    uint8_t reply[64]; /* the node's answer to the reset */
    char rbuf[256];
};

/* 'Q' DISCARD ALL (55.7 Query): what PgBouncer's server_reset_query does. */
static const uint8_t RESET_QUERY[] = {'Q', 0,   0,   0,   16,  'D', 'I', 'S', 'C',
                                      'A', 'R', 'D', ' ', 'A', 'L', 'L', 0};

static void on_handle_closed(uv_handle_t *h)
{
    struct lbd_parked *p = h->data;
    if (--p->handles > 0)
        return;
    node_unref(p->node);
    free(p->startup);
    free(p->params);
    free(p);
}

/* It no longer counts against pool.reuse.max_idle (taken or closing). */
static void uncount(struct lbd_parked *p)
{
    if (!p->counted)
        return;
    p->counted = false;
    __atomic_sub_fetch(&p->node->parked, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&p->w->lbd->n_parked, 1, __ATOMIC_RELAXED);
}

/* Off l->idle (the caller holds the lock). */
static void idle_unlink(struct lbd *l, struct lbd_parked *p)
{
    if (p->iprev)
        p->iprev->inext = p->inext;
    else
        l->idle = p->inext;
    if (p->inext)
        p->inext->iprev = p->iprev;
    p->iprev = p->inext = NULL;
}

/* On the owner's loop: its handles close (a Terminate first when terminate). */
static void park_shut(struct lbd_parked *p, bool terminate, const char *why)
{
    struct lbd_worker *w = p->w;
    if (terminate) {
        uint8_t x[5];
        size_t n = pgwire_terminate_build(x, sizeof(x));
        uv_buf_t b = uv_buf_init((char *)x, (unsigned)n);
        (void)uv_try_write((uv_stream_t *)&p->tcp, &b, 1);
    }
    p->shut = true;
    if (!p->shared)
        p->state = PARK_CLOSING;
    lbd_lock(w->lbd);
    uncount(p);
    lbd_unlock(w->lbd);
    LIST_UNLINK(w->parked, p);
    __atomic_store_n(&w->n_parked, w->n_parked - 1, __ATOMIC_RELAXED);
    log_emit(LOG_DEBUG, "reuse_close", "node=%s reason=%s", p->node->name, why);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->tcp, on_handle_closed);
}

/* Close a parked connection (its owner's loop): a Terminate first when the node is still
 * there, so its log shows a client that said goodbye, not a lost connection. One a
 * session took meanwhile only has its handles closed. */
static void park_close(struct lbd_parked *p, const char *why)
{
    struct lbd *l = p->w->lbd;
    if (p->shut)
        return;
    if (p->shared) {
        lbd_lock(l);
        bool taken = p->state == PARK_TAKEN;
        if (p->state == PARK_IDLE)
            idle_unlink(l, p);
        if (!taken)
            p->state = PARK_CLOSING;
        lbd_unlock(l);
        if (taken)
            return; /* (its taker posted close_taken) */
    }
    park_shut(p, true, why);
}

static void on_park_timer(uv_timer_t *t)
{
    struct lbd_parked *p = t->data;
    struct lbd_worker *w = p->w;
    if (!p->shared) {
        STAT_INC(w->stats.reuse_reset_failed);
        park_close(p, "reset_timeout");
        return;
    }
    lbd_lock(w->lbd);
    bool idle = p->state == PARK_IDLE;
    lbd_unlock(w->lbd);
    if (idle)
        STAT_INC(w->stats.reuse_expired);
    park_close(p, "idle");
}

static void park_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct lbd_parked *p = h->data;
    (void)suggested;
    *buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void park_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct lbd_parked *p = stream->data;
    struct lbd_worker *w = p->w;
    if (nread == 0 || p->shared || p->shut)
        return;
    if (nread < 0) {
        /* The node closed it (a terminated backend: its FATAL comes first). */
        STAT_INC(w->stats.reuse_reset_failed);
        park_close(p, "node_closed");
        return;
    }
    if (p->reply_len + (size_t)nread > sizeof(p->reply)) {
        STAT_INC(w->stats.reuse_reset_failed);
        park_close(p, "reset_answer");
        return;
    }
    memcpy(p->reply + p->reply_len, buf->base, (size_t)nread);
    p->reply_len += (uint32_t)nread;
    int r = pgwire_reset_answer(p->reply, p->reply_len);
    if (r < 0) {
        STAT_INC(w->stats.reuse_reset_failed);
        park_close(p, "reset_answer");
    } else if (r > 0) {
        /* Reset: idle, for a client of any worker. Nothing more is read here (a session
         * of another worker may own the connection from now on). */
        uv_read_stop((uv_stream_t *)&p->tcp);
        struct lbd *l = w->lbd;
        p->shared = true;
        lbd_lock(l);
        p->state = PARK_IDLE;
        p->inext = l->idle;
        p->iprev = NULL;
        if (l->idle)
            l->idle->iprev = p;
        l->idle = p;
        lbd_unlock(l);
        uv_timer_start(&p->timer, on_park_timer, w->cfg.reuse_idle_ms, 0);
    }
}

bool reuse_can_park(const struct lbd_worker *w, const struct pool_node *n)
{
    /* (Relaxed reads of what worker 0 and the other workers change: reuse_park takes
     * its place in max_idle for sure.) */
    return w->cfg.reuse_max_idle > 0 && !RELAXED(w->lbd->draining) && !RELAXED(n->removed) &&
           RELAXED(n->state) == NODE_UP && RELAXED(n->parked) < w->cfg.reuse_max_idle;
}

int reuse_park(struct lbd_worker *w, struct pool_node *n, int fd, uint8_t *startup,
               uint32_t startup_len, uint8_t *params, uint32_t params_len, uint32_t pid,
               uint32_t key)
{
    struct lbd_parked *p = calloc(1, sizeof(*p));
    bool room = p != NULL && reuse_can_park(w, n);
    if (room && __atomic_add_fetch(&n->parked, 1, __ATOMIC_RELAXED) > w->cfg.reuse_max_idle) {
        __atomic_sub_fetch(&n->parked, 1, __ATOMIC_RELAXED); /* (another worker was first) */
        room = false;
    }
    if (!room) {
        free(p);
        free(startup);
        free(params);
        close(fd);
        return p == NULL ? -ENOMEM : -EBUSY;
    }
    p->w = w;
    p->node = n;
    node_ref(n);
    p->startup = startup;
    p->startup_len = startup_len;
    p->params = params;
    p->params_len = params_len;
    p->pid = pid;
    p->key = key;
    p->state = PARK_RESETTING;
    p->counted = true;
    LIST_PUSH(w->parked, p);
    __atomic_store_n(&w->n_parked, w->n_parked + 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&w->lbd->n_parked, 1, __ATOMIC_RELAXED);
    STAT_INC(w->stats.reuse_parked);
    uv_timer_init(w->loop, &p->timer);
    uv_tcp_init(w->loop, &p->tcp);
    p->timer.data = p->tcp.data = p;
    p->handles = 2;
    int rc = uv_tcp_open(&p->tcp, fd);
    if (rc != 0)
        close(fd); /* (the handle does not own it) */
    uv_buf_t b = uv_buf_init((char *)RESET_QUERY, sizeof(RESET_QUERY));
    if (rc == 0 && uv_try_write((uv_stream_t *)&p->tcp, &b, 1) != (int)sizeof(RESET_QUERY))
        rc = UV_EAGAIN;
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&p->tcp, park_alloc, park_read);
    if (rc != 0) {
        STAT_INC(w->stats.reuse_reset_failed);
        park_close(p, "reset_send");
        return rc;
    }
    uv_timer_start(&p->timer, on_park_timer, w->cfg.startup_ms, 0);
    return 0;
}

/* Is the parked socket still quiet (no data, no FIN, no error waiting)? Nobody reads an
 * idle connection: the node may have closed it meanwhile. */
static bool still_quiet(int fd)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* On the owner's loop: a session took p (or found it dead): close its handles. */
static void close_taken(struct lbd_worker *w, void *arg)
{
    (void)w;
    struct lbd_parked *p = arg;
    if (!p->shut)
        park_shut(p, false, "taken");
}

/* p is TAKEN (under the lock, now released): its owner closes its handles. */
static void hand_back(struct lbd_worker *w, struct lbd_parked *p, const char *why)
{
    if (p->w == w) {
        park_shut(p, false, why);
        return;
    }
    p->close_msg.fn = close_taken;
    p->close_msg.arg = p;
    worker_post_msg(p->w, &p->close_msg); /* (cannot fail: the message is p's own) */
}

int reuse_take(struct lbd_worker *w, struct pool_node *n, const uint8_t *startup, uint32_t len,
               struct reuse_grant *g)
{
    struct lbd *l = w->lbd;
    struct lbd_parked *found = NULL, *dead[8];
    size_t n_dead = 0;
    int rc = -ENOENT;
    lbd_lock(l);
    struct lbd_parked *next;
    for (struct lbd_parked *p = l->idle; p != NULL; p = next) {
        next = p->inext;
        if (p->node != n || p->startup_len != len || memcmp(p->startup, startup, len) != 0)
            continue;
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&p->tcp, &fd) != 0)
            continue;
        if (!still_quiet(fd)) {
            if (n_dead == sizeof(dead) / sizeof(dead[0]))
                continue;
            idle_unlink(l, p);
            p->state = PARK_TAKEN; /* (its owner closes it: the node did already) */
            uncount(p);
            dead[n_dead++] = p;
            continue;
        }
        int dup_fd = dup(fd);
        if (dup_fd < 0) {
            rc = -errno;
            break;
        }
        idle_unlink(l, p);
        p->state = PARK_TAKEN;
        uncount(p);
        g->fd = dup_fd;
        g->params = p->params;
        g->params_len = p->params_len;
        g->pid = p->pid;
        g->key = p->key;
        p->params = NULL;
        p->params_len = 0;
        found = p;
        rc = 0;
        break;
    }
    lbd_unlock(l);
    for (size_t i = 0; i < n_dead; i++)
        hand_back(w, dead[i], "node_closed");
    if (found) {
        STAT_INC(w->stats.reuse_taken);
        hand_back(w, found, "taken"); /* (the client takes it over: no Terminate) */
    }
    return rc;
}

void reuse_close_on(struct lbd_worker *w, struct pool_node *n, const char *why)
{
    struct lbd_parked *p = w->parked, *next;
    for (; p; p = next) {
        next = p->next;
        if (n == NULL || p->node == n)
            park_close(p, why); /* (skips one a session took: close_taken comes) */
    }
}

struct close_args {
    struct pool_node *n;
    const char *why;
};

static void close_on_worker(struct lbd_worker *w, void *arg)
{
    struct close_args *a = arg;
    reuse_close_on(w, a->n, a->why);
}

void reuse_close_node(struct lbd *l, struct pool_node *n, const char *why)
{
    struct close_args a = {n, why};
    workers_run(l, close_on_worker, &a);
}
