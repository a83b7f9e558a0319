/* liveness.c -- the channel vrrpd watches to track this lbd.
 *
 * A unix stream socket (lbd.liveness_socket). vrrpd connects and holds the connection
 * open: when lbd dies, the kernel closes it and vrrpd sees EOF at once, with no polling
 * interval. vrrpd also writes "ping\n" now and then; lbd answers each line with
 * "lbd ok up=N draining=0|1\n", so a hung lbd shows as a missing answer. Before a planned
 * resignation vrrpd writes "quiesce ADDRESS MS\n": new connections to that VIP are
 * dropped for MS (their SYN is retried, and reaches the new holder). For each advert it
 * hears it writes "advert VRID WALL_MS\n", so the status page's "last advert" is its age
 * when the page asks. Neither is answered. */
#include "lbd.h"
#include "worker.h"
#include "list.h"
#include "liveness.h"
#include "session.h"

#include "fault.h"
#include "listener.h"
#include "log.h"
#include "parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct liveness_conn;

struct liveness {
    uv_pipe_t server; /* data = struct lbd */
    struct liveness_conn *conns;
    char path[108];
};

struct liveness_conn {
    uv_pipe_t pipe; /* data = this */
    struct lbd *lbd;
    struct liveness_conn *prev, *next; /* on liveness.conns while listed */
    bool listed;
    char line[64];
    size_t len;
    char reply[64];
    uv_write_t wreq;
    bool writing;
};

static void conn_unlist(struct liveness_conn *c)
{
    struct liveness *lv = c->lbd->liveness;
    if (!c->listed || lv == NULL)
        return;
    LIST_UNLINK(lv->conns, c);
    c->listed = false;
}

static void conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void conn_close(struct liveness_conn *c)
{
    conn_unlist(c);
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct liveness_conn *c = h->data;
    *buf = uv_buf_init(c->line + c->len, (unsigned)(sizeof(c->line) - c->len));
}

static void on_written(uv_write_t *req, int status)
{
    struct liveness_conn *c = req->data;
    c->writing = false;
}

/* The longest vrrpd is kept waiting for the logins under way on a VIP it resigns (a login
 * through lbd takes milliseconds; a client silent longer is not waited for). */
#define LIVENESS_QUIET_WAIT_MS 1000

static void sent(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* A line to every watcher (vrrpd); returns to how many it went. */
static int send_all(struct lbd *l, const char *line)
{
    struct liveness *lv = l->liveness;
    int n = 0;
    for (struct liveness_conn *c = lv ? lv->conns : NULL; c; c = c->next) {
        struct {
            uv_write_t req;
            char text[96];
        } *w = malloc(sizeof(*w));
        if (w == NULL)
            continue;
        int len = snprintf(w->text, sizeof(w->text), "%s", line);
        uv_buf_t b = uv_buf_init(w->text, (unsigned)len);
        if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, sent) == 0)
            n++;
        else
            free(w);
    }
    return n;
}

static void say_quiet(struct lbd *l, const struct sockaddr_storage *ip, size_t left)
{
    char a[SOCKADDR_STRLEN], line[96];
    format_ip((const struct sockaddr *)ip, a, sizeof(a));
    snprintf(line, sizeof(line), "quiet %s logins_left=%zu\n", a, left);
    send_all(l, line);
    log_emit(left ? LOG_WARN : LOG_INFO, "quiet",
             "address=%s logins_left=%zu detail=\"vrrpd may hand the VIP over\"", a, left);
}

static void on_quiet_wait_timer(uv_timer_t *t)
{
    liveness_quiet_check(t->data, true);
}

void liveness_quiet_check(struct lbd *l, bool expired)
{
    uint64_t now = uv_now(l->loop), next = 0;
    size_t j = 0;
    for (size_t i = 0; i < l->n_quiet_waits; i++) {
        size_t left = session_count_starting_on(l, &l->quiet_waits[i].ip);
        if (left == 0 || (expired && now >= l->quiet_waits[i].due_ms)) {
            say_quiet(l, &l->quiet_waits[i].ip, left);
            continue;
        }
        if (next == 0 || l->quiet_waits[i].due_ms < next)
            next = l->quiet_waits[i].due_ms;
        l->quiet_waits[j++] = l->quiet_waits[i];
    }
    __atomic_store_n(&l->n_quiet_waits, j, __ATOMIC_RELAXED);
    if (j == 0)
        uv_timer_stop(&l->quiet_wait_timer);
    else if (expired)
        uv_timer_start(&l->quiet_wait_timer, on_quiet_wait_timer, next > now ? next - now : 0, 0);
}

static void quiet_wait(struct lbd *l, const struct sockaddr_storage *ip)
{
    size_t left = session_count_starting_on(l, ip);
    if (left == 0 || l->n_quiet_waits == sizeof(l->quiet_waits) / sizeof(l->quiet_waits[0])) {
        say_quiet(l, ip, left);
        return;
    }
    l->quiet_waits[l->n_quiet_waits].ip = *ip;
    l->quiet_waits[l->n_quiet_waits].due_ms = uv_now(l->loop) + LIVENESS_QUIET_WAIT_MS;
    if (__atomic_fetch_add(&l->n_quiet_waits, 1, __ATOMIC_RELAXED) == 0)
        uv_timer_start(&l->quiet_wait_timer, on_quiet_wait_timer, LIVENESS_QUIET_WAIT_MS, 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct liveness_conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    char *nl;
    while ((nl = memchr(c->line, '\n', c->len)) != NULL) {
        size_t used = (size_t)(nl - c->line) + 1;
        char cmd[64];
        memcpy(cmd, c->line, used - 1);
        cmd[used - 1] = '\0';
        memmove(c->line, c->line + used, c->len - used);
        c->len -= used;
        char addr[48];
        unsigned long long ms;
        struct sockaddr_storage ip;
        unsigned vrid;
        if (sscanf(cmd, "advert %u %llu", &vrid, &ms) == 2) {
            /* vrrpd heard group vrid's master at wall time ms (for the status page). */
            if (vrid < 256)
                c->lbd->vrrp_advert_ms[vrid] = ms;
            continue;
        }
        if (sscanf(cmd, "quiesce %47s %llu", addr, &ms) == 2) {
            /* vrrpd resigns a group: new connections to its VIPs wait for the new holder
             * (lbd.h: on_quiesce), and once the logins under way on them are done, lbd
             * says "quiet ADDR" (vrrpd then resigns). Not a ping: no answer. */
            if (parse_ip(addr, &ip) == 0 && ms <= 60000) {
                c->lbd->on_quiesce(c->lbd, &ip, ms);
                quiet_wait(c->lbd, &ip);
            }
            continue;
        }
        if (c->writing)
            continue; /* answer is on its way; one answer covers several pings */
        struct lbd *l = c->lbd;
        int n = snprintf(c->reply, sizeof(c->reply), "lbd ok up=%zu draining=%d\n",
                         pool_count_eligible(&l->nodes.pool), l->draining ? 1 : 0);
        uv_buf_t b = uv_buf_init(c->reply, (unsigned)n);
        c->wreq.data = c;
        if (uv_write(&c->wreq, s, &b, 1, on_written) == 0)
            c->writing = true;
    }
    if (c->len == sizeof(c->line))
        c->len = 0; /* a line too long: drop it */
}

/* vrrpd holds one connection (two across its restart): more are refused. */
#define LIVENESS_MAX_CONNS 8

static void on_connection(uv_stream_t *server, int status)
{
    struct lbd *l = server->data;
    if (status < 0)
        return;
    struct liveness_conn *c =
        liveness_watchers(l) < LIVENESS_MAX_CONNS && !fault_hit("liveness_alloc")
            ? calloc(1, sizeof(*c))
            : NULL;
    if (c == NULL) {
        listener_drop_pending(server);
        STAT_INC(l->workers[0].stats.accept_failed);
        return;
    }
    c->lbd = l;
    c->pipe.data = c;
    uv_pipe_init(l->loop, &c->pipe, 0);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        conn_close(c);
        return;
    }
    struct liveness *lv = l->liveness;
    LIST_PUSH(lv->conns, c);
    c->listed = true;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void server_closed(uv_handle_t *h)
{
    free((struct liveness *)((char *)h - offsetof(struct liveness, server)));
}

/* Tell every watcher now (not at its next ping) how lbd stands. Returns how many. */
int liveness_push(struct lbd *l)
{
    char line[64];
    snprintf(line, sizeof(line), "lbd ok up=%zu draining=%d\n", pool_count_eligible(&l->nodes.pool),
             l->draining ? 1 : 0);
    return send_all(l, line);
}

int liveness_start(struct lbd *l)
{
    if (l->cfg.liveness_socket[0] == '\0')
        return 0;
    struct liveness *lv = calloc(1, sizeof(*lv));
    if (lv == NULL)
        return UV_ENOMEM;
    snprintf(lv->path, sizeof(lv->path), "%s", l->cfg.liveness_socket);
    unlink(lv->path); /* a stale socket from a killed run */
    uv_pipe_init(l->loop, &lv->server, 0);
    lv->server.data = l;
    int rc = uv_pipe_bind(&lv->server, lv->path);
    if (rc == 0 && chmod(lv->path, 0600) != 0) /* only its owner (root, as vrrpd) connects */
        rc = UV_EPERM;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&lv->server, 16, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&lv->server, server_closed);
        return rc;
    }
    l->liveness = lv;
    return 0;
}

/* Close the listening socket and every connection: vrrpd sees EOF now. */
void liveness_stop(struct lbd *l)
{
    struct liveness *lv = l->liveness;
    if (lv == NULL)
        return;
    unlink(lv->path);
    while (lv->conns)
        conn_close(lv->conns);
    l->liveness = NULL;
    uv_close((uv_handle_t *)&lv->server, server_closed);
}

size_t liveness_watchers(struct lbd *l)
{
    struct liveness *lv = l->liveness;
    size_t n = 0;
    for (struct liveness_conn *c = lv ? lv->conns : NULL; c; c = c->next)
        n++;
    return n;
}
