/* krelay.h -- the kernel relay: once a session is established, its two sockets are
 * handed to the kernel, where a BPF sk_skb verdict program moves each segment that
 * arrives on one socket to the send side of the other (sockhash redirect). lbd is
 * then not woken per message: no epoll_wait, read or write per query. lbd keeps the
 * sockets, watches them for the end of the session, and reads the byte counts from
 * TCP_INFO.
 *
 * Needs CAP_BPF and CAP_NET_ADMIN (or root) when lbd starts, and a kernel with
 * sockmap (CONFIG_BPF_STREAM_PARSER; Linux 5.13+ for the verdict without a parser).
 * Without them lbd relays in user space as before. Neighbours: session.c decides when
 * a session is handed over; lbd.c opens and closes the relay. */
#ifndef LBD_KRELAY_H
#define LBD_KRELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct krelay {
    int prog_fd;   /* the sk_skb verdict program */
    int dest_fd;   /* sockhash: socket cookie -> the socket its data goes to */
    int attach_fd; /* sockhash: socket cookie -> itself; the program is attached here */
    int epoll_fd;  /* end-of-session watch (EPOLLRDHUP), one-shot per socket */
};

/* Load the program and create the maps for up to max_sockets sockets (two per
 * session). Returns 0, or -errno with the reason in err; k is then closed (all -1). */
int krelay_open(struct krelay *k, uint32_t max_sockets, char *err, size_t errsize);
void krelay_close(struct krelay *k);
static inline bool krelay_is_open(const struct krelay *k)
{
    return k->prog_fd >= 0;
}

/* Hand the established pair (a, b) to the kernel: from now on what arrives on a is
 * sent on b and the other way round, including what is already waiting unread. The
 * caller must have nothing of its own left to write on either socket. tag_a/tag_b come
 * back from krelay_next_event when a/b is closed by its peer or fails. Returns 0, or
 * -errno with nothing changed (the caller goes on relaying itself). */
int krelay_join(struct krelay *k, int a, int b, uint64_t tag_a, uint64_t tag_b);

/* One pending end-of-session event: 1 with *tag and *hangup (the peer closed or
 * reset, rather than an error alone) set, 0 when none is left. */
int krelay_next_event(struct krelay *k, uint64_t *tag, bool *hangup);

/* A TCP socket's byte totals since it opened: received from its peer (a FIN does not
 * count), written by this side (sent or queued), and milliseconds since data last
 * arrived. active_open: this side connected (its SYN is not a byte). */
struct krelay_totals {
    uint64_t received, written;
    uint32_t idle_ms;
    bool fin_received;
};
int krelay_socket_totals(int fd, bool active_open, struct krelay_totals *t);

#endif
