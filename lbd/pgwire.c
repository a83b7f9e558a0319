/* pgwire.c -- PostgreSQL wire protocol parsing and building (see pgwire.h).
 * References: PostgreSQL docs, "Frontend/Backend Protocol" 55.2 (message flow) and
 * 55.7 (message formats). */
#include "pgwire.h"

#include "bytes.h"

#include <stdio.h>
#include <string.h>

#define get_u32 be32_get
#define put_u32 be32_put

enum pgwire_frame pgwire_frame(const uint8_t *buf, size_t avail, struct pgwire_msg *m)
{
    if (avail < 5)
        return PGWIRE_FRAME_SHORT;
    m->type = buf[0];
    m->len = get_u32(buf + 1);
    if (m->len < 4 || m->len > PGWIRE_MAX_MESSAGE)
        return PGWIRE_FRAME_BAD;
    m->body = buf + 5;
    m->size = 1 + (size_t)m->len;
    return avail >= m->size ? PGWIRE_FRAME_WHOLE : PGWIRE_FRAME_PARTIAL;
}

const char *pgwire_first_kind_name(enum pgwire_first_kind k)
{
    static const char *const names[] = {"incomplete", "ssl", "gssenc",      "cancel",
                                        "startup",    "bad", "peer_control"};
    return k <= PGWIRE_FIRST_PEER_CONTROL ? names[k] : "?";
}

/* A first packet PostgreSQL closes on without a byte (it logs reason). */
static enum pgwire_first_kind bad(struct pgwire_first *out, const char *reason)
{
    out->kind = PGWIRE_FIRST_BAD;
    out->reason = reason;
    out->sqlstate = NULL;
    out->message[0] = '\0';
    return out->kind;
}

/* A first packet PostgreSQL answers with a FATAL ErrorResponse. */
static enum pgwire_first_kind fatal(struct pgwire_first *out, const char *sqlstate,
                                    const char *message)
{
    out->kind = PGWIRE_FIRST_BAD;
    out->sqlstate = sqlstate;
    snprintf(out->message, sizeof(out->message), "%s", message);
    out->reason = out->message;
    return out->kind;
}

static enum pgwire_first_kind unsupported(struct pgwire_first *out, uint32_t code)
{
    char m[96];
    snprintf(m, sizeof(m), "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
             code >> 16, code & 0xffff);
    out->v2 = PGWIRE_PROTO_MAJOR(code) < 3;
    return fatal(out, "0A000", m);
}

static void copy_param(char *dst, size_t size, const char *v)
{
    snprintf(dst, size, "%s", v);
}

/* StartupMessage body: (key \0 value \0)* \0 -- 55.7 "StartupMessage", walked as
 * PostgreSQL walks it (ProcessStartupPacket): pairs up to an empty key, which must be
 * the last byte. */
static enum pgwire_first_kind parse_startup(const uint8_t *buf, uint32_t plen,
                                            struct pgwire_first *out)
{
    const char *p = (const char *)buf + 8, *end = (const char *)buf + plen;
    while (p < end && *p != '\0') {
        const char *key = p;
        const char *kz = memchr(key, '\0', (size_t)(end - key));
        if (kz == NULL || kz + 1 >= end)
            break; /* a key without a value: the layout check below says so */
        const char *val = kz + 1;
        const char *vz = memchr(val, '\0', (size_t)(end - val));
        if (vz == NULL)
            break;
        if (strcmp(key, "user") == 0)
            copy_param(out->user, sizeof(out->user), val);
        else if (strcmp(key, "database") == 0)
            copy_param(out->database, sizeof(out->database), val);
        else if (strcmp(key, "application_name") == 0)
            copy_param(out->application_name, sizeof(out->application_name), val);
        else if (strcmp(key, "replication") == 0)
            out->replication = 1;
        p = vz + 1;
    }
    if (p != end - 1 || *p != '\0')
        return fatal(out, "08P01",
                     "invalid startup packet layout: expected terminator as last byte");
    if (out->user[0] == '\0')
        return fatal(out, "28000", "no PostgreSQL user name specified in startup packet");
    if (out->database[0] == '\0')
        copy_param(out->database, sizeof(out->database), out->user);
    out->kind = PGWIRE_FIRST_STARTUP;
    return out->kind;
}

enum pgwire_first_kind pgwire_first_parse(const uint8_t *buf, size_t len, struct pgwire_first *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 4)
        return out->kind = PGWIRE_FIRST_INCOMPLETE;
    uint32_t plen = get_u32(buf);
    /* (PostgreSQL reads the length, then the whole packet, then looks at it.) */
    if (plen < 8 || plen > PGWIRE_MAX_STARTUP)
        return bad(out, "invalid length of startup packet");
    out->len = plen;
    if (len < plen)
        return out->kind = PGWIRE_FIRST_INCOMPLETE;
    uint32_t code = get_u32(buf + 4);
    if (code == PGWIRE_CODE_SSL || code == PGWIRE_CODE_GSSENC)
        /* Whatever its length: PostgreSQL answers it and reads the next packet. */
        return out->kind = code == PGWIRE_CODE_SSL ? PGWIRE_FIRST_SSL : PGWIRE_FIRST_GSSENC;
    if (code == PGWIRE_CODE_PEER_CONTROL)
        return out->kind = PGWIRE_FIRST_PEER_CONTROL;
    if (code == PGWIRE_CODE_CANCEL || code == PGWIRE_CODE_CANCEL_FWD) {
        out->forwarded = code == PGWIRE_CODE_CANCEL_FWD;
        if (plen < 16) /* PostgreSQL reads a key of zeroes and closes, having done nothing */
            return bad(out, "cancel request too short");
        if (out->forwarded && plen > 12 + PGWIRE_MAX_CANCEL_KEY)
            return unsupported(out, code);
        out->cancel_pid = get_u32(buf + 8);
        out->cancel_key = get_u32(buf + 12);
        /* The whole key (protocol 3.2: up to 256 bytes), to pass on as it came; a longer
         * packet's rest is not a key any server reads. */
        out->cancel_key_len =
            (uint16_t)(plen - 12 < PGWIRE_MAX_CANCEL_KEY ? plen - 12 : PGWIRE_MAX_CANCEL_KEY);
        memcpy(out->cancel_key_bytes, buf + 12, out->cancel_key_len);
        return out->kind = PGWIRE_FIRST_CANCEL;
    }
    if (out->forwarded || PGWIRE_PROTO_MAJOR(code) != 3)
        return unsupported(out, code);
    out->proto = code;
    return parse_startup(buf, plen, out);
}

size_t pgwire_error_build(uint8_t *buf, size_t size, const char *severity, const char *sqlstate,
                          const char *message)
{
    return pgwire_error_build_detail(buf, size, severity, sqlstate, message, NULL);
}

size_t pgwire_error_build_detail(uint8_t *buf, size_t size, const char *severity,
                                 const char *sqlstate, const char *message, const char *detail)
{
    size_t sl = strlen(severity), cl = strlen(sqlstate), ml = strlen(message);
    size_t dl = detail ? 1 + strlen(detail) + 1 : 0;
    /* 'E' len 'S' sev\0 'V' sev\0 'C' code\0 'M' msg\0 ['D' detail\0] \0 */
    size_t total = 1 + 4 + (1 + sl + 1) * 2 + (1 + cl + 1) + (1 + ml + 1) + dl + 1;
    if (total > size)
        return 0;
    uint8_t *p = buf;
    *p++ = 'E';
    put_u32(p, (uint32_t)(total - 1));
    p += 4;
    const char tags[] = {'S', 'V', 'C', 'M', 'D'};
    const char *vals[] = {severity, severity, sqlstate, message, detail};
    for (int i = 0; i < (detail ? 5 : 4); i++) {
        *p++ = (uint8_t)tags[i];
        size_t l = strlen(vals[i]) + 1;
        memcpy(p, vals[i], l);
        p += l;
    }
    *p++ = 0;
    return (size_t)(p - buf);
}

size_t pgwire_first_answer_build(uint8_t *buf, size_t size, const struct pgwire_first *f)
{
    if (f->kind != PGWIRE_FIRST_BAD || f->sqlstate == NULL)
        return 0;
    if (f->v2) { /* protocol 2: 'E', then "FATAL:  message\n" and its NUL */
        int n = snprintf((char *)buf, size, "EFATAL:  %s\n", f->message);
        return n > 0 && (size_t)n + 1 <= size ? (size_t)n + 1 : 0;
    }
    return pgwire_error_build(buf, size, "FATAL", f->sqlstate, f->message);
}

size_t pgwire_startup_build(uint8_t *buf, size_t size, const char *const *params)
{
    size_t total = 8 + 1;
    for (size_t i = 0; params[i] && params[i + 1]; i += 2)
        total += strlen(params[i]) + 1 + strlen(params[i + 1]) + 1;
    if (total > size || total > PGWIRE_MAX_STARTUP)
        return 0;
    put_u32(buf, (uint32_t)total);
    put_u32(buf + 4, 3u << 16);
    uint8_t *p = buf + 8;
    for (size_t i = 0; params[i] && params[i + 1]; i += 2) {
        for (int j = 0; j < 2; j++) {
            size_t l = strlen(params[i + j]) + 1;
            memcpy(p, params[i + j], l);
            p += l;
        }
    }
    *p++ = 0;
    return total;
}

size_t pgwire_cancel_build(uint8_t *buf, size_t size, uint32_t pid, uint32_t key, int forwarded)
{
    uint8_t k[4];
    put_u32(k, key);
    return pgwire_cancel_build_key(buf, size, pid, k, sizeof(k), forwarded);
}

size_t pgwire_cancel_build_key(uint8_t *buf, size_t size, uint32_t pid, const uint8_t *key,
                               size_t key_len, int forwarded)
{
    size_t len = 12 + key_len;
    if (key_len < 4 || key_len > PGWIRE_MAX_CANCEL_KEY || size < len)
        return 0;
    put_u32(buf, (uint32_t)len);
    put_u32(buf + 4, forwarded ? PGWIRE_CODE_CANCEL_FWD : PGWIRE_CODE_CANCEL);
    put_u32(buf + 8, pid);
    memcpy(buf + 12, key, key_len);
    return len;
}

size_t pgwire_terminate_build(uint8_t *buf, size_t size)
{
    if (size < 5)
        return 0;
    buf[0] = 'X';
    put_u32(buf + 1, 4);
    return 5;
}

static void stream_message_done(struct pgwire_stream *s, pgwire_event_fn fn, void *ctx)
{
    struct pgwire_event ev;
    memset(&ev, 0, sizeof(ev));
    s->messages++;
    if (s->hdr[0] == 'K' && s->body_len == 8) {
        ev.kind = PGWIRE_EV_BACKEND_KEY;
        ev.pid = get_u32(s->body);
        ev.key = get_u32(s->body + 4);
        fn(ctx, &ev);
    } else if (s->hdr[0] == 'Z' && s->body_len == 1) {
        ev.kind = PGWIRE_EV_READY;
        ev.tx_status = (char)s->body[0];
        fn(ctx, &ev);
    } else if (s->hdr[0] == 'S') {
        ev.kind = PGWIRE_EV_PARAM;
        fn(ctx, &ev);
    }
    s->hdr_len = 0;
    s->body_len = 0;
}

int pgwire_stream_feed(struct pgwire_stream *s, const uint8_t *buf, size_t len, pgwire_event_fn fn,
                       void *ctx)
{
    size_t i = 0;
    struct pgwire_msg m;
    while (i < len) {
        /* Whole messages of kinds nothing is decoded from, hopped over in place: a COPY
         * or a big result is millions of small DataRow/CopyData messages. */
        while (s->hdr_len == 0) {
            enum pgwire_frame f = pgwire_frame(buf + i, len - i, &m);
            if (f == PGWIRE_FRAME_BAD)
                return -1;
            if (f != PGWIRE_FRAME_WHOLE || m.type == 'K' || m.type == 'Z' || m.type == 'S')
                break;
            i += m.size;
            s->messages++;
        }
        if (i >= len)
            break;
        if (s->hdr_len < 5) {
            size_t take = 5 - s->hdr_len;
            if (take > len - i)
                take = len - i;
            memcpy(s->hdr + s->hdr_len, buf + i, take);
            s->hdr_len = (uint8_t)(s->hdr_len + take);
            i += take;
            if (s->hdr_len < 5)
                return 0;
            if (pgwire_frame(s->hdr, 5, &m) == PGWIRE_FRAME_BAD)
                return -1;
            s->remaining = m.len - 4;
            s->body_len = 0;
            if (s->remaining == 0) {
                stream_message_done(s, fn, ctx);
                continue;
            }
        }
        size_t take = s->remaining < len - i ? s->remaining : len - i;
        char t = (char)s->hdr[0];
        if ((t == 'K' || t == 'Z') && s->body_len < sizeof(s->body)) {
            size_t cap = sizeof(s->body) - s->body_len;
            size_t c = take < cap ? take : cap;
            memcpy(s->body + s->body_len, buf + i, c);
            s->body_len = (uint8_t)(s->body_len + c);
        }
        i += take;
        s->remaining -= (uint32_t)take;
        if (s->remaining == 0)
            stream_message_done(s, fn, ctx);
    }
    return 0;
}

enum pgwire_reply_kind pgwire_reply_parse(const uint8_t *buf, size_t len, struct pgwire_reply *out)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    int keys = 0;
    struct pgwire_msg m;
    enum pgwire_frame f;
    while ((f = pgwire_frame(buf + i, len - i, &m)) != PGWIRE_FRAME_SHORT) {
        if (f == PGWIRE_FRAME_BAD || i + m.size > PGWIRE_REPLY_MAX)
            return PGWIRE_REPLY_OTHER;
        if (i == 0 && (m.type != 'R' || m.len != 8))
            return PGWIRE_REPLY_OTHER; /* not AuthenticationOk first: a challenge, an error */
        if (f == PGWIRE_FRAME_PARTIAL)
            return PGWIRE_REPLY_INCOMPLETE;
        switch (m.type) {
        case 'R':
            if (i != 0 || get_u32(m.body) != 0)
                return PGWIRE_REPLY_OTHER;
            break;
        case 'S': /* ParameterStatus */
        case 'N': /* NoticeResponse */
            break;
        case 'K': /* BackendKeyData: 4-byte key in protocol 3.0 */
            if (m.len != 12 || keys++)
                return PGWIRE_REPLY_OTHER;
            out->key_off = i;
            out->pid = get_u32(m.body);
            out->key = get_u32(m.body + 4);
            break;
        case 'Z':
            if (m.len != 5 || m.body[0] != 'I' || keys != 1)
                return PGWIRE_REPLY_OTHER;
            out->len = i + m.size;
            return PGWIRE_REPLY_TRUSTED;
        default: /* an ErrorResponse, NegotiateProtocolVersion, ... */
            return PGWIRE_REPLY_OTHER;
        }
        i += m.size;
    }
    if (len > 0 && buf[0] != 'R')
        return PGWIRE_REPLY_OTHER;
    return PGWIRE_REPLY_INCOMPLETE;
}

size_t pgwire_reply_params(const uint8_t *buf, const struct pgwire_reply *r, uint8_t *out)
{
    size_t n = 0;
    struct pgwire_msg m;
    /* (well-formed up to r->len: pgwire_reply_parse said so) */
    for (size_t i = 0; pgwire_frame(buf + i, r->len - i, &m) == PGWIRE_FRAME_WHOLE; i += m.size) {
        if (m.type == 'S') {
            if (out)
                memcpy(out + n, buf + i, m.size);
            n += m.size;
        }
    }
    return n;
}

void pgwire_reply_set_key(uint8_t *buf, const struct pgwire_reply *r, uint32_t key)
{
    put_u32(buf + r->key_off + 9, key);
}

size_t pgwire_trusted_build(uint8_t *buf, size_t size, const uint8_t *params, size_t params_len,
                            uint32_t pid, uint32_t key)
{
    size_t n = PGWIRE_TRUSTED_FIXED + params_len;
    if (size < n)
        return 0;
    uint8_t *p = buf;
    *p++ = 'R'; /* AuthenticationOk */
    put_u32(p, 8);
    put_u32(p + 4, 0);
    p += 8;
    memcpy(p, params, params_len);
    p += params_len;
    *p++ = 'K';
    put_u32(p, 12);
    put_u32(p + 4, pid);
    put_u32(p + 8, key);
    p += 12;
    *p++ = 'Z';
    put_u32(p, 5);
    p[4] = 'I';
    return n;
}

int pgwire_reset_answer(const uint8_t *buf, size_t len)
{
    size_t i = 0;
    struct pgwire_msg m;
    enum pgwire_frame f;
    while ((f = pgwire_frame(buf + i, len - i, &m)) == PGWIRE_FRAME_WHOLE) {
        switch (m.type) {
        case 'C': /* CommandComplete */
        case 'N': /* NoticeResponse */
            break;
        case 'Z':
            return m.len == 5 && m.body[0] == 'I' && i + m.size == len ? 1 : -1;
        default:
            return -1;
        }
        i += m.size;
    }
    return f == PGWIRE_FRAME_BAD ? -1 : 0;
}

/* A whole frontend message of type t went by (55.7: Q Query, F FunctionCall, S Sync each
 * get a ReadyForQuery; P B D E C H are extended-protocol steps a Sync closes; d c f are
 * COPY data, inside a Query's flow; X Terminate). */
static void front_message_done(struct pgwire_front *f, uint8_t t, uint32_t mlen)
{
    f->terminated = t == 'X' && mlen == 4;
    if (t == 'Q' || t == 'F' || t == 'S') {
        f->syncs++;
        if (t == 'S')
            f->open_batch = 0;
    } else if (t != 0 && strchr("PBDECH", t) != NULL) {
        f->open_batch = 1;
    }
}

int pgwire_front_feed(struct pgwire_front *f, const uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (f->hdr_len < 5) {
            f->terminated = 0; /* something after a Terminate, or a new message */
            size_t take = 5 - f->hdr_len;
            if (take > len - i)
                take = len - i;
            memcpy(f->hdr + f->hdr_len, buf + i, take);
            f->hdr_len = (uint8_t)(f->hdr_len + take);
            i += take;
            if (f->hdr_len < 5)
                return 0;
            struct pgwire_msg m;
            if (pgwire_frame(f->hdr, 5, &m) == PGWIRE_FRAME_BAD || m.type == 0)
                return -1;
            f->remaining = m.len - 4;
        }
        size_t take = f->remaining < len - i ? f->remaining : len - i;
        i += take;
        f->remaining -= (uint32_t)take;
        if (f->remaining == 0) {
            front_message_done(f, f->hdr[0], get_u32(f->hdr + 1));
            f->hdr_len = 0;
        }
    }
    return 0;
}

/* ErrorResponse fields: (code byte, string\0)* \0 -- 55.8 "Error and Notice Fields". */
static void parse_error_fields(const uint8_t *p, const uint8_t *end, struct pgwire_check *out)
{
    while (p < end && *p != 0) {
        uint8_t code = *p++;
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        if (z == NULL)
            return;
        if (code == 'C')
            snprintf(out->sqlstate, sizeof(out->sqlstate), "%s", (const char *)p);
        else if (code == 'M')
            snprintf(out->message, sizeof(out->message), "%s", (const char *)p);
        p = z + 1;
    }
}

enum pgwire_check_kind pgwire_check_parse(const uint8_t *buf, size_t len, struct pgwire_check *out)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    int auth_ok = 0;
    struct pgwire_msg m;
    enum pgwire_frame f;
    while ((f = pgwire_frame(buf + i, len - i, &m)) == PGWIRE_FRAME_WHOLE) {
        switch (m.type) {
        case 'R':
            if (m.len < 8)
                return out->kind = PGWIRE_CHECK_BAD;
            if (get_u32(m.body) != 0)
                return out->kind = PGWIRE_CHECK_ALIVE;
            auth_ok = 1;
            break;
        case 'E':
            parse_error_fields(m.body, buf + i + m.size, out);
            return out->kind = PGWIRE_CHECK_ERROR;
        case 'Z':
            if (!auth_ok)
                return out->kind = PGWIRE_CHECK_BAD;
            return out->kind = PGWIRE_CHECK_READY;
        case 'S':
        case 'K':
        case 'N':
        case 'v':
            if (!auth_ok && m.type != 'v' && m.type != 'N')
                return out->kind = PGWIRE_CHECK_BAD;
            break;
        default:
            return out->kind = PGWIRE_CHECK_BAD;
        }
        i += m.size;
    }
    if (f == PGWIRE_FRAME_BAD || (len > 0 && strchr("REZSKNv", buf[0]) == NULL))
        return out->kind = PGWIRE_CHECK_BAD;
    return out->kind = PGWIRE_CHECK_INCOMPLETE;
}
