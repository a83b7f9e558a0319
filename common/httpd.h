/* httpd.h -- the small read-only HTTP server behind both daemons' admin endpoints.
 *
 * One request per connection (HTTP/1.0 style, "Connection: close"); GET and HEAD only;
 * a request must arrive whole within 5 s and 4 KiB. At most HTTPD_MAX_CONNS connections
 * are served at once: beyond that a new one is closed at once and counted, so a flood on
 * the admin port cannot take memory or file descriptors from the proxy. */
#ifndef COMMON_HTTPD_H
#define COMMON_HTTPD_H

#include "metrics.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define HTTPD_MAX_CONNS 32
#define HTTPD_MAX_REQUEST 4096
#define HTTPD_TIMEOUT_MS 5000

/* What a handler fills in: status code, content type and the body (a growing buffer). */
struct httpd_reply {
    int code;          /* 200 unless set */
    const char *ctype; /* "text/plain; charset=utf-8" unless set */
    struct metrics_buf body;
};

/* path has the query string removed; query is "" when there was none. */
typedef void (*httpd_handler)(void *ctx, const char *path, const char *query,
                              struct httpd_reply *r);

struct httpd_conn;

struct httpd {
    uv_tcp_t tcp; /* data = this */
    uv_loop_t *loop;
    bool open;
    httpd_handler handler;
    void *ctx;
    struct httpd_conn *conns; /* open connections, closed by httpd_stop */
    unsigned n_conns;
    uint64_t requests, rejected; /* served; turned away (too many connections) */
};

/* Bind and listen; 0 or a libuv error code (the handle is closed again on error by
 * httpd_stop, which the caller calls in every case). */
int httpd_start(struct httpd *h, uv_loop_t *loop, const struct sockaddr *addr,
                httpd_handler handler, void *ctx);
/* Stop listening and close every open connection. Safe to call twice. */
void httpd_stop(struct httpd *h);

/* Convenience for handlers. */
void httpd_text(struct httpd_reply *r, int code, const char *text);

#endif
