/* httpd.h -- the small read-only HTTP server behind both daemons' admin endpoints.
 *
 * One request per connection (HTTP/1.0 style, "Connection: close"); GET and HEAD only;
 * a request must arrive whole within HTTPD_TIMEOUT_MS of the accept and in 4 KiB. At
 * most HTTPD_MAX_CONNS connections are open at once, HTTPD_MAX_PER_SOURCE from one
 * address (more are closed at once and counted), so a flood on the admin port cannot
 * take memory or descriptors from the daemon. When all are taken, a new connection
 * evicts the oldest one still waiting for its request: idle connections cannot keep a
 * monitoring scrape out, they are only ever the ones to go. */
#ifndef COMMON_HTTPD_H
#define COMMON_HTTPD_H

#include "metrics.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define HTTPD_MAX_CONNS 32
#define HTTPD_MAX_PER_SOURCE 8
#define HTTPD_MAX_REQUEST 4096
#define HTTPD_TIMEOUT_MS 3000

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
    uint64_t requests, rejected; /* served; turned away (too many from one address) */
    uint64_t evicted;            /* idle connections closed to make room for a new one */
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
