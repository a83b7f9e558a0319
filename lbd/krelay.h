/* krelay.h -- the kernel relay: once a session is established, its two sockets are
 * handed to the kernel, where a BPF sk_skb verdict program moves each segment that
 * arrives on one socket to the send side of the other (sockhash redirect). lbd is
 * then not woken per message: no epoll_wait, read or write per query. lbd keeps the
 * sockets, watches them for the end of the session, and reads the byte counts from
 * TCP_INFO.
 *
 * Needs CAP_BPF and CAP_NET_ADMIN (or root) when lbd starts, and a kernel with
 * sockmap (CONFIG_BPF_STREAM_PARSER; Linux 5.13+ for the verdict without a parser).
 * Without them lbd relays in user space as before. Neighbours: session_kernel.c decides when
 * a session is handed over; lbd.c opens and closes the relay. */
#ifndef LBD_KRELAY_H
#define LBD_KRELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes the kernel may redirect in one direction beyond what the receiving side's
 * peer has acknowledged. lbd raises the allowance as acks arrive (note LOW, at most
 * once per half window); when a receiver stops reading, the allowance runs out and
 * the direction falls back to lbd (note PASSING): back-pressure as in user space. */
#define KRELAY_WINDOW (1024 * 1024)

/* LOW: half the allowance is used. PASSING: the allowance ran out; the program passes
 * this socket's data to itself from now on. RETURNED: the program took the direction
 * back (krelay_return) and redirects again. MISSED: it could not (a segment was passed
 * after lbd's look) and passed this one too: lbd reads the direction on. One of the last
 * two follows each krelay_return, with the next segment. */
enum krelay_note_kind {
    KRELAY_NOTE_LOW = 1,
    KRELAY_NOTE_PASSING = 2,
    KRELAY_NOTE_RETURNED = 3,
    KRELAY_NOTE_MISSED = 4
};

/* Per socket, written by the program (lbd reads it). */
struct krelay_state {
    uint64_t tag;        /* the caller's tag for this socket */
    uint64_t redirected; /* bytes redirected to the peer since the join */
    uint64_t noted;      /* the allowance a LOW note was sent for */
    uint32_t passing;    /* 1: the program passes this socket's data to itself */
    uint32_t pad;
    uint64_t passed; /* bytes passed to the socket itself (for lbd to read) since the join */
};

/* Per socket, written by lbd (the program clears ret when it acts on it). */
struct krelay_allowance {
    uint64_t limit; /* redirect up to this many bytes since the join */
    uint64_t ret;   /* nonzero: take the direction back while passed + 1 == ret */
};

struct krelay {
    int prog_fd;   /* the sk_skb verdict program */
    int dest_fd;   /* sockhash: socket cookie -> the socket its data goes to */
    int attach_fd; /* sockhash: socket cookie -> itself; the program is attached here */
    int state_fd;  /* hash: socket cookie -> struct krelay_state */
    int allow_fd;  /* hash: socket cookie -> allowance (uint64_t), written by lbd */
    int ring_fd;   /* ringbuf: notes from the program */
    int epoll_fd;  /* end-of-session watch (EPOLLRDHUP, one-shot per socket) + ring */
    void *ring_cons, *ring_data; /* the ring's mmap'ed consumer page and data */
    size_t ring_size;
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
 * caller must have nothing of its own left to write on either socket. tag_a/tag_b
 * (never 0, bit 1 clear) come back from krelay_next_event and krelay_next_note.
 * cookies receives the sockets' cookies, for krelay_forget. Returns 0, or -errno with
 * nothing changed (the caller goes on relaying itself). */
int krelay_join(struct krelay *k, int a, int b, uint64_t tag_a, uint64_t tag_b,
                uint64_t cookies[2]);
/* Drop the per-socket entries of a pair whose sockets are closing. */
void krelay_forget(struct krelay *k, const uint64_t cookies[2]);

/* One pending event: 1 with *tag and *hangup (the peer closed or reset, rather than
 * an error alone) set; 2 when the ring has notes (read them with krelay_next_note);
 * 0 when none is left. */
int krelay_next_event(struct krelay *k, uint64_t *tag, bool *hangup);
/* One note from the program: 1 with *tag and *kind set, 0 when none is left. */
int krelay_next_note(struct krelay *k, uint64_t *tag, enum krelay_note_kind *kind);
/* 0 when this process may still use the maps: kernels before 6.5 refuse every bpf()
 * call to an unprivileged process when kernel.unprivileged_bpf_disabled is set (Debian's
 * default), so after lbd becomes `user` the relay may be unusable. */
int krelay_probe(struct krelay *k);
/* The program's counters for a socket. */
int krelay_state_get(struct krelay *k, uint64_t cookie, struct krelay_state *st);
/* Let the program redirect up to allowance bytes (since the join) from a socket. */
int krelay_allow(struct krelay *k, uint64_t cookie, uint64_t allowance);
/* Ask the program to redirect a passing socket's data again, up to allowance bytes,
 * provided that when the next segment arrives it has passed exactly `passed` bytes to
 * the socket since the join: all of them read by the caller, who has nothing left to
 * write. Anything passed in between voids the request, so no byte can overtake
 * another. The next segment brings a RETURNED note (it happened) or a MISSED one (it
 * did not: read on); the caller reads nothing from the socket until then, as a read
 * racing the program's switch could take a byte the kernel is also sending. */
int krelay_return(struct krelay *k, uint64_t cookie, uint64_t allowance, uint64_t passed);

/* A TCP socket's byte totals since it opened: received from its peer (a FIN does not
 * count), written by this side (sent or queued), and milliseconds since data last
 * arrived or left. active_open: this side connected (its SYN is not a byte). */
struct krelay_totals {
    uint64_t received, written, acked;
    uint32_t idle_ms;
    bool fin_received;
    bool reset; /* closed by a reset: received may count a FIN (one byte too many) */
};
int krelay_socket_totals(int fd, bool active_open, struct krelay_totals *t);

#endif
