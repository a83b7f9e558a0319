/* session_int.h -- what the three files of a session share, private to them:
 * session.c (its life, its state, what it understands of the relayed stream, the end),
 * session_start.c (the first packet to the relay) and the relays (relay.h:
 * relay_copy.c, relay_splice.c).
 * lbd.h has the session API the rest of lbd uses. */
#ifndef LBD_SESSION_INT_H
#define LBD_SESSION_INT_H

#include "session.h"
#include "worker.h"

#include "parse.h"
#include "relay.h"

enum session_state {
    SS_FIRST,        /* reading the client's first packet (or the next one after an 'N') */
    SS_CONNECTING,   /* connecting to a node */
    SS_NEGOTIATE,    /* SSL/GSSENC request forwarded; waiting for the node's one byte */
    SS_STARTUP_WAIT, /* StartupMessage forwarded; judging the node's first answer */
    SS_RELAY,        /* relaying both ways */
    SS_REFUSING,     /* writing an ErrorResponse, then closing */
    SS_CLOSING,      /* handles closing; freed by the last close callback */
};

/* Bytes read in one direction with nothing read the other way meanwhile, after which
 * that direction is spliced (bulk.h): a COPY or a big result, not a conversation.
 * Starting and ending a splice costs about 15 system calls. */
#define BULK_AFTER (256 * 1024)

/* A session of a draining node that has sent no request since its startup is spared this
 * long at its idle moment (session_drain_if_idle): its client has just connected. */
#define DRAIN_FRESH_GRACE_MS 1000

/* A refusal: the ErrorResponse, then a lingering close (see on_refusal_written). */
#define REFUSAL_MSG_MAX 512
#define REFUSAL_DISCARD_MAX (64 * 1024)
struct refusal {
    uv_write_t write;
    uv_shutdown_t shutdown;
    uint32_t discarded;
    uint8_t msg[REFUSAL_MSG_MAX];
};
enum server_state { SRV_NONE, SRV_OPEN, SRV_CLOSING };

struct session {
    uv_tcp_t client; /* data = this session */
    uv_tcp_t server;
    uv_timer_t timer; /* startup, connect, negotiation or idle deadline */
    uv_connect_t connect_req;
    uv_write_t first_wreq;
    struct lbd *lbd;
    struct lbd_worker *w;        /* the loop it lives on, with its buffers and counters */
    struct session *prev, *next; /* on w->sessions */
    struct pool_node *node;      /* holds a reference while set */
    enum session_state state;
    enum server_state srv;
    uint8_t handles_open;
    uint8_t attempts;
    uint8_t kind; /* enum pgwire_first_kind of the (last) first packet */
    bool node_active, from_peer, tls, opaque, counted_relayed;
    bool ready_seen;           /* the node's first ReadyForQuery went by: the startup is over */
    bool src_counted;          /* counted in guard's startup_per_source until the relay */
    bool asked_ssl, asked_gss; /* encryption requests lbd saw (one of each, as PostgreSQL) */
    bool quiet;                /* no session_end line (a peer-listener connection refused) */
    bool kill_at_idle;         /* an operator asked: 57P01 at its next idle moment */
    bool late_timer;           /* this state's deadline found the node's answer waiting */
    uint64_t drain_grace_due;  /* loop time a drained session that asked nothing yet goes */
    uint64_t id;               /* the control socket's name for it (1, 2, ... per start) */
    uint8_t src[16];           /* the client's address as guard keys it */
    uint64_t deadline_ms;      /* loop time by which the StartupMessage must be in */
    char tx_status;
    bool cframe_lost; /* the client's stream is no longer framed (spliced) */
    uint64_t tried;   /* node indexes already tried */
    uint8_t *first;   /* first-packet bytes until forwarded */
    uint32_t first_len, first_cap;
    struct refusal *refusal; /* ErrorResponse being written, then the lingering close */
    uint8_t *first_sending;  /* first bytes the kernel did not take at once */
    uint8_t *reply;          /* the node's first answer to a StartupMessage, being judged */
    uint32_t reply_len;
    uint8_t *reply_sending;
    uv_write_t reply_wreq;
    struct pgwire_stream sstream;
    struct keymap_entry key;
    uint64_t t_accept_ns, t_connect_ns, start_wall_ms;
    /* Loop time of the last data from or to each side: [C2S] the client, [S2C] the node
     * (a client receiving a long result, or only notifications, is not idle). */
    uint64_t last_active_ms[2];
    struct relay_dir relay[2]; /* per direction, once relaying (relay.h) */
    /* A read that came while its socket had nothing to say (see park): its buffer and
     * nread, [0] the client's, [1] the node's; nread 0 when none. */
    char *parked[2];
    ssize_t parked_n[2];
    uint64_t bytes[2];
    const char *end_reason;
    char detail[96];
    /* A refusal waiting for the StartupMessage: clients asked for encryption first, and
     * libpq shows an error only when it arrives after the negotiation ('N'). */
    const char *pending_sqlstate, *pending_reason;
    char pending_msg[96];
    /* Reuse of node connections (reuse.c; pool.reuse): */
    struct {
        bool ok;         /* plaintext protocol 3.0 startup, reuse on: may take or leave one */
        bool reusable;   /* trusted startup, nothing since that forbids parking it */
        bool reused;     /* the node connection was a parked one */
        bool parked_out; /* the node connection was parked when the client left */
        bool own_key;    /* the client saw a secret key of lbd's; node_key is the node's */
        uint32_t node_key;
        uint8_t *startup, *params; /* while reusable: the StartupMessage, the ParameterStatus */
        uint32_t startup_len, params_len;
    } reuse;
    uint64_t readies;            /* ReadyForQuery messages after the startup's */
    struct pgwire_front cstream; /* the client's messages, framed while reusable */
    char user[64], database[64], app[64];
    char client_addr[SOCKADDR_STRLEN];
    uint32_t
        local_ip4; /* the address the client connected to (a VIP), network order; 0: not IPv4 */
    uint8_t local_ip6[16]; /* the same for IPv6; all zero: not IPv6 */
};

/* session.c */
/* The only writer of s->state (one door, as vrrp_fsm.c is vrrpd's): logs old -> new at
 * debug, arms the new state's deadline (FIRST: the startup deadline from accept;
 * CONNECTING: connect; NEGOTIATE: connect + startup; STARTUP_WAIT: startup; RELAY: the
 * idle timeouts; REFUSING: 1 s; CLOSING: none) and reads the sides the state reads
 * (FIRST: the client; NEGOTIATE, STARTUP_WAIT: the node; RELAY: both, through their
 * relays). A read parked meanwhile is handed on at once, so the session may have moved
 * on again when this returns. */
void session_set_state(struct session *s, enum session_state st);
void session_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void session_buf_release(struct session *s, const uv_buf_t *buf);
void session_free(struct session *s);
void session_end(struct session *s, const char *reason);
/* A session of a draining node at an idle moment: closed with FATAL 57P01 (true). */
bool session_drain_if_idle(struct session *s);
void session_arm_idle(struct session *s);
/* The startup deadline again, as it stands since accept (not restarted). */
void session_arm_startup(struct session *s);
/* The session leaves its startup (relays, or ends): its source's count goes down. */
void session_startup_over(struct session *s);
void session_on_timer(uv_timer_t *t);
/* The startup is over: both directions relay (relay_copy first; relay.h). */
void session_relay_begin(struct session *s);
void session_on_backend_event(void *ctx, const struct pgwire_event *ev);
void session_node_unuse(struct session *s);
/* The same with the shared lock held. */
void session_node_unuse_locked(struct session *s);
void session_refuse(struct session *s, const char *sqlstate, const char *msg, const char *reason);
/* Send answer (n bytes; 0: none, as PostgreSQL closes on some bad packets), then the
 * lingering close; why goes to the session's log line. */
void session_refuse_raw(struct session *s, const uint8_t *answer, size_t n, const char *why,
                        const char *reason);
void session_refuse_after_negotiation(struct session *s, const char *sqlstate, const char *msg,
                                      const char *reason);
/* Read a side (0 the client, 1 the node) for the current state: first a read that was
 * parked, then the socket. */
void session_read_client(struct session *s);
void session_read_server(struct session *s);
/* The socket's descriptor, or -1. */
int session_fd(uv_tcp_t *t);

/* session_start.c */
void session_first_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
void session_negotiate_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
void session_startup_reply_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
void session_connect_failed(struct session *s, int status);
void session_connect_node(struct session *s);

#endif
