/* bulk.h -- one direction of a session relayed with splice(2) through a pipe while it
 * carries a bulk transfer (a COPY, a big result): the bytes go from one socket's receive
 * queue to the other's send queue without being copied into lbd and back, up to a
 * pipe's worth per system call. The pipe is the direction's only buffer, so a slow
 * reader stops lbd reading the sender as in the copying relay (back-pressure), and it
 * exists only while the transfer lasts. relay_splice.c starts one after a run of full reads
 * and takes the direction back when it has been quiet for BULK_QUIET_MS. */
#ifndef LBD_BULK_H
#define LBD_BULK_H

#include <stddef.h>
#include <uv.h>

/* Pipe size asked for (pipe-max-size's default; a user over its pipe quota gets less,
 * down to 2 pages): at most this much is in flight per direction, in the kernel. With
 * 256 KiB and a 64 KiB mark a 208 MB COPY took 1.02x direct's time, with 1 MiB and
 * 256 KiB 0.94x (the client too reads bigger pieces) and half lbd's CPU. */
#define BULK_PIPE (1024 * 1024)
/* Nothing arrived and nothing is left to send for this long: the transfer is over. */
#define BULK_QUIET_MS 250
/* While bytes flow, lbd is woken when this much is waiting (SO_RCVLOWAT), not for each
 * segment the sender writes (PostgreSQL writes 8 KiB at a time), and looks for a tail
 * smaller than that after BULK_TAIL_MS. */
#define BULK_LOWAT (256 * 1024)
#define BULK_TAIL_MS 1

enum bulk_event {
    BULK_MOVED, /* n bytes were taken from the sender */
    BULK_QUIET, /* nothing in flight, nothing arrived for BULK_QUIET_MS */
    BULK_EOF,   /* the sender closed, and all it sent before is written */
    BULK_IN_ERROR,
    BULK_OUT_ERROR,
};
typedef void (*bulk_cb)(void *ctx, enum bulk_event ev, size_t n);

struct bulk;

/* Relay in_fd -> out_fd (both non-blocking sockets the caller keeps and does not read
 * from, or write to, respectively, meanwhile). The descriptors are duplicated, so the
 * caller's own polling of them is not disturbed. NULL (errno set) when out of
 * descriptors or memory: the caller relays as before. */
struct bulk *bulk_start(uv_loop_t *loop, int in_fd, int out_fd, bulk_cb cb, void *ctx);

/* No callback after this; done(ctx) runs once the handles are closed and the
 * descriptors released. Bytes still in the pipe are dropped (the caller stops a quiet
 * transfer, or is ending the session). */
void bulk_stop(struct bulk *b, void (*done)(void *ctx));

#endif
