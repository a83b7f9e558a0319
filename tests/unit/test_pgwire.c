/* test_pgwire.c -- first-packet classification, stream framing, check answers and
 * builders (lbd/pgwire.c). */
/* Wire messages are built one message a line, as they travel: not reformatted. */
/* clang-format off */
#include "check_main.h"
#include "pgwire.h"

#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t startup(uint8_t *buf, size_t size)
{
    const char *p[] = {"user", "alice", "database", "shop", "application_name", "psql", NULL};
    return pgwire_startup_build(buf, size, p);
}

START_TEST(startup_is_classified_with_params)
{
    uint8_t buf[256];
    size_t n = startup(buf, sizeof(buf));
    struct pgwire_first f;
    ck_assert_int_eq(pgwire_first_parse(buf, n, &f), PGWIRE_FIRST_STARTUP);
    ck_assert_uint_eq(f.len, n);
    ck_assert_uint_eq(f.proto, 3u << 16);
    ck_assert_str_eq(f.user, "alice");
    ck_assert_str_eq(f.database, "shop");
    ck_assert_str_eq(f.application_name, "psql");
}
END_TEST

START_TEST(startup_database_defaults_to_user)
{
    uint8_t buf[64];
    const char *p[] = {"user", "bob", NULL};
    size_t n = pgwire_startup_build(buf, sizeof(buf), p);
    struct pgwire_first f;
    ck_assert_int_eq(pgwire_first_parse(buf, n, &f), PGWIRE_FIRST_STARTUP);
    ck_assert_str_eq(f.database, "bob");
}
END_TEST

START_TEST(every_prefix_is_incomplete)
{
    uint8_t buf[256];
    size_t n = startup(buf, sizeof(buf));
    struct pgwire_first f;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(pgwire_first_parse(buf, i, &f) == PGWIRE_FIRST_INCOMPLETE,
                      "prefix of %zu bytes was not incomplete", i);
}
END_TEST

START_TEST(fixed_requests)
{
    uint8_t b[16];
    struct pgwire_first f;
    put32(b, 8);
    put32(b + 4, PGWIRE_CODE_SSL);
    ck_assert_int_eq(pgwire_first_parse(b, 8, &f), PGWIRE_FIRST_SSL);
    put32(b + 4, PGWIRE_CODE_GSSENC);
    ck_assert_int_eq(pgwire_first_parse(b, 8, &f), PGWIRE_FIRST_GSSENC);
    ck_assert_uint_eq(pgwire_cancel_build(b, sizeof(b), 4242, 0xdeadbeef, 0), 16);
    ck_assert_int_eq(pgwire_first_parse(b, 16, &f), PGWIRE_FIRST_CANCEL);
    ck_assert_uint_eq(f.cancel_pid, 4242);
    ck_assert_uint_eq(f.cancel_key, 0xdeadbeef);
    ck_assert_int_eq(f.forwarded, 0);
    ck_assert_int_eq(pgwire_first_parse(b, 12, &f), PGWIRE_FIRST_INCOMPLETE);
    /* The peer's forward: lbd's own code, told apart (a client listener refuses it). */
    ck_assert_uint_eq(pgwire_cancel_build(b, sizeof(b), 4242, 0xdeadbeef, 1), 16);
    ck_assert_uint_eq(b[4] << 24 | b[5] << 16 | b[6] << 8 | b[7], 80877201u);
    ck_assert_int_eq(pgwire_first_parse(b, 16, &f), PGWIRE_FIRST_CANCEL);
    ck_assert_int_eq(f.forwarded, 1);
    ck_assert_uint_eq(f.cancel_key, 0xdeadbeef);
    /* The peer lbd's signed node command (control.c checks the body): its own kind,
     * whole only at its length. */
    put32(b, 16);
    put32(b + 4, PGWIRE_CODE_PEER_CONTROL);
    ck_assert_int_eq(pgwire_first_parse(b, 12, &f), PGWIRE_FIRST_INCOMPLETE);
    ck_assert_int_eq(pgwire_first_parse(b, 16, &f), PGWIRE_FIRST_PEER_CONTROL);
    ck_assert_uint_eq(f.len, 16);
    ck_assert_str_eq(pgwire_first_kind_name(f.kind), "peer_control");
}
END_TEST

START_TEST(protocol_3_2_cancel_keys)
{
    /* PostgreSQL 18's protocol 3.2: a secret key of 4 to 256 bytes. The whole key is
     * kept, to be passed on as it came; lbd records and routes by its first 4 bytes. */
    uint8_t key[32], b[12 + PGWIRE_MAX_CANCEL_KEY + 8];
    struct pgwire_first f;
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0xa0 + i);
    size_t n = pgwire_cancel_build_key(b, sizeof(b), 4242, key, sizeof(key), 0);
    ck_assert_uint_eq(n, 44);
    ck_assert_uint_eq(b[3], 44);                            /* length */
    ck_assert_uint_eq(b[4] << 24 | b[5] << 16 | b[6] << 8 | b[7], 80877102u);
    ck_assert_int_eq(pgwire_first_parse(b, 43, &f), PGWIRE_FIRST_INCOMPLETE);
    ck_assert_int_eq(pgwire_first_parse(b, 44, &f), PGWIRE_FIRST_CANCEL);
    ck_assert_uint_eq(f.cancel_pid, 4242);
    ck_assert_uint_eq(f.cancel_key, 0xa0a1a2a3u);
    ck_assert_uint_eq(f.cancel_key_len, 32);
    ck_assert_mem_eq(f.cancel_key_bytes, key, 32);
    /* Forwarded to the peer whole, and taken there whole. */
    n = pgwire_cancel_build_key(b, sizeof(b), 4242, key, sizeof(key), 1);
    ck_assert_int_eq(pgwire_first_parse(b, n, &f), PGWIRE_FIRST_CANCEL);
    ck_assert_int_eq(f.forwarded, 1);
    ck_assert_uint_eq(f.cancel_key_len, 32);
    /* The longest key, 256 bytes; a longer one is not a key and cannot be built. */
    uint8_t big[PGWIRE_MAX_CANCEL_KEY + 1];
    memset(big, 7, sizeof(big));
    ck_assert_uint_eq(pgwire_cancel_build_key(b, sizeof(b), 1, big, 256, 0), 268);
    ck_assert_int_eq(pgwire_first_parse(b, 268, &f), PGWIRE_FIRST_CANCEL);
    ck_assert_uint_eq(f.cancel_key_len, 256);
    ck_assert_uint_eq(pgwire_cancel_build_key(b, sizeof(b), 1, big, 257, 0), 0);
    ck_assert_uint_eq(pgwire_cancel_build_key(b, sizeof(b), 1, big, 3, 0), 0);
    /* A forwarded cancel longer than the longest key is refused as PostgreSQL refuses an
     * unknown protocol. */
    memset(b, 0, sizeof(b));
    b[2] = 1;
    b[3] = 20; /* 276 bytes */
    b[4] = 0x04, b[5] = 0xd2, b[6] = 0x16, b[7] = 0x91; /* 1234.5777 */
    ck_assert_int_eq(pgwire_first_parse(b, 276, &f), PGWIRE_FIRST_BAD);
    ck_assert_str_eq(f.sqlstate, "0A000");
}
END_TEST

START_TEST(bad_lengths_and_codes)
{
    /* Each as PostgreSQL 15 answers it (lbd_front_door.sh sends the same bytes to both). */
    uint8_t b[32] = {0}, out[256];
    struct pgwire_first f;
    put32(b, 0x80000010u); /* negative */
    ck_assert_int_eq(pgwire_first_parse(b, 4, &f), PGWIRE_FIRST_BAD);
    ck_assert_str_eq(f.reason, "invalid length of startup packet");
    ck_assert_ptr_null(f.sqlstate); /* closes without a byte */
    ck_assert_uint_eq(pgwire_first_answer_build(out, sizeof(out), &f), 0);
    put32(b, 7); /* tiny */
    ck_assert_int_eq(pgwire_first_parse(b, 4, &f), PGWIRE_FIRST_BAD);
    ck_assert_ptr_null(f.sqlstate);
    put32(b, 10001); /* over PostgreSQL's limit */
    ck_assert_int_eq(pgwire_first_parse(b, 4, &f), PGWIRE_FIRST_BAD);
    ck_assert_ptr_null(f.sqlstate);
    const uint8_t terminate[5] = {'X', 0, 0, 0, 4}; /* a Terminate before the startup */
    ck_assert_int_eq(pgwire_first_parse(terminate, 5, &f), PGWIRE_FIRST_BAD);
    ck_assert_ptr_null(f.sqlstate);
    put32(b, 12); /* an SSLRequest of 12 bytes is one: 'N', then the next packet */
    put32(b + 4, PGWIRE_CODE_SSL);
    ck_assert_int_eq(pgwire_first_parse(b, 8, &f), PGWIRE_FIRST_INCOMPLETE);
    ck_assert_int_eq(pgwire_first_parse(b, 12, &f), PGWIRE_FIRST_SSL);
    ck_assert_uint_eq(f.len, 12);
    put32(b, 12); /* a CancelRequest too short for a key: closed, nothing done */
    put32(b + 4, PGWIRE_CODE_CANCEL);
    ck_assert_int_eq(pgwire_first_parse(b, 12, &f), PGWIRE_FIRST_BAD);
    ck_assert_ptr_null(f.sqlstate);
    put32(b, 20); /* longer: the key is its first bytes, as PostgreSQL reads it */
    put32(b + 8, 77);
    put32(b + 12, 99);
    ck_assert_int_eq(pgwire_first_parse(b, 20, &f), PGWIRE_FIRST_CANCEL);
    ck_assert_uint_eq(f.cancel_pid, 77);
    ck_assert_uint_eq(f.cancel_key, 99);
    put32(b, 20); /* protocol 2: a protocol-2 error, which a 2.0 client can read */
    put32(b + 4, 2u << 16);
    ck_assert_int_eq(pgwire_first_parse(b, 20, &f), PGWIRE_FIRST_BAD);
    ck_assert_str_eq(f.sqlstate, "0A000");
    size_t n = pgwire_first_answer_build(out, sizeof(out), &f);
    const char v2[] = "EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n";
    ck_assert_uint_eq(n, sizeof(v2)); /* with its NUL */
    ck_assert_mem_eq(out, v2, sizeof(v2));
    put32(b + 4, 1234u << 16 | 9); /* unknown: a protocol-3 error */
    ck_assert_int_eq(pgwire_first_parse(b, 20, &f), PGWIRE_FIRST_BAD);
    ck_assert_str_eq(f.message, "unsupported frontend protocol 1234.9: server supports 3.0 to 3.0");
    n = pgwire_first_answer_build(out, sizeof(out), &f);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(out[0], 'E');
}
END_TEST

START_TEST(garbage_is_bad_early)
{
    struct pgwire_first f;
    const char *http = "GET / HTTP/1.1\r\n";
    ck_assert_int_eq(pgwire_first_parse((const uint8_t *)http, 4, &f), PGWIRE_FIRST_BAD);
    const uint8_t tls_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00};
    ck_assert_int_eq(pgwire_first_parse(tls_hello, sizeof(tls_hello), &f), PGWIRE_FIRST_BAD);
}
END_TEST

START_TEST(malformed_startup_bodies)
{
    uint8_t b[64];
    struct pgwire_first f;
    /* not terminated */
    put32(b, 14);
    put32(b + 4, 3u << 16);
    memcpy(b + 8, "user\0x", 6);
    ck_assert_int_eq(pgwire_first_parse(b, 14, &f), PGWIRE_FIRST_BAD);
    /* key without value */
    put32(b, 14);
    memcpy(b + 8, "user\0\0", 6);
    ck_assert_int_eq(pgwire_first_parse(b, 14, &f), PGWIRE_FIRST_BAD);
    ck_assert_str_eq(f.sqlstate, "08P01");
    ck_assert_str_eq(f.reason, "invalid startup packet layout: expected terminator as last byte");
    /* no user */
    put32(b, 9);
    b[8] = 0;
    ck_assert_int_eq(pgwire_first_parse(b, 9, &f), PGWIRE_FIRST_BAD);
    ck_assert_str_eq(f.sqlstate, "28000");
    ck_assert_str_eq(f.reason, "no PostgreSQL user name specified in startup packet");
}
END_TEST

START_TEST(error_response_is_well_formed)
{
    uint8_t b[256];
    size_t n = pgwire_error_build(b, sizeof(b), "FATAL", "57P03", "no node");
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(b[0], 'E');
    uint32_t len = (uint32_t)b[1] << 24 | b[2] << 16 | b[3] << 8 | b[4];
    ck_assert_uint_eq(len + 1, n);
    ck_assert_int_eq(b[n - 1], 0);
    /* A check parser reads it back. */
    struct pgwire_check c;
    ck_assert_int_eq(pgwire_check_parse(b, n, &c), PGWIRE_CHECK_ERROR);
    ck_assert_str_eq(c.sqlstate, "57P03");
    ck_assert_str_eq(c.message, "no node");
    ck_assert_uint_eq(pgwire_error_build(b, 10, "FATAL", "57P03", "no node"), 0);
}
END_TEST

struct events {
    int keys, ready, params;
    uint32_t pid, key;
    char status;
};

static void on_event(void *ctx, const struct pgwire_event *ev)
{
    struct events *e = ctx;
    if (ev->kind == PGWIRE_EV_BACKEND_KEY) {
        e->keys++;
        e->pid = ev->pid;
        e->key = ev->key;
    } else if (ev->kind == PGWIRE_EV_READY) {
        e->ready++;
        e->status = ev->tx_status;
    } else if (ev->kind == PGWIRE_EV_PARAM) {
        e->params++;
    }
}

static size_t backend_stream(uint8_t *b)
{
    size_t n = 0;
    b[n++] = 'R'; put32(b + n, 8); n += 4; put32(b + n, 0); n += 4;
    b[n++] = 'S'; put32(b + n, 4 + 10); n += 4; memcpy(b + n, "a\0bcdefgh\0", 10); n += 10;
    b[n++] = 'K'; put32(b + n, 12); n += 4; put32(b + n, 777); n += 4; put32(b + n, 99); n += 4;
    b[n++] = 'Z'; put32(b + n, 5); n += 4; b[n++] = 'I';
    b[n++] = 'D'; put32(b + n, 4 + 100); n += 4; memset(b + n, 'x', 100); n += 100;
    b[n++] = 'Z'; put32(b + n, 5); n += 4; b[n++] = 'T';
    return n;
}

START_TEST(stream_finds_key_and_ready_in_one_piece)
{
    uint8_t b[512];
    size_t n = backend_stream(b);
    struct pgwire_stream s = {0};
    struct events e = {0};
    ck_assert_int_eq(pgwire_stream_feed(&s, b, n, on_event, &e), 0);
    ck_assert_int_eq(e.keys, 1);
    ck_assert_uint_eq(e.pid, 777);
    ck_assert_uint_eq(e.key, 99);
    ck_assert_int_eq(e.ready, 2);
    ck_assert_int_eq(e.status, 'T');
    ck_assert_int_eq(e.params, 1);
    ck_assert_uint_eq(s.messages, 6);
}
END_TEST

START_TEST(stream_byte_by_byte_gives_the_same)
{
    uint8_t b[512];
    size_t n = backend_stream(b);
    struct pgwire_stream s = {0};
    struct events e = {0};
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(pgwire_stream_feed(&s, b + i, 1, on_event, &e), 0);
    ck_assert_int_eq(e.keys, 1);
    ck_assert_uint_eq(e.pid, 777);
    ck_assert_uint_eq(e.key, 99);
    ck_assert_int_eq(e.ready, 2);
    ck_assert_uint_eq(s.messages, 6);
}
END_TEST

/* Every cut into two pieces: the in-place hop over whole messages and the byte-wise
 * path hand over to each other at any offset. */
START_TEST(stream_split_anywhere_gives_the_same)
{
    uint8_t b[512];
    size_t n = backend_stream(b);
    for (size_t cut = 0; cut <= n; cut++) {
        struct pgwire_stream s = {0};
        struct events e = {0};
        ck_assert_int_eq(pgwire_stream_feed(&s, b, cut, on_event, &e), 0);
        ck_assert_int_eq(pgwire_stream_feed(&s, b + cut, n - cut, on_event, &e), 0);
        ck_assert_int_eq(e.keys, 1);
        ck_assert_uint_eq(e.key, 99);
        ck_assert_int_eq(e.ready, 2);
        ck_assert_int_eq(e.status, 'T');
        ck_assert_int_eq(e.params, 1);
        ck_assert_uint_eq(s.messages, 6);
    }
}
END_TEST

/* ---- the trusted startup answer (reuse of node connections) ---- */

START_TEST(reply_trusted_whole_and_every_prefix_incomplete)
{
    uint8_t b[512];
    size_t n = backend_stream(b); /* R ok, S, K, Z 'I', then a DataRow and Z 'T' */
    size_t end = 1 + 8 + 1 + 14 + 1 + 12 + 1 + 5;
    struct pgwire_reply r;
    ck_assert_int_eq(pgwire_reply_parse(b, n, &r), PGWIRE_REPLY_TRUSTED);
    ck_assert_uint_eq(r.len, end);
    ck_assert_uint_eq(r.key_off, 1 + 8 + 1 + 14);
    ck_assert_int_eq(b[r.key_off], 'K');
    ck_assert_uint_eq(r.pid, 777);
    ck_assert_uint_eq(r.key, 99);
    for (size_t i = 0; i < end; i++)
        ck_assert_msg(pgwire_reply_parse(b, i, &r) == PGWIRE_REPLY_INCOMPLETE,
                      "a prefix of %zu bytes is not incomplete", i);
}
END_TEST

START_TEST(reply_other_for_challenges_errors_and_oddities)
{
    uint8_t b[512];
    struct pgwire_reply r;
    b[0] = 'R'; put32(b + 1, 12); put32(b + 5, 5); memcpy(b + 9, "salt", 4); /* MD5 */
    ck_assert_int_eq(pgwire_reply_parse(b, 13, &r), PGWIRE_REPLY_OTHER);
    ck_assert_int_eq(pgwire_reply_parse(b, 3, &r), PGWIRE_REPLY_INCOMPLETE);
    ck_assert_int_eq(pgwire_reply_parse(b, 5, &r), PGWIRE_REPLY_OTHER); /* its length says so */
    b[0] = 'E'; put32(b + 1, 6); b[5] = 'x'; b[6] = 0;
    ck_assert_int_eq(pgwire_reply_parse(b, 7, &r), PGWIRE_REPLY_OTHER);
    ck_assert_int_eq(pgwire_reply_parse(b, 1, &r), PGWIRE_REPLY_OTHER);
    /* NegotiateProtocolVersion, a second key, no key, a transaction open, a bad length */
    size_t n = backend_stream(b);
    uint8_t c[600];
    memcpy(c, b, 9);
    c[9] = 'v'; put32(c + 10, 12); memset(c + 14, 0, 8);
    memcpy(c + 22, b + 9, n - 9);
    ck_assert_int_eq(pgwire_reply_parse(c, n + 13, &r), PGWIRE_REPLY_OTHER);
    memcpy(c, b, 24); /* R, S */
    memcpy(c + 24, b + 24, 13); memcpy(c + 37, b + 24, 13); memcpy(c + 50, b + 37, 6);
    ck_assert_int_eq(pgwire_reply_parse(c, 56, &r), PGWIRE_REPLY_OTHER);
    memcpy(c, b, 24); memcpy(c + 24, b + 37, 6); /* no BackendKeyData */
    ck_assert_int_eq(pgwire_reply_parse(c, 30, &r), PGWIRE_REPLY_OTHER);
    memcpy(c, b, 43); c[42] = 'T';
    ck_assert_int_eq(pgwire_reply_parse(c, 43, &r), PGWIRE_REPLY_OTHER);
    memcpy(c, b, 43); put32(c + 10, 3);
    ck_assert_int_eq(pgwire_reply_parse(c, 43, &r), PGWIRE_REPLY_OTHER);
    put32(c + 10, PGWIRE_REPLY_MAX + 1);
    ck_assert_int_eq(pgwire_reply_parse(c, 43, &r), PGWIRE_REPLY_OTHER);
}
END_TEST

START_TEST(trusted_build_round_trips_with_params_and_new_key)
{
    uint8_t b[512], built[512], params[64];
    size_t n = backend_stream(b);
    struct pgwire_reply r, r2;
    ck_assert_int_eq(pgwire_reply_parse(b, n, &r), PGWIRE_REPLY_TRUSTED);
    size_t plen = pgwire_reply_params(b, &r, NULL);
    ck_assert_uint_eq(plen, 15); /* the one ParameterStatus, as sent */
    ck_assert_uint_eq(pgwire_reply_params(b, &r, params), plen);
    ck_assert_mem_eq(params, b + 9, plen);
    pgwire_reply_set_key(b, &r, 0xdeadbeef);
    ck_assert_int_eq(pgwire_reply_parse(b, n, &r2), PGWIRE_REPLY_TRUSTED);
    ck_assert_uint_eq(r2.pid, 777);
    ck_assert_uint_eq(r2.key, 0xdeadbeef);
    size_t m = pgwire_trusted_build(built, sizeof(built), params, plen, 4242, 17);
    ck_assert_uint_eq(m, PGWIRE_TRUSTED_FIXED + plen);
    ck_assert_int_eq(pgwire_reply_parse(built, m, &r2), PGWIRE_REPLY_TRUSTED);
    ck_assert_uint_eq(r2.len, m);
    ck_assert_uint_eq(r2.pid, 4242);
    ck_assert_uint_eq(r2.key, 17);
    ck_assert_mem_eq(built, b, r.len - 19); /* R and S as the node sent them */
    ck_assert_uint_eq(pgwire_trusted_build(built, m - 1, params, plen, 1, 2), 0);
}
END_TEST

START_TEST(reset_answer_accepts_only_complete_then_idle)
{
    uint8_t b[64];
    size_t n = 0;
    b[n++] = 'C'; put32(b + n, 4 + 12); n += 4; memcpy(b + n, "DISCARD ALL", 12); n += 12;
    size_t z = n;
    b[n++] = 'Z'; put32(b + n, 5); n += 4; b[n++] = 'I';
    ck_assert_int_eq(pgwire_reset_answer(b, n), 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(pgwire_reset_answer(b, i) == 0, "a prefix of %zu bytes is not 'wait'", i);
    b[n - 1] = 'T'; /* a transaction open */
    ck_assert_int_eq(pgwire_reset_answer(b, n), -1);
    b[n - 1] = 'I';
    b[n] = 'N'; /* anything after ReadyForQuery */
    ck_assert_int_eq(pgwire_reset_answer(b, n + 1), -1);
    b[z - 17] = 'S'; /* a ParameterStatus instead of CommandComplete */
    ck_assert_int_eq(pgwire_reset_answer(b, n), -1);
    b[0] = 'E';
    ck_assert_int_eq(pgwire_reset_answer(b, n), -1);
    b[0] = 'C'; put32(b + 1, 2); /* a bad length */
    ck_assert_int_eq(pgwire_reset_answer(b, n), -1);
}
END_TEST

/* ---- frontend framing: a clean exit ---- */

static size_t fmsg(uint8_t *b, char t, const char *body, uint32_t blen)
{
    b[0] = (uint8_t)t;
    put32(b + 1, 4 + blen);
    memcpy(b + 5, body, blen);
    return 5 + blen;
}

START_TEST(front_counts_syncs_and_sees_terminate)
{
    uint8_t b[256];
    size_t n = 0;
    n += fmsg(b + n, 'Q', "select 1\0", 9);
    n += fmsg(b + n, 'P', "\0select 2\0\0\0", 13);
    n += fmsg(b + n, 'B', "\0\0\0\0\0\0\0\0\0\0", 10);
    n += fmsg(b + n, 'E', "\0\0\0\0\0", 5);
    size_t before_sync = n;
    n += fmsg(b + n, 'S', "", 0);
    size_t before_x = n;
    n += fmsg(b + n, 'X', "", 0);
    for (size_t step = 1; step <= n; step++) { /* whole, and in pieces of every size */
        struct pgwire_front f = {0};
        for (size_t i = 0; i < n; i += step) {
            size_t k = n - i < step ? n - i : step;
            ck_assert_int_eq(pgwire_front_feed(&f, b + i, k), 0);
            if (i + k <= before_sync && i + k >= 32) /* after Parse */
                ck_assert_int_eq(f.open_batch, 1);
        }
        ck_assert_uint_eq(f.syncs, 2);
        ck_assert_int_eq(f.open_batch, 0);
        ck_assert_int_eq(f.terminated, 1);
        ck_assert_uint_eq(f.hdr_len, 0);
    }
    struct pgwire_front f = {0};
    ck_assert_int_eq(pgwire_front_feed(&f, b, before_x), 0);
    ck_assert_int_eq(f.terminated, 0);
    ck_assert_int_eq(pgwire_front_feed(&f, b + before_x, 3), 0); /* half a Terminate */
    ck_assert_int_eq(f.terminated, 0);
    ck_assert_int_eq(pgwire_front_feed(&f, b + before_x + 3, 2), 0);
    ck_assert_int_eq(f.terminated, 1);
    ck_assert_int_eq(pgwire_front_feed(&f, b, 1), 0); /* a byte after it */
    ck_assert_int_eq(f.terminated, 0);
}
END_TEST

START_TEST(front_batch_without_sync_stays_open_and_copy_is_neutral)
{
    uint8_t b[256];
    struct pgwire_front f = {0};
    size_t n = fmsg(b, 'P', "\0select 2\0\0\0", 13);
    n += fmsg(b + n, 'H', "", 0);
    n += fmsg(b + n, 'X', "", 0);
    ck_assert_int_eq(pgwire_front_feed(&f, b, n), 0);
    ck_assert_int_eq(f.open_batch, 1);
    ck_assert_int_eq(f.terminated, 1);
    struct pgwire_front g = {0};
    n = fmsg(b, 'Q', "copy t from stdin\0", 18);
    n += fmsg(b + n, 'd', "1\n", 2);
    n += fmsg(b + n, 'c', "", 0);
    ck_assert_int_eq(pgwire_front_feed(&g, b, n), 0);
    ck_assert_uint_eq(g.syncs, 1);
    ck_assert_int_eq(g.open_batch, 0);
    uint8_t bad[5] = {'Q', 0, 0, 0, 3}, nul[5] = {0, 0, 0, 0, 4};
    struct pgwire_front h = {0}, k = {0};
    ck_assert_int_eq(pgwire_front_feed(&h, bad, 5), -1);
    ck_assert_int_eq(pgwire_front_feed(&k, nul, 5), -1);
}
END_TEST

START_TEST(startup_replication_is_flagged)
{
    uint8_t buf[128];
    const char *p[] = {"user", "rep", "replication", "database", NULL};
    size_t n = pgwire_startup_build(buf, sizeof(buf), p);
    struct pgwire_first f;
    ck_assert_int_eq(pgwire_first_parse(buf, n, &f), PGWIRE_FIRST_STARTUP);
    ck_assert_int_eq(f.replication, 1);
    n = startup(buf, sizeof(buf));
    ck_assert_int_eq(pgwire_first_parse(buf, n, &f), PGWIRE_FIRST_STARTUP);
    ck_assert_int_eq(f.replication, 0);
}
END_TEST

START_TEST(stream_rejects_bad_length_after_good_messages)
{
    uint8_t b[512];
    size_t n = backend_stream(b);
    b[n++] = 'D'; put32(b + n, 2); n += 4;
    struct pgwire_stream s = {0};
    struct events e = {0};
    ck_assert_int_eq(pgwire_stream_feed(&s, b, n, on_event, &e), -1);
}
END_TEST

START_TEST(stream_rejects_bad_length)
{
    uint8_t b[5] = {'D', 0, 0, 0, 3};
    struct pgwire_stream s = {0};
    struct events e = {0};
    ck_assert_int_eq(pgwire_stream_feed(&s, b, 5, on_event, &e), -1);
}
END_TEST

/* The one framing reader: every walker's answer to a length word comes from here. */
START_TEST(frame_reader_bounds)
{
    uint8_t b[16] = {'Z'};
    struct pgwire_msg m;
    for (size_t n = 0; n < 5; n++)
        ck_assert_int_eq(pgwire_frame(b, n, &m), PGWIRE_FRAME_SHORT);
    put32(b + 1, 5);
    b[5] = 'I';
    ck_assert_int_eq(pgwire_frame(b, 5, &m), PGWIRE_FRAME_PARTIAL);
    ck_assert_uint_eq(m.size, 6);
    ck_assert_int_eq(pgwire_frame(b, 6, &m), PGWIRE_FRAME_WHOLE);
    ck_assert_int_eq(m.type, 'Z');
    ck_assert_uint_eq(m.len, 5);
    ck_assert_ptr_eq(m.body, b + 5);
    ck_assert_int_eq(pgwire_frame(b, sizeof(b), &m), PGWIRE_FRAME_WHOLE); /* more after it */
    put32(b + 1, 4); /* an empty body */
    ck_assert_int_eq(pgwire_frame(b, 5, &m), PGWIRE_FRAME_WHOLE);
    put32(b + 1, 3); /* shorter than its own length word */
    ck_assert_int_eq(pgwire_frame(b, 16, &m), PGWIRE_FRAME_BAD);
    put32(b + 1, PGWIRE_MAX_MESSAGE);
    ck_assert_int_eq(pgwire_frame(b, 16, &m), PGWIRE_FRAME_PARTIAL);
    put32(b + 1, PGWIRE_MAX_MESSAGE + 1);
    ck_assert_int_eq(pgwire_frame(b, 16, &m), PGWIRE_FRAME_BAD);
    /* The stream and the client's framing refuse the same length word. */
    struct pgwire_stream s = {0};
    struct pgwire_front f = {0};
    struct events e = {0};
    ck_assert_int_eq(pgwire_stream_feed(&s, b, 5, on_event, &e), -1);
    ck_assert_int_eq(pgwire_front_feed(&f, b, 5), -1);
    ck_assert_int_eq(pgwire_reset_answer(b, 5), -1);
}
END_TEST

START_TEST(check_answers)
{
    uint8_t b[64];
    struct pgwire_check c;
    b[0] = 'R'; put32(b + 1, 8); put32(b + 5, 10); /* SASL */
    ck_assert_int_eq(pgwire_check_parse(b, 9, &c), PGWIRE_CHECK_ALIVE);
    ck_assert_int_eq(pgwire_check_parse(b, 6, &c), PGWIRE_CHECK_INCOMPLETE);
    put32(b + 5, 0); /* AuthenticationOk, then ReadyForQuery */
    b[9] = 'Z'; put32(b + 10, 5); b[14] = 'I';
    ck_assert_int_eq(pgwire_check_parse(b, 9, &c), PGWIRE_CHECK_INCOMPLETE);
    ck_assert_int_eq(pgwire_check_parse(b, 15, &c), PGWIRE_CHECK_READY);
    const char *junk = "HTTP/1.1 400 Bad Request\r\n";
    ck_assert_int_eq(pgwire_check_parse((const uint8_t *)junk, strlen(junk), &c),
                     PGWIRE_CHECK_BAD);
    b[0] = 'Z'; put32(b + 1, 5); b[5] = 'I'; /* ReadyForQuery before authentication */
    ck_assert_int_eq(pgwire_check_parse(b, 6, &c), PGWIRE_CHECK_BAD);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pgwire");
    TCase *tc = tcase_create("first_packet");
    tcase_add_test(tc, startup_is_classified_with_params);
    tcase_add_test(tc, startup_database_defaults_to_user);
    tcase_add_test(tc, every_prefix_is_incomplete);
    tcase_add_test(tc, fixed_requests);
    tcase_add_test(tc, bad_lengths_and_codes);
    tcase_add_test(tc, protocol_3_2_cancel_keys);
    tcase_add_test(tc, garbage_is_bad_early);
    tcase_add_test(tc, malformed_startup_bodies);
    tcase_add_test(tc, error_response_is_well_formed);
    suite_add_tcase(s, tc);
    TCase *ts = tcase_create("stream");
    tcase_add_test(ts, stream_finds_key_and_ready_in_one_piece);
    tcase_add_test(ts, stream_byte_by_byte_gives_the_same);
    tcase_add_test(ts, stream_rejects_bad_length);
    tcase_add_test(ts, stream_split_anywhere_gives_the_same);
    tcase_add_test(ts, stream_rejects_bad_length_after_good_messages);
    tcase_add_test(ts, check_answers);
    tcase_add_test(ts, frame_reader_bounds);
    tcase_add_test(ts, reply_trusted_whole_and_every_prefix_incomplete);
    tcase_add_test(ts, reply_other_for_challenges_errors_and_oddities);
    tcase_add_test(ts, trusted_build_round_trips_with_params_and_new_key);
    tcase_add_test(ts, reset_answer_accepts_only_complete_then_idle);
    tcase_add_test(ts, front_counts_syncs_and_sees_terminate);
    tcase_add_test(ts, front_batch_without_sync_stays_open_and_copy_is_neutral);
    tcase_add_test(ts, startup_replication_is_flagged);
    suite_add_tcase(s, ts);
    return s;
}

CHECK_MAIN(suite)
/* clang-format on */
