/* listener.h -- what both daemons' libuv listeners share.
 *
 * libuv accepts one connection before it calls a listener's connection callback and
 * keeps it until uv_accept() takes it; a callback that returns without taking it (out of
 * memory, over a limit) leaves the listener unwatched for good, silently. Every
 * listener of lbd and vrrpd (clients, peer cancels, admin, liveness, peer watch) calls
 * listener_drop_pending() on such a path instead. */
#ifndef COMMON_LISTENER_H
#define COMMON_LISTENER_H

#include <uv.h>

/* Accept the connection waiting on server and close it at once (the client sees its
 * connection end). Returns 0, or a negative errno when none could be taken. */
int listener_drop_pending(uv_stream_t *server);

#endif
