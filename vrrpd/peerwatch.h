/* peerwatch.h -- the peer watch link: see at once that the master's vrrpd has ended.
 *
 * VRRP learns of a master's death only by its silence: Master_Down_Interval, three
 * advertisement intervals and the skew (RFC 5798 6.1). But most deaths are of the
 * process (a crash, SIGKILL, the OOM killer, `docker kill`), and then the master's
 * kernel closes its TCP connections at once. So each vrrpd listens on a TCP port of its
 * primary address and says hello to whoever connects; a backup holds a connection to
 * the master it follows. The connection closing after the hello means that master's
 * vrrpd has ended: the backup then acts as on a priority-0 advert (take over after
 * Skew_Time). When the host itself dies or the network splits, nothing closes, and
 * VRRP's own timer decides, as before. Nothing on the wire of VRRP changes; a peer that
 * does not speak this (keepalived) just refuses the connection and is timed as usual.
 *
 * The same link tells a stalled master from a dead one (vrrp_fsm_peer_alive): a backup
 * whose master has gone quiet sends a probe byte on it, which the master's vrrpd reads
 * and ignores, and which the master's kernel acknowledges even while that vrrpd is not
 * running. An acknowledgement says the host and the path still work.
 *
 * The shell (vrrpd.c) says which masters to watch (peerwatch_want) after every change
 * and gets peerwatch_gone_cb when one's vrrpd has ended. */
#ifndef VRRPD_PEERWATCH_H
#define VRRPD_PEERWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PEERWATCH_MAX_LINKS 8  /* masters watched at once */
#define PEERWATCH_MAX_CONNS 16 /* backups watching us at once */
#define PEERWATCH_PER_SOURCE 2 /* connections from one address (a peer needs one) */
#define PEERWATCH_SPARE 4      /* slots for new connections while evicted ones close */
#define PEERWATCH_HEARD 8      /* addresses whose VRRP adverts we heard, remembered */
#define PEERWATCH_HEARD_MS (10 * 60 * 1000)
#define PEERWATCH_HELLO "pgvip-vrrpd watch 1\n"
/* After the hello, each side may name itself: the backup writes "name INSTANCE\n" and
 * the master answers with its own. A vrrpd that does not (an older one) reads it as the
 * bytes it ignores, and is never sent a name it would not expect. */

/* ip (host order) is the master whose vrrpd ended; why says how, in words. */
typedef void (*peerwatch_gone_cb)(void *arg, uint32_t ip, const char *why);

struct peerwatch;

struct peerwatch_link { /* we watch a master */
    struct peerwatch *pw;
    uv_tcp_t tcp;
    uv_connect_t req;
    uint32_t ip;          /* host order; 0: slot free */
    bool open;            /* tcp initialised and not yet closed */
    bool wanted, armed;   /* armed: its hello arrived */
    uint64_t retry_at_ms; /* when to connect again; 0: now */
    uint64_t backoff_ms;
    char hello[32];
    size_t hello_len;
    char sink[64]; /* after the hello: the master's name line, then nothing looked at */
    char line[48]; /* its first line, "name INSTANCE\n" */
    size_t line_len;
    bool line_done;
    char name[32]; /* the master's instance name, "" until it says */
};

struct peerwatch_conn { /* a backup watches us */
    struct peerwatch *pw;
    uv_tcp_t tcp;
    bool open, closing;
    uint32_t ip;       /* host order */
    uint64_t since_ms; /* accepted at (loop time) */
    uv_write_t wreq;
    char sink[64];
    char line[48]; /* the backup's first line, "name INSTANCE\n"; then only probes */
    size_t line_len;
    bool line_done;
    char name[32]; /* the backup's instance name, "" until it says */
    char reply[48];
};

struct peerwatch {
    uv_loop_t *loop;
    uint32_t self; /* host order */
    uint16_t port;
    const uint32_t *peers; /* when set, only these may connect */
    size_t n_peers;
    uv_tcp_t listener;
    bool listening;
    uv_timer_t retry;
    bool stopped;
    struct peerwatch_link links[PEERWATCH_MAX_LINKS];
    struct peerwatch_conn conns[PEERWATCH_MAX_CONNS + PEERWATCH_SPARE];
    uint32_t heard[PEERWATCH_HEARD]; /* VRRP speakers heard lately (host order) */
    uint64_t heard_ms[PEERWATCH_HEARD];
    peerwatch_gone_cb gone;
    void *arg;
    uint64_t accepted, refused, evicted, gone_total, probes;
    char name[32]; /* this instance's name, told to the peers over the link */
    uint64_t last_refused_log_ms;
};

/* Listen on self:port. Returns 0 or a negative libuv error (the port is taken, say);
 * even then the watching side works.
 *
 * Who may hold a connection here: with peers (unicast_peers), only those; otherwise
 * anyone who reaches the port, at most PEERWATCH_PER_SOURCE from one address. When all
 * PEERWATCH_MAX_CONNS are taken, a new connection evicts the oldest one from an address
 * that is not a VRRP speaker heard lately (peerwatch_heard), so strangers holding the
 * slots cannot keep the peer out; counted in refused and evicted, logged at most once a
 * second. */
int peerwatch_start(struct peerwatch *pw, uv_loop_t *loop, uint32_t self, uint16_t port,
                    const uint32_t *peers, size_t n_peers, peerwatch_gone_cb gone, void *arg);
/* The masters to watch now (host order, at most PEERWATCH_MAX_LINKS): connect to new
 * ones, close links to the others. Cheap when nothing changed. */
void peerwatch_want(struct peerwatch *pw, const uint32_t *ips, size_t n);
/* Links with their hello received (the masters we would see end at once). */
size_t peerwatch_armed(const struct peerwatch *pw);
bool peerwatch_is_armed(const struct peerwatch *pw, uint32_t ip);
size_t peerwatch_watchers(const struct peerwatch *pw);
/* Send one probe byte to the master at ip. 0, or a negative errno (no armed link: then no
 * answer will come, and the backup acts as plain VRRP). */
int peerwatch_probe(struct peerwatch *pw, uint32_t ip);
/* When (on now's clock, ms) the master at ip last acknowledged anything on its link,
 * from the kernel's TCP_INFO (to the kernel's tick, a few ms); 0 when unknown. */
uint64_t peerwatch_acked_at(const struct peerwatch *pw, uint32_t ip, uint64_t now);
/* A valid VRRP advert came from ip (host order) at now: a peer, never evicted for a
 * stranger. */
void peerwatch_heard(struct peerwatch *pw, uint32_t ip, uint64_t now);
void peerwatch_stop(struct peerwatch *pw);
/* The instance name the peer at ip told over the link (as master or as backup); NULL
 * when none. */
const char *peerwatch_name_of(const struct peerwatch *pw, uint32_t ip);

#endif
