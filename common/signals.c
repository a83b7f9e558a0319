/* signals.c -- see signals.h. */
#include "signals.h"

#include <signal.h>

void daemon_signals_start(struct daemon_signals *s, uv_loop_t *loop, void *data, uv_signal_cb cb)
{
    uv_signal_t *h[] = {&s->term, &s->intr, &s->hup};
    const int sig[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, h[i]);
        h[i]->data = data;
        uv_signal_start(h[i], cb, sig[i]);
    }
}

void daemon_signals_close(struct daemon_signals *s)
{
    uv_close((uv_handle_t *)&s->term, NULL);
    uv_close((uv_handle_t *)&s->intr, NULL);
    uv_close((uv_handle_t *)&s->hup, NULL);
}

bool daemon_signals_closed(const struct daemon_signals *s)
{
    return uv_is_closing((const uv_handle_t *)&s->term);
}
