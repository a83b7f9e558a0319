/* guard.h -- the front door's bounds, as pure decisions: token buckets, a per-source
 * table (one entry per client address, IPv6 by /64), and the recent-cancel window that
 * drops a repeated (pid, key). No sockets, no clock (time is an argument), no logging.
 *
 * The shell (cancel.c, session.c) asks guard_cancel_admit() before a CancelRequest may
 * open a connection anywhere, and guard_source_*() around a client's startup; see
 * docs/abuse-model.md for what each bound protects. */
#ifndef LBD_GUARD_H
#define LBD_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guard_bucket {
    double tokens;
    uint64_t t_ms; /* last refill */
    bool primed;   /* starts full */
};

/* Take one token from a bucket refilled at rate per second, holding at most burst.
 * rate 0: unlimited (always true). */
bool guard_bucket_take(struct guard_bucket *b, double rate, double burst, uint64_t now_ms);

#define GUARD_SOURCES 4096 /* power of two */
#define GUARD_PROBE 8      /* slots looked at for one address */
#define GUARD_SEEN 1024    /* recent cancels remembered (power of two) */

struct guard_source {
    uint8_t ip[16];   /* IPv4 mapped into ::ffff:0:0/96; IPv6 cut to its /64 */
    uint32_t startup; /* connections from here still before their first answer */
    struct guard_bucket cancels;
    uint64_t used_ms; /* last use, for eviction */
    bool used;
};

struct guard_seen {
    uint32_t pid, key;
    uint64_t t_ms;
};

enum guard_verdict {
    GUARD_OK,
    GUARD_DUPLICATE,   /* the same (pid, key) within the window */
    GUARD_SOURCE_RATE, /* this source's cancels per second */
    GUARD_RATE,        /* all cancels per second */
    GUARD_INFLIGHT,    /* forwards open at once */
    GUARD_SOURCE_BUSY, /* this source's connections before their first answer */
};
extern const char *const guard_verdict_names[]; /* counter and log names */
#define GUARD_VERDICTS 6

struct guard_limits {
    uint32_t cancel_inflight;    /* forwards open at once; 0 = no limit */
    double cancel_rate;          /* per second, all sources; 0 = no limit */
    double cancel_source_rate;   /* per second, one source; 0 = no limit */
    uint64_t cancel_window_ms;   /* a repeated (pid, key) within this is dropped; 0 = off */
    uint32_t startup_per_source; /* connections before their first answer; 0 = no limit */
};

struct guard {
    struct guard_limits lim;
    struct guard_bucket cancels;  /* all sources */
    uint32_t inflight;            /* the shell's count of open forwards */
    struct guard_source *sources; /* GUARD_SOURCES entries */
    struct guard_seen *seen;      /* GUARD_SEEN entries */
    uint64_t verdicts[GUARD_VERDICTS];
    uint64_t evictions; /* sources forgotten to make room (many addresses at once) */
};

int guard_init(struct guard *g, const struct guard_limits *lim);
void guard_free(struct guard *g);

/* The 16-byte key of a socket address (AF_INET or AF_INET6): see guard_source.ip. */
void guard_source_key(const void *sockaddr, uint8_t out[16]);

/* May a CancelRequest for (pid, key) from src (a guard_source_key; NULL: the peer lbd,
 * which has applied the per-source bound already) open `forwards` connections now?
 * GUARD_OK counts them in inflight (the shell calls guard_cancel_done once per forward
 * when it ends); any other verdict is counted and changes nothing else. */
enum guard_verdict guard_cancel_admit(struct guard *g, const uint8_t *src, uint32_t pid,
                                      uint32_t key, uint32_t forwards, uint64_t now_ms);
void guard_cancel_done(struct guard *g);

/* A client connection from src begins its startup: GUARD_OK, or GUARD_SOURCE_BUSY.
 * *counted says whether it was counted (the table may be full of busy sources, when
 * only maxconn bounds it): only then does guard_source_startup_end follow. */
enum guard_verdict guard_source_startup_begin(struct guard *g, const uint8_t *src, uint64_t now_ms,
                                              bool *counted);
void guard_source_startup_end(struct guard *g, const uint8_t *src);

#endif
