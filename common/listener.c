/* listener.c -- see listener.h. */
#include "listener.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

/* uv_accept() both takes the held connection and re-arms the listener, but needs a
 * handle to take it into; allocating one is what just failed. So a few handles are set
 * aside: each takes one connection, is closed, and is free again once libuv has closed
 * it (at the end of the loop turn). lbd accepts at most 64 client connections a turn. */
#define SINKS 96
static struct sink {
    uv_tcp_t tcp;
    bool busy;
} sinks[SINKS];

static void on_sink_closed(uv_handle_t *h)
{
    ((struct sink *)h->data)->busy = false;
}

int listener_drop_pending(uv_stream_t *server)
{
    if (server->accepted_fd < 0)
        return -EAGAIN;
    for (size_t i = 0; i < SINKS; i++) {
        struct sink *k = &sinks[i];
        if (k->busy)
            continue;
        if (uv_tcp_init(server->loop, &k->tcp) != 0)
            break;
        k->busy = true;
        k->tcp.data = k;
        int rc = uv_accept(server, (uv_stream_t *)&k->tcp); /* (closes the fd itself on error) */
        uv_close((uv_handle_t *)&k->tcp, on_sink_closed);
        return rc;
    }
    /* Every sink in use this turn (a flood while memory is short): close the descriptor
     * libuv holds (src/unix/stream.c, uv__server_io); inside the connection callback,
     * libuv then goes on accepting by itself. */
    int fd = server->accepted_fd;
    server->accepted_fd = -1;
    close(fd);
    return 0;
}

int listener_take_pending(uv_stream_t *server)
{
    int fd = server->accepted_fd;
    server->accepted_fd = -1;
    return fd;
}
