/* track.h -- tracking the local lbd through its liveness socket.
 *
 * vrrpd holds a connection to lbd's unix socket: lbd's death closes it and vrrpd knows
 * at once (no polling interval). A ping every interval, answered by lbd, catches a hung
 * lbd after `timeout`. Until the first answer, lbd counts as down, so an instance never
 * takes a VIP before its proxy can serve it. */
#ifndef VRRPD_TRACK_H
#define VRRPD_TRACK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef void (*track_cb)(void *arg, bool ok, const char *why);

struct track {
    uv_loop_t *loop;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    char path[108];
    uint64_t interval_ms, timeout_ms;
    uint64_t last_answer_ms, connected_ms;
    uint64_t ping_out_ms; /* when the oldest unanswered ping was sent; 0: none */
    bool pipe_open, connected, ok, closing;
    bool late_read; /* a timeout found lbd's answer unread and gave the loop a turn */
    bool draining;  /* lbd said it drains: it still serves, a graceful handover */
    int handles;
    char rbuf[128];
    size_t rlen;
    char last_answer[64];
    track_cb cb;
    void *arg;
    /* Lines lbd sends that are not answers to pings ("quiet ADDR ..."): NULL to ignore. */
    void (*on_line)(void *arg, const char *line);
};

int track_start(struct track *t, uv_loop_t *loop, const char *path, uint64_t interval_ms,
                uint64_t timeout_ms, track_cb cb, void *arg);
void track_stop(struct track *t);
/* Tell lbd something on the channel (a line ending in \n, short): 0, or -1 when it is
 * not connected or the line did not go. */
int track_send(struct track *t, const char *line);

#endif
