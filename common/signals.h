/* signals.h -- the three signals both daemons handle: SIGTERM and SIGINT (a planned stop)
 * and SIGHUP (reload), on the loop. */
#ifndef PGVIP_SIGNALS_H
#define PGVIP_SIGNALS_H

#include <stdbool.h>
#include <uv.h>

struct daemon_signals {
    uv_signal_t term, intr, hup;
};

/* Watch the three; cb(handle, signum) runs on the loop with handle->data = data. */
void daemon_signals_start(struct daemon_signals *s, uv_loop_t *loop, void *data, uv_signal_cb cb);
void daemon_signals_close(struct daemon_signals *s);
/* daemon_signals_close has run. */
bool daemon_signals_closed(const struct daemon_signals *s);

#endif
