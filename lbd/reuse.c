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

enum park_state { PARK_RESETTING, PARK_IDLE, PARK_CLOSING };

struct lbd_parked {
    uv_tcp_t tcp;     /* data = this */
    uv_timer_t timer; /* the reset's deadline, then the idle limit */
    struct lbd *lbd;
    struct pool_node *node;         /* holds a reference */
    struct lbd_parked *prev, *next; /* on lbd->parked, newest first */
    uint8_t *startup, *params;
    uint32_t startup_len, params_len;
    uint32_t pid, key; /* the node's BackendKeyData */
    uint8_t state;     /* enum park_state */
    uint8_t handles;
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

static void unlink_parked(struct lbd_parked *p)
{
    struct lbd *l = p->lbd;
    LIST_UNLINK(l->parked, p);
    p->node->parked--;
    l->n_parked--;
}

/* Close a parked connection: a Terminate first when the node is still there, so its
 * log shows a client that said goodbye, not a lost connection. */
static void park_close(struct lbd_parked *p, const char *why)
{
    if (p->state == PARK_CLOSING)
        return;
    uint8_t x[5];
    size_t n = pgwire_terminate_build(x, sizeof(x));
    uv_buf_t b = uv_buf_init((char *)x, (unsigned)n);
    (void)uv_try_write((uv_stream_t *)&p->tcp, &b, 1);
    p->state = PARK_CLOSING;
    unlink_parked(p);
    log_emit(LOG_DEBUG, "reuse_close", "node=%s reason=%s", p->node->name, why);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->tcp, on_handle_closed);
}

static void on_park_timer(uv_timer_t *t)
{
    struct lbd_parked *p = t->data;
    struct lbd *l = p->lbd;
    if (p->state == PARK_RESETTING) {
        l->stats.reuse_reset_failed++;
        park_close(p, "reset_timeout");
    } else {
        l->stats.reuse_expired++;
        park_close(p, "idle");
    }
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
    struct lbd *l = p->lbd;
    if (nread == 0 || p->state == PARK_CLOSING)
        return;
    if (nread < 0 || p->state == PARK_IDLE) {
        /* The node closed it (idle_session_timeout, a terminated backend: its FATAL
         * comes first), or said something unasked: not fit for a client. */
        if (p->state == PARK_RESETTING)
            l->stats.reuse_reset_failed++;
        park_close(p, nread < 0 ? "node_closed" : "node_spoke");
        return;
    }
    if (p->reply_len + (size_t)nread > sizeof(p->reply)) {
        l->stats.reuse_reset_failed++;
        park_close(p, "reset_answer");
        return;
    }
    memcpy(p->reply + p->reply_len, buf->base, (size_t)nread);
    p->reply_len += (uint32_t)nread;
    int r = pgwire_reset_answer(p->reply, p->reply_len);
    if (r < 0) {
        l->stats.reuse_reset_failed++;
        park_close(p, "reset_answer");
    } else if (r > 0) {
        p->state = PARK_IDLE;
        uv_timer_start(&p->timer, on_park_timer, l->cfg.reuse_idle_ms, 0);
    }
}

bool reuse_can_park(const struct lbd *l, const struct pool_node *n)
{
    return l->cfg.reuse_max_idle > 0 && !l->draining && !n->removed && n->state == NODE_UP &&
           n->parked < l->cfg.reuse_max_idle;
}

int reuse_park(struct lbd *l, struct pool_node *n, int fd, uint8_t *startup, uint32_t startup_len,
               uint8_t *params, uint32_t params_len, uint32_t pid, uint32_t key)
{
    struct lbd_parked *p = calloc(1, sizeof(*p));
    if (p == NULL || !reuse_can_park(l, n)) {
        free(p);
        free(startup);
        free(params);
        close(fd);
        return p == NULL ? -ENOMEM : -EBUSY;
    }
    p->lbd = l;
    p->node = n;
    node_ref(n);
    p->startup = startup;
    p->startup_len = startup_len;
    p->params = params;
    p->params_len = params_len;
    p->pid = pid;
    p->key = key;
    p->state = PARK_RESETTING;
    LIST_PUSH(l->parked, p);
    n->parked++;
    l->n_parked++;
    l->stats.reuse_parked++;
    uv_timer_init(l->loop, &p->timer);
    uv_tcp_init(l->loop, &p->tcp);
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
        l->stats.reuse_reset_failed++;
        park_close(p, "reset_send");
        return rc;
    }
    uv_timer_start(&p->timer, on_park_timer, l->cfg.startup_ms, 0);
    return 0;
}

/* Is the parked socket still quiet (no data, no FIN, no error waiting)? The node may
 * have closed it in the loop turn before its read callback would have said so. */
static bool still_quiet(struct lbd_parked *p)
{
    uv_os_fd_t fd;
    char c;
    if (uv_fileno((uv_handle_t *)&p->tcp, &fd) != 0)
        return false;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int reuse_take(struct lbd *l, struct pool_node *n, const uint8_t *startup, uint32_t len,
               struct reuse_grant *g)
{
    struct lbd_parked *p = l->parked, *next;
    for (; p; p = next) {
        next = p->next;
        if (p->node != n || p->state != PARK_IDLE || p->startup_len != len ||
            memcmp(p->startup, startup, len) != 0)
            continue;
        if (!still_quiet(p)) {
            park_close(p, "node_closed");
            continue;
        }
        uv_os_fd_t fd;
        int dup_fd = uv_fileno((uv_handle_t *)&p->tcp, &fd) == 0 ? dup(fd) : -1;
        if (dup_fd < 0)
            return -errno;
        g->fd = dup_fd;
        g->params = p->params;
        g->params_len = p->params_len;
        g->pid = p->pid;
        g->key = p->key;
        p->params = NULL;
        p->params_len = 0;
        /* The client takes it over: no Terminate. */
        p->state = PARK_CLOSING;
        unlink_parked(p);
        uv_timer_stop(&p->timer);
        uv_close((uv_handle_t *)&p->timer, on_handle_closed);
        uv_close((uv_handle_t *)&p->tcp, on_handle_closed);
        l->stats.reuse_taken++;
        return 0;
    }
    return -ENOENT;
}

void reuse_close_node(struct lbd *l, struct pool_node *n, const char *why)
{
    struct lbd_parked *p = l->parked, *next;
    for (; p; p = next) {
        next = p->next;
        if (n == NULL || p->node == n)
            park_close(p, why);
    }
}
