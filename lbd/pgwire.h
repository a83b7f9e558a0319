/* pgwire.h -- the PostgreSQL wire protocol, as much as a proxy needs.
 *
 * Pure code: no sockets, no clock, no logging. Parsers say "incomplete, wait for more"
 * apart from "bad, reject". The relay decodes only message headers (type, length) and
 * the bodies of BackendKeyData and ReadyForQuery; everything else passes untouched. */
#ifndef LBD_PGWIRE_H
#define LBD_PGWIRE_H

#include <stddef.h>
#include <stdint.h>

#define PGWIRE_MAX_STARTUP 10000 /* PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define PGWIRE_CODE_CANCEL 80877102u
#define PGWIRE_CODE_SSL 80877103u
#define PGWIRE_CODE_GSSENC 80877104u
/* lbd's own: a CancelRequest the peer lbd forwarded (1234.5777, a code PostgreSQL does not
 * use). Only the peer listener takes it, and never forwards it again; a client listener
 * refuses it, so a peer.address pointed at a client port cannot make a loop. */
#define PGWIRE_CODE_CANCEL_FWD 80877201u
/* lbd's own: a node command from the peer lbd's control socket (1234.5778), signed with
 * the pair's key (lbd.peer.key_file; control.c). Only the peer listener takes it; a
 * client listener answers it as PostgreSQL answers an unknown protocol. */
#define PGWIRE_CODE_PEER_CONTROL 80877202u
/* Protocol 3.2 (PostgreSQL 18) secret keys are 4 to 256 bytes; 3.0's are 4. */
#define PGWIRE_MAX_CANCEL_KEY 256
#define PGWIRE_PROTO_MAJOR(v) ((v) >> 16)

/* One reader frames every PostgreSQL message lbd looks at (a type byte, then a length word
 * that counts itself: 55.7), with one limit, as PgBouncer's get_header() does: each
 * walker below is a loop over it. */
#define PGWIRE_MAX_MESSAGE 0x3fffffffu /* PostgreSQL's MaxAllocSize: no server sends more */
enum pgwire_frame {
    PGWIRE_FRAME_SHORT,   /* fewer than 5 bytes: not yet a header */
    PGWIRE_FRAME_PARTIAL, /* a good header; the body is not all there */
    PGWIRE_FRAME_WHOLE,   /* the whole message is there */
    PGWIRE_FRAME_BAD,     /* a length word below 4 or above PGWIRE_MAX_MESSAGE */
};
struct pgwire_msg {
    uint8_t type;
    uint32_t len;        /* the length word: 4 + the body's bytes */
    const uint8_t *body; /* buf + 5 */
    size_t size;         /* the whole message's bytes: 1 + len */
};
/* Frame the message at buf (avail bytes there). m is filled from PARTIAL on. */
enum pgwire_frame pgwire_frame(const uint8_t *buf, size_t avail, struct pgwire_msg *m);

enum pgwire_first_kind {
    PGWIRE_FIRST_INCOMPLETE,   /* need more bytes */
    PGWIRE_FIRST_SSL,          /* SSLRequest */
    PGWIRE_FIRST_GSSENC,       /* GSSENCRequest */
    PGWIRE_FIRST_CANCEL,       /* CancelRequest */
    PGWIRE_FIRST_STARTUP,      /* StartupMessage, protocol 3.x */
    PGWIRE_FIRST_BAD,          /* not a valid first packet: reason says why */
    PGWIRE_FIRST_PEER_CONTROL, /* PGWIRE_CODE_PEER_CONTROL: len bytes, the body from 8 */
};

struct pgwire_first {
    enum pgwire_first_kind kind;
    uint32_t len;                    /* bytes of the packet, length word included */
    uint32_t proto;                  /* StartupMessage protocol version */
    int replication;                 /* the StartupMessage has a replication parameter */
    uint32_t cancel_pid, cancel_key; /* cancel_key: the key's first 4 bytes */
    uint16_t cancel_key_len;         /* the whole key, as sent (4 before protocol 3.2) */
    uint8_t cancel_key_bytes[PGWIRE_MAX_CANCEL_KEY];
    int forwarded; /* CancelRequest with PGWIRE_CODE_CANCEL_FWD */
    char user[64], database[64], application_name[64];
    /* PGWIRE_FIRST_BAD: what PostgreSQL 15 answers (ProcessStartupPacket), so a client
     * sees the same through lbd: sqlstate NULL when it closes without a byte (a bad
     * length, a short cancel), else a FATAL ErrorResponse with message, in protocol 2's
     * format when v2 (a 2.0 client cannot read 3.0's). reason says it for the log. */
    const char *reason;
    const char *sqlstate;
    char message[96];
    int v2;
};

const char *pgwire_first_kind_name(enum pgwire_first_kind k);

/* Classify the first packet a client sends, from the bytes received so far. */
enum pgwire_first_kind pgwire_first_parse(const uint8_t *buf, size_t len, struct pgwire_first *out);

/* Builders. Each returns the bytes written, or 0 when size is too small. */
size_t pgwire_error_build(uint8_t *buf, size_t size, const char *severity, const char *sqlstate,
                          const char *message);
/* The same with a detail field (NULL: none). */
size_t pgwire_error_build_detail(uint8_t *buf, size_t size, const char *severity,
                                 const char *sqlstate, const char *message, const char *detail);
/* PostgreSQL's answer to a bad first packet f (PGWIRE_FIRST_BAD): its bytes, 0 when it
 * sends none. */
size_t pgwire_first_answer_build(uint8_t *buf, size_t size, const struct pgwire_first *f);
/* params: alternating key, value, ending with NULL. */
size_t pgwire_startup_build(uint8_t *buf, size_t size, const char *const *params);
/* forwarded: with lbd's PGWIRE_CODE_CANCEL_FWD instead of PostgreSQL's code. */
size_t pgwire_cancel_build(uint8_t *buf, size_t size, uint32_t pid, uint32_t key, int forwarded);
/* The same with a key of key_len bytes (4 to PGWIRE_MAX_CANCEL_KEY: protocol 3.2's). */
size_t pgwire_cancel_build_key(uint8_t *buf, size_t size, uint32_t pid, const uint8_t *key,
                               size_t key_len, int forwarded);
size_t pgwire_terminate_build(uint8_t *buf, size_t size);

/* Incremental framing of a backend (server -> client) message stream. PARAM: a
 * ParameterStatus went by (its content is not kept). */
enum pgwire_event_kind { PGWIRE_EV_BACKEND_KEY, PGWIRE_EV_READY, PGWIRE_EV_PARAM };
struct pgwire_event {
    enum pgwire_event_kind kind;
    uint32_t pid, key; /* BACKEND_KEY */
    char tx_status;    /* READY: 'I' idle, 'T' in transaction, 'E' failed transaction */
};
typedef void (*pgwire_event_fn)(void *ctx, const struct pgwire_event *ev);

struct pgwire_stream {
    uint8_t hdr[5];
    uint8_t hdr_len;
    uint8_t body[8]; /* captured start of the bodies we decode */
    uint8_t body_len;
    uint32_t remaining; /* body bytes still to pass over */
    uint64_t messages;
};

/* Feed bytes; calls fn for decoded events. Returns 0, or -1 on a bad message length. */
int pgwire_stream_feed(struct pgwire_stream *s, const uint8_t *buf, size_t len, pgwire_event_fn fn,
                       void *ctx);

/* A node's whole answer to a StartupMessage (protocol 3.0) when it let the user in
 * without asking anything (trust): AuthenticationOk, then ParameterStatus,
 * NoticeResponse and one BackendKeyData, up to ReadyForQuery 'I' (55.2.2). Only such a
 * connection can serve a later client with the same StartupMessage: the node would
 * have let that one in the same way. */
enum pgwire_reply_kind {
    PGWIRE_REPLY_INCOMPLETE, /* wait for more */
    PGWIRE_REPLY_TRUSTED,    /* the whole answer, as described */
    PGWIRE_REPLY_OTHER,      /* anything else (a challenge, an error, ...) */
};
#define PGWIRE_REPLY_MAX 16384 /* a trusted answer longer than this counts as other */
struct pgwire_reply {
    size_t len;     /* bytes up to and including ReadyForQuery */
    size_t key_off; /* where the BackendKeyData message starts */
    uint32_t pid, key;
};
enum pgwire_reply_kind pgwire_reply_parse(const uint8_t *buf, size_t len, struct pgwire_reply *out);
/* The ParameterStatus messages of a trusted answer r (buf as parsed), as sent, copied to
 * out (NULL: only counted). Returns their length. */
size_t pgwire_reply_params(const uint8_t *buf, const struct pgwire_reply *r, uint8_t *out);
/* Replace the secret key in a trusted answer's BackendKeyData. */
void pgwire_reply_set_key(uint8_t *buf, const struct pgwire_reply *r, uint32_t key);
/* A trusted answer: AuthenticationOk, params (ParameterStatus messages as sent),
 * BackendKeyData (pid, key), ReadyForQuery 'I'. Returns its length, or 0 when size is too
 * small; PGWIRE_TRUSTED_FIXED + params_len is always enough. */
#define PGWIRE_TRUSTED_FIXED (9 + 13 + 6)
size_t pgwire_trusted_build(uint8_t *buf, size_t size, const uint8_t *params, size_t params_len,
                            uint32_t pid, uint32_t key);
/* A node's answer to DISCARD ALL so far: 1 when whole and as expected (CommandComplete,
 * notices, ReadyForQuery 'I' as the last bytes), 0 to wait, -1 for anything else (an
 * error, a ParameterStatus, a notification). */
int pgwire_reset_answer(const uint8_t *buf, size_t len);

/* Incremental framing of a frontend (client -> server) stream after the startup: enough
 * to tell a client that leaves at a clean point (every query answered, no
 * extended-protocol batch left open) from one that does not. */
struct pgwire_front {
    uint8_t hdr[5];
    uint8_t hdr_len;
    uint32_t remaining;
    uint64_t syncs; /* Query, FunctionCall and Sync: each is answered by one ReadyForQuery */
    int open_batch; /* Parse/Bind/Describe/Execute/Close/Flush since the last Sync */
    int terminated; /* the last whole message was Terminate, and nothing follows */
};
/* Returns 0, or -1 on a bad message length. */
int pgwire_front_feed(struct pgwire_front *f, const uint8_t *buf, size_t len);

/* The answer of a node to a health-check startup. */
enum pgwire_check_kind {
    PGWIRE_CHECK_INCOMPLETE, /* wait for more */
    PGWIRE_CHECK_ALIVE,      /* asked for authentication: up; close without more */
    PGWIRE_CHECK_READY,      /* AuthenticationOk ... ReadyForQuery: up; send Terminate */
    PGWIRE_CHECK_ERROR,      /* ErrorResponse: down, sqlstate and message say why */
    PGWIRE_CHECK_BAD,        /* not PostgreSQL */
};
struct pgwire_check {
    enum pgwire_check_kind kind;
    char sqlstate[6];
    char message[128];
};
enum pgwire_check_kind pgwire_check_parse(const uint8_t *buf, size_t len, struct pgwire_check *out);

#endif
