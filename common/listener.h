/* listener.h -- what both daemons' libuv listeners share.
 *
 * libuv accepts one connection before it calls a listener's connection callback and
 * keeps it (the stream's accepted_fd) until uv_accept() takes it; a callback that
 * returns without taking it (out of memory, over a limit) leaves the listener unwatched
 * for good, silently. Every listener of lbd and vrrpd (clients, peer cancels, admin,
 * liveness, peer watch) calls listener_drop_pending() on such a path instead. */
#ifndef COMMON_LISTENER_H
#define COMMON_LISTENER_H

#include <uv.h>

/* Take the connection libuv holds for server and close it at once (the client sees its
 * connection end), allocating nothing; libuv watches the listener again. Works in the
 * connection callback and outside it (a deferred accept). Returns 0, or a negative errno
 * when none was held. */
int listener_drop_pending(uv_stream_t *server);

/* Take the connection libuv holds for server as a descriptor of the caller's (non-blocking,
 * close-on-exec), as uv_accept would into a handle; -1 when none is held. Only inside
 * the connection callback: libuv then goes on accepting by itself. (lbd hands the
 * descriptor to another event loop.) */
int listener_take_pending(uv_stream_t *server);

#endif
