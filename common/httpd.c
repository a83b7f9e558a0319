/* httpd.c -- see httpd.h. */
#include "httpd.h"
#include "list.h"

#include "fault.h"
#include "listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct httpd_conn {
    uv_tcp_t tcp; /* data = this */
    uv_timer_t timer;
    uv_write_t wreq;
    struct httpd *h;
    struct httpd_conn *prev, *next;
    char *resp;
    int handles; /* open libuv handles; freed at 0 */
    bool responded;
    struct sockaddr_storage peer; /* its address (port zeroed): the per-source count */
    size_t used;
    char req[HTTPD_MAX_REQUEST];
};

static void conn_closed(uv_handle_t *hd)
{
    struct httpd_conn *c = hd->data;
    if (--c->handles == 0) {
        free(c->resp);
        free(c);
    }
}

static void conn_close(struct httpd_conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    struct httpd *h = c->h;
    LIST_UNLINK(h->conns, c);
    h->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

static void send_reply(struct httpd_conn *c, struct httpd_reply *r, bool head_only)
{
    char head[256];
    if (r->body.failed) {
        metrics_free(&r->body);
        metrics_init(&r->body);
        httpd_text(r, 503, "out of memory\n");
    }
    size_t blen = head_only ? 0 : r->body.len;
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                      "Connection: close\r\n\r\n",
                      r->code, reason_phrase(r->code), r->ctype, r->body.len);
    c->responded = true;
    c->resp = malloc((size_t)hl + blen);
    if (c->resp == NULL) {
        conn_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)hl);
    if (blen)
        memcpy(c->resp + hl, r->body.data, blen);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)((size_t)hl + blen));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        conn_close(c);
}

void httpd_text(struct httpd_reply *r, int code, const char *text)
{
    r->code = code;
    r->ctype = "text/plain; charset=utf-8";
    r->body.len = 0;
    metrics_printf(&r->body, "%s", text);
}

static void handle(struct httpd_conn *c)
{
    struct httpd_reply r = {200, "text/plain; charset=utf-8", {0}};
    metrics_init(&r.body);
    char method[8], path[256];
    bool head_only = false;
    c->h->requests++;
    if (sscanf(c->req, "%7s %255s", method, path) != 2) {
        httpd_text(&r, 400, "bad request\n");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        httpd_text(&r, 405, "only GET and HEAD\n");
    } else {
        head_only = strcmp(method, "HEAD") == 0;
        char *q = strchr(path, '?');
        if (q)
            *q++ = '\0';
        c->h->handler(c->h->ctx, path, q ? q : "", &r);
    }
    send_reply(c, &r, head_only);
    metrics_free(&r.body);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct httpd_conn *c = hd->data;
    *buf = uv_buf_init(c->req + c->used, (unsigned)(sizeof(c->req) - 1 - c->used));
}

/* A request that cannot be handled: 400 with the reason. */
static void reply_400(struct httpd_conn *c, const char *why)
{
    struct httpd_reply r = {400, "text/plain; charset=utf-8", {0}};
    metrics_init(&r.body);
    httpd_text(&r, 400, why);
    send_reply(c, &r, false);
    metrics_free(&r.body);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct httpd_conn *c = s->data;
    if (c->responded)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->used += (size_t)nread;
    c->req[c->used] = '\0';
    if (memchr(c->req, '\0', c->used) != NULL) { /* a NUL byte: not HTTP */
        uv_read_stop(s);
        reply_400(c, "bad request\n");
    } else if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
        uv_read_stop(s);
        handle(c);
    } else if (c->used >= sizeof(c->req) - 1) {
        uv_read_stop(s);
        reply_400(c, "request too large\n");
    }
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    return a->ss_family == b->ss_family && memcmp(a, b, sizeof(*a)) == 0;
}

/* The oldest connection still waiting for its request, or NULL. */
static struct httpd_conn *oldest_waiting(struct httpd *h)
{
    struct httpd_conn *found = NULL;
    for (struct httpd_conn *c = h->conns; c; c = c->next)
        if (!c->responded && !uv_is_closing((uv_handle_t *)&c->tcp))
            found = c; /* (newest first on the list: the last seen is the oldest) */
    return found;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct httpd *h = server->data;
    if (status < 0)
        return;
    struct httpd_conn *c = fault_hit("httpd_alloc") ? NULL : calloc(1, sizeof(*c));
    if (c == NULL) { /* no memory for it */
        h->rejected++;
        listener_drop_pending(server);
        return;
    }
    c->h = h;
    c->tcp.data = c->timer.data = c;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->handles = 2;
    LIST_PUSH(h->conns, c);
    h->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    int len = sizeof(c->peer);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len) != 0) {
        conn_close(c);
        return;
    }
    ((struct sockaddr_in *)&c->peer)->sin_port = 0; /* (the same offset for IPv6) */
    unsigned mine = 0;
    for (struct httpd_conn *o = h->conns; o; o = o->next)
        mine += same_ip(&o->peer, &c->peer);
    if (mine > HTTPD_MAX_PER_SOURCE) {
        h->rejected++;
        conn_close(c);
        return;
    }
    if (h->n_conns > HTTPD_MAX_CONNS) {
        struct httpd_conn *old = oldest_waiting(h);
        if (old == NULL || old == c) {
            h->rejected++;
            conn_close(c);
            return;
        }
        h->evicted++;
        conn_close(old);
    }
    uv_timer_start(&c->timer, on_timeout, HTTPD_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int httpd_start(struct httpd *h, uv_loop_t *loop, const struct sockaddr *addr,
                httpd_handler handler, void *ctx)
{
    h->loop = loop;
    h->handler = handler;
    h->ctx = ctx;
    h->conns = NULL;
    h->n_conns = 0;
    uv_tcp_init(loop, &h->tcp);
    h->tcp.data = h;
    h->open = true;
    int rc = uv_tcp_bind(&h->tcp, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->tcp, 64, on_connection);
    return rc;
}

void httpd_stop(struct httpd *h)
{
    if (!h->open)
        return;
    h->open = false;
    if (!uv_is_closing((uv_handle_t *)&h->tcp))
        uv_close((uv_handle_t *)&h->tcp, NULL);
    while (h->conns)
        conn_close(h->conns);
}
