/* control.c -- lbd's control socket (lbd.control, common/ctl.h): what pgvipctl asks.
 *
 *   nodes [show]                          the pool: health, admin state, weight, sessions
 *   nodes drain|disable|enable NODE       an operator's state (pool.h enum node_admin)
 *   nodes weight NODE N                   until the file's own weight for it changes
 *   nodes add NAME HOST[:PORT] [weight N] [max_sessions N] [check_port N]
 *   nodes remove NODE                     drained or disabled, no sessions left
 *   sessions [show] [NODE]                client sessions: who, where, idle or busy
 *   sessions kill ID|node NODE [now]      57P01 at the next idle moment, or now
 *   status                                one line on this instance
 *
 * Looking needs only a connection (the socket's mode); changes need root, lbd's own
 * start user, or lbd.control.operators, and each is logged with who asked. Changes last
 * until the next reload or restart for what the file says otherwise (nodes, their
 * weights); admin states last until a restart. */
#include "lbd.h"
#include "session.h"
#include "control.h"

#include "opstate.h"

#include "bytes.h"

#include "parse.h"
#include "sha256.h"
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONTROL_TICK_MS 1000

/* A message: text, or {"instance": ..., key: "..."} (key: message, note or error). */
#define say(l, out, json, key, ...) ctl_say(out, json, (l)->cfg.instance, key, __VA_ARGS__)

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        say(l, out, json, "error", __VA_ARGS__);                                                   \
        return -1;                                                                                 \
    } while (0)

static const char *new_sessions_why(const struct pool_node *n)
{
    return pool_node_eligible(n)                                      ? "yes"
           : n->admin != NODE_ADMIN_READY                             ? node_admin_name(n->admin)
           : n->state != NODE_UP                                      ? node_state_name(n->state)
           : n->weight == 0                                           ? "weight 0"
           : n->max_sessions && RELAXED(n->active) >= n->max_sessions ? "full"
                                                                      : "no";
}

/* How long an operator's change lasts, for the answer. */
static const char *lifetime(const struct lbd *l)
{
    return l->cfg.control.state_file[0] ? "kept across a restart (lbd.control.state_file)"
                                        : "until lbd restarts (lbd.control.state_file is off)";
}

static int nodes_show(struct lbd *l, bool json, struct metrics_buf *out)
{
    static const char *const cols[] = {"node",           "address",      "health",   "admin",
                                       "weight",         "new_sessions", "sessions", "max_sessions",
                                       "sessions_total", "last_check"};
    struct ctl_table t;
    ctl_table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    ctl_table_numeric(&t, 4);
    ctl_table_numeric(&t, 6);
    ctl_table_numeric(&t, 7);
    ctl_table_numeric(&t, 8);
    for (size_t i = 0; i < l->nodes.pool.n; i++) {
        const struct pool_node *n = l->nodes.pool.nodes[i];
        char a[SOCKADDR_STRLEN];
        ctl_table_cell(&t, "%s", n->name);
        ctl_table_cell(&t, "%s", format_sockaddr((const struct sockaddr *)&n->addr, a, sizeof(a)));
        ctl_table_cell(&t, "%s", node_state_name(n->state));
        ctl_table_cell(&t, "%s", node_admin_name(n->admin));
        ctl_table_cell(&t, "%u", n->weight);
        ctl_table_cell(&t, "%s", new_sessions_why(n));
        ctl_table_cell(&t, "%u", RELAXED(n->active));
        ctl_table_cell(&t, "%u", n->max_sessions);
        ctl_table_cell(&t, "%llu", (unsigned long long)RELAXED(n->sessions_total));
        ctl_table_cell(&t, "%s", n->last_check);
    }
    ctl_table_render(&t, json, out);
    ctl_table_free(&t);
    return 0;
}

struct sessions_ctx {
    struct ctl_table t;
    const struct pool_node *only;
};

static void session_row(void *ctx, const struct session_view *v)
{
    struct sessions_ctx *c = ctx;
    if (c->only && v->node != c->only)
        return;
    ctl_table_cell(&c->t, "%llu", (unsigned long long)v->id);
    ctl_table_cell(&c->t, "%s", v->client);
    ctl_table_cell(&c->t, "%s", v->vip);
    ctl_table_cell(&c->t, "%s", v->node ? v->node->name : "-");
    ctl_table_cell(&c->t, "%s", v->user[0] ? v->user : "-");
    ctl_table_cell(&c->t, "%s", v->database[0] ? v->database : "-");
    ctl_table_cell(&c->t, "%s", v->app[0] ? v->app : "-");
    ctl_table_cell(&c->t, "%s%s", v->state, v->kill_pending ? " (killed at idle)" : "");
    ctl_table_cell(&c->t, "%.1f", (double)v->age_ms / 1000.0);
    ctl_table_cell(&c->t, "%llu", (unsigned long long)v->bytes_in);
    ctl_table_cell(&c->t, "%llu", (unsigned long long)v->bytes_out);
    if (v->backend_pid)
        ctl_table_cell(&c->t, "%u", v->backend_pid);
    else
        ctl_table_cell(&c->t, "-");
}

static int sessions_show(struct lbd *l, int argc, char **argv, bool json, struct metrics_buf *out)
{
    static const char *const cols[] = {"id",
                                       "client",
                                       "vip",
                                       "node",
                                       "user",
                                       "database",
                                       "application",
                                       "state",
                                       "age_s",
                                       "bytes_to_node",
                                       "bytes_to_client",
                                       "backend_pid"};
    struct sessions_ctx c = {.only = NULL};
    if (argc > 0) {
        c.only = node_find(&l->nodes, argv[0]);
        if (c.only == NULL)
            FAIL("no node \"%s\"", argv[0]);
    }
    ctl_table_init(&c.t, cols, sizeof(cols) / sizeof(cols[0]));
    static const size_t numeric[] = {0, 8, 9, 10, 11};
    for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++)
        ctl_table_numeric(&c.t, numeric[i]);
    session_each(l, session_row, &c);
    ctl_table_render(&c.t, json, out);
    ctl_table_free(&c.t);
    return 0;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *v)
{
    char *end = NULL;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end != '\0' || x > max)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

static int nodes_change(struct lbd *l, const char *by, int argc, char **argv, bool json,
                        struct metrics_buf *out)
{
    const char *verb = argv[0];
    if (strcmp(verb, "add") == 0) {
        if (argc < 3 || argc % 2 == 0)
            FAIL("usage: nodes add NAME HOST[:PORT] [weight N] [max_sessions N] [check_port N]");
        struct lbd_node_config nc = {.weight = 1};
        if (strlen(argv[1]) >= sizeof(nc.name) || argv[1][0] == '\0')
            FAIL("a node name of 1 to %zu bytes", sizeof(nc.name) - 1);
        snprintf(nc.name, sizeof(nc.name), "%s", argv[1]);
        /* A literal address: a host name would be resolved here, on the loop (a slow
         * resolver would stop every session); the file's names are resolved off it. */
        if (parse_sockaddr_numeric(argv[2], 5432, &nc.addr) != 0)
            FAIL("\"%s\" is not an IP address with an optional port (host names go in the "
                 "file)",
                 argv[2]);
        for (int i = 3; i + 1 < argc; i += 2) {
            uint32_t v;
            if (strcmp(argv[i], "weight") == 0 && parse_u32(argv[i + 1], 1000, &v) == 0)
                nc.weight = v;
            else if (strcmp(argv[i], "max_sessions") == 0 &&
                     parse_u32(argv[i + 1], 10000000, &v) == 0)
                nc.max_sessions = v;
            else if (strcmp(argv[i], "check_port") == 0 && parse_u32(argv[i + 1], 65535, &v) == 0 &&
                     v > 0)
                nc.check_port = v;
            else
                FAIL("bad option \"%s %s\" (weight 0-1000, max_sessions, check_port 1-65535)",
                     argv[i], argv[i + 1]);
        }
        char err[200];
        if (node_add(&l->nodes, &nc, err, sizeof(err)) != 0)
            FAIL("cannot add node %s: %s", nc.name, err);
        char a[SOCKADDR_STRLEN];
        log_emit(LOG_WARN, "node_added", "node=%s address=%s weight=%u by=%s", nc.name,
                 format_sockaddr((struct sockaddr *)&nc.addr, a, sizeof(a)), nc.weight, by);
        say(l, out, json, "message",
            "node %s (%s) added; it takes sessions once a check passes. Until the next reload "
            "or restart: add it to lbd.pool.nodes in %s to keep it",
            nc.name, a, l->config_path);
        return 0;
    }
    if (argc < 2)
        FAIL("usage: nodes %s NODE%s", verb, strcmp(verb, "weight") == 0 ? " N" : "");
    struct pool_node *n = node_find(&l->nodes, argv[1]);
    if (n == NULL)
        FAIL("no node \"%s\"", argv[1]);
    if (strcmp(verb, "remove") == 0) {
        char err[240];
        if (node_remove(&l->nodes, n, err, sizeof(err)) != 0)
            FAIL("%s", err);
        log_emit(LOG_WARN, "node_removed", "node=%s sessions=0 by=%s", argv[1], by);
        control_state_save(l);
        say(l, out, json, "message",
            "node %s removed. Until the next reload or restart: remove it from lbd.pool.nodes "
            "in %s to keep it out",
            argv[1], l->config_path);
        return 0;
    }
    if (strcmp(verb, "weight") == 0) {
        uint32_t w;
        if (argc != 3 || parse_u32(argv[2], 1000, &w) != 0)
            FAIL("usage: nodes weight NODE N (0 to 1000)");
        uint32_t was = n->weight;
        lbd_lock(l); /* (the workers pick by it) */
        n->weight = w;
        lbd_unlock(l);
        log_emit(LOG_INFO, "node_weight", "node=%s from=%u to=%u file=%u by=%s", n->name, was, w,
                 n->weight_cfg, by);
        control_state_save(l);
        say(l, out, json, "message",
            "node %s weight %u (was %u; the file says %u, which a reload restores only if it "
            "changes there); %s",
            n->name, w, was, n->weight_cfg, lifetime(l));
        return 0;
    }
    enum node_admin a = NODE_ADMIN_READY;
    if (strcmp(verb, "drain") == 0)
        a = NODE_ADMIN_DRAIN;
    else if (strcmp(verb, "disable") == 0)
        a = NODE_ADMIN_DISABLED;
    else if (strcmp(verb, "enable") == 0)
        a = NODE_ADMIN_READY;
    else
        FAIL("unknown command \"nodes %s\" (try help)", verb);
    if (argc != 2)
        FAIL("usage: nodes %s NODE", verb);
    enum node_admin was = n->admin;
    node_set_admin(&l->nodes, n, a, by);
    const char *what =
        a == NODE_ADMIN_READY ? "takes new sessions again when its checks have it up"
        : a == NODE_ADMIN_DISABLED
            ? "takes no new sessions; the open ones stay (sessions kill node NODE ends them)"
        : l->cfg.on_node_drain == LBD_ON_DRAIN_AT_IDLE
            ? "takes no new sessions; the open ones close at their next idle moment (57P01)"
            : "takes no new sessions; the open ones stay (pool.on_node_drain: keep)";
    say(l, out, json, "message", "node %s %s (was %s): %s; %u sessions open; %s", n->name,
        node_admin_name(a), node_admin_name(was), what, RELAXED(n->active), lifetime(l));
    return 0;
}

static int sessions_kill(struct lbd *l, const char *by, int argc, char **argv, bool json,
                         struct metrics_buf *out)
{
    bool now = argc > 0 && strcmp(argv[argc - 1], "now") == 0;
    if (now)
        argc--;
    if (argc == 2 && strcmp(argv[0], "node") == 0) {
        struct pool_node *n = node_find(&l->nodes, argv[1]);
        if (n == NULL)
            FAIL("no node \"%s\"", argv[1]);
        size_t k = session_kill_node(l, n, now);
        log_emit(LOG_WARN, "sessions_killed", "node=%s sessions=%zu when=%s by=%s", n->name, k,
                 now ? "now" : "at_idle", by);
        say(l, out, json, "message", "%zu sessions of node %s killed %s", k, n->name,
            now ? "now" : "at their next idle moment");
        return 0;
    }
    uint64_t id;
    char *end = NULL;
    if (argc != 1 || argv[0][0] < '0' || argv[0][0] > '9' ||
        (id = strtoull(argv[0], &end, 10), *end != '\0'))
        FAIL("usage: sessions kill ID [now] | sessions kill node NODE [now]");
    if (session_kill(l, id, now) != 0)
        FAIL("no client session %llu", (unsigned long long)id);
    log_emit(LOG_WARN, "sessions_killed", "session=%llu when=%s by=%s", (unsigned long long)id,
             now ? "now" : "at_idle", by);
    say(l, out, json, "message", "session %llu killed %s", (unsigned long long)id,
        now ? "now" : "at its next idle moment");
    return 0;
}

static int status_line(struct lbd *l, bool json, struct metrics_buf *out)
{
    static const char *const cols[] = {"instance",
                                       "version",
                                       "uptime_s",
                                       "sessions",
                                       "maxconn",
                                       "nodes",
                                       "nodes_taking_sessions",
                                       "draining",
                                       "peer_missed"};
    struct ctl_table t;
    ctl_table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    for (size_t i = 2; i <= 6; i++)
        ctl_table_numeric(&t, i);
    ctl_table_numeric(&t, 8);
    ctl_table_cell(&t, "%s", l->cfg.instance);
    ctl_table_cell(&t, "%s", PGVIP_VERSION);
    ctl_table_cell(&t, "%llu", (unsigned long long)((clock_wall_ms() - l->started_ms) / 1000));
    ctl_table_cell(&t, "%u", RELAXED(l->n_sessions));
    ctl_table_cell(&t, "%u", l->cfg.maxconn);
    ctl_table_cell(&t, "%zu", l->nodes.pool.n);
    ctl_table_cell(&t, "%zu", pool_count_eligible(&l->nodes.pool));
    ctl_table_cell(&t, "%s", l->draining ? "yes" : "no");
    /* node commands the peer lbd missed, sent again until it takes them */
    ctl_table_cell(&t, "%zu", l->n_peer_pending);
    ctl_table_render(&t, json, out);
    ctl_table_free(&t);
    return 0;
}

static const char help_text[] =
    " nodes [show]                         the pool: health, admin state, weight, sessions\n"
    " nodes drain NODE                     no new sessions; the open ones close at their\n"
    "                                      next idle moment (57P01), never in a transaction\n"
    " nodes disable NODE                   no new sessions; the open ones stay\n"
    " nodes enable NODE                    back to taking sessions (when its checks pass)\n"
    " nodes weight NODE N                  its share of new sessions (0-1000)\n"
    " nodes add NAME IP[:PORT] [weight N] [max_sessions N] [check_port N]\n"
    " nodes remove NODE                    a drained or disabled node without sessions\n"
    " sessions [show] [NODE]               client sessions: who, where, idle or busy\n"
    " sessions kill ID [now]               at its next idle moment, or now\n"
    " sessions kill node NODE [now]        every session of a node\n"
    " status                               this instance in one line (peer_missed: node\n"
    "                                      commands the peer lbd has not taken yet)\n"
    " (--json first: JSON, an object a line per instance. A node command goes to the\n"
    "  peer lbd too when lbd.peer.key_file is set; --local first: this instance only.\n"
    "  Changes need root, lbd's start user or lbd.control.operators.)\n";

static bool is_change(int argc, char **argv)
{
    if (strcmp(argv[0], "nodes") == 0)
        return argc > 1 && strcmp(argv[1], "show") != 0 && strcmp(argv[1], "names") != 0;
    if (strcmp(argv[0], "sessions") == 0)
        return argc > 1 && strcmp(argv[1], "kill") == 0;
    return false;
}

static int peer_send(struct lbd *l, struct ctl_conn *req, const char *by, int argc, char **argv,
                     bool json, struct metrics_buf *out);
static char change_kind(int argc, char **argv);
static void pending_drop(struct lbd *l, const char *node, char kind);

static int handle(void *ctx, struct ctl_conn *req, const struct ctl_caller *who, int argc,
                  char **argv, bool json, struct metrics_buf *out)
{
    struct lbd *l = ctx;
    bool local = argc > 1 && strcmp(argv[0], "--local") == 0;
    if (local) { /* this instance only: not sent to the peer */
        argv++;
        argc--;
    }
    char by[96], cmd[256], q[300];
    ctl_describe(who, argc, argv, by, sizeof(by), cmd, sizeof(cmd));
    bool change = is_change(argc, argv);
    if (change && !ctl_caller_is(who, l->control_uid, l->control_gid)) {
        log_emit(LOG_WARN, "control_refused", "command=%s uid=%d pid=%d comm=%s",
                 log_quote(q, sizeof(q), cmd), (int)who->uid, (int)who->pid, who->comm);
        FAIL("permission denied: \"%s\" changes lbd; it needs root%s%s%s", cmd,
             l->control_uid ? ", the user lbd was started as" : "",
             l->control_gid != (gid_t)-1 ? " or group " : " (or lbd.control.operators)",
             l->control_gid != (gid_t)-1 ? l->cfg.control.operators : "");
    }
    int rc;
    if (strcmp(argv[0], "help") == 0) {
        metrics_printf(out, "%s", help_text);
        rc = 0;
    } else if (strcmp(argv[0], "status") == 0 && argc == 1) {
        rc = status_line(l, json, out);
    } else if (strcmp(argv[0], "nodes") == 0 && (argc == 1 || strcmp(argv[1], "show") == 0)) {
        rc = argc <= 2 ? nodes_show(l, json, out) : -1;
        if (rc)
            FAIL("usage: nodes [show]");
    } else if (strcmp(argv[0], "nodes") == 0 && strcmp(argv[1], "names") == 0) {
        for (size_t i = 0; i < l->nodes.pool.n; i++) /* (for shell completion) */
            metrics_printf(out, "%s\n", l->nodes.pool.nodes[i]->name);
        rc = 0;
    } else if (strcmp(argv[0], "nodes") == 0) {
        rc = nodes_change(l, by, argc - 1, argv + 1, json, out);
        if (rc == 0 && !local && change_kind(argc, argv))
            pending_drop(l, argv[2], change_kind(argc, argv)); /* (superseded) */
        if (rc == 0 && !local)
            rc = peer_send(l, req, by, argc, argv, json, out);
    } else if (strcmp(argv[0], "sessions") == 0 && (argc == 1 || strcmp(argv[1], "show") == 0)) {
        rc = argc <= 3 ? sessions_show(l, argc - 2 > 0 ? argc - 2 : 0, argv + 2, json, out) : -1;
        if (rc && argc > 3)
            FAIL("usage: sessions [show] [NODE]");
    } else if (strcmp(argv[0], "sessions") == 0 && strcmp(argv[1], "kill") == 0) {
        rc = sessions_kill(l, by, argc - 2, argv + 2, json, out);
    } else if (strcmp(argv[0], "sessions") == 0 && argc == 2) {
        rc = sessions_show(l, 1, argv + 1, json, out); /* sessions NODE */
    } else {
        FAIL("unknown command \"%s\" (try help)", cmd);
    }
    if (change)
        log_emit(LOG_INFO, "control", "command=%s%s result=%s uid=%d pid=%d comm=%s",
                 log_quote(q, sizeof(q), cmd), local ? " local=true" : "",
                 rc == 0           ? "ok"
                 : rc == CTL_LATER ? "ok_here_peer_asked"
                                   : "error",
                 (int)who->uid, (int)who->pid, who->comm);
    return rc;
}

static void peer_retry(struct lbd *l);

/* Once a second: a node an operator drains has its busy sessions ended at
 * pool.drain_deadline even when no check result comes (node_drain_check). */
static void on_tick(uv_timer_t *t)
{
    struct lbd *l = t->data;
    for (size_t i = 0; i < l->nodes.pool.n; i++)
        if (l->nodes.pool.nodes[i]->admin == NODE_ADMIN_DRAIN)
            node_drain_check(&l->nodes, l->nodes.pool.nodes[i]);
    peer_retry(l); /* (commands the peer missed) */
}

/* ---- the pair: node commands sent to, and taken from, the peer lbd ----
 *
 * A PGWIRE_CODE_PEER_CONTROL packet on the peer listener (which takes connections from
 * lbd.peer.address only): after the length and the code,
 *   u8 version (1), u8 json, u64 wall-clock ms, 16 random bytes, 32 bytes of
 *   HMAC-SHA256(key, "pgvip-peer-control-1" | the 26 bytes before it | text), text
 * where text is "who\ncommand". Taken when the MAC is right, the time within
 * PEER_SKEW_MS of ours and the 16 bytes not seen among the last 256 taken; answered
 * with a status byte and the answer's text, then closed. */
#define PEER_VERSION 1
#define PEER_HEAD 26 /* version, json, time, nonce */
#define PEER_MAC_AT (8 + PEER_HEAD)
#define PEER_TEXT_AT (PEER_MAC_AT + SHA256_LEN)
#define PEER_SKEW_MS 30000
#define PEER_TIMEOUT_MS 3000
#define PEER_MAX_TEXT 1024
static const char peer_label[] = "pgvip-peer-control-1";

static void peer_mac(const struct lbd *l, const uint8_t *head, const char *text, size_t n,
                     uint8_t *mac)
{
    const void *parts[] = {peer_label, head, text};
    size_t lens[] = {sizeof(peer_label) - 1, PEER_HEAD, n};
    hmac_sha256(l->peer_key, l->peer_key_len, parts, lens, 3, mac);
}

int control_read_key(const char *path, uint8_t *key, size_t *len, char *err, size_t errsize)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errsize, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    if (st.st_mode & S_IROTH) {
        close(fd);
        snprintf(err, errsize, "%s can be read by every user: chmod o-r it (the pair's key)", path);
        return -EPERM;
    }
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n < 16 || (size_t)n > 128) {
        snprintf(err, errsize,
                 "%s: the key must be 16 to 128 bytes (head -c 32 /dev/urandom | base64)", path);
        return -EINVAL;
    }
    memcpy(key, buf, (size_t)n);
    *len = (size_t)n;
    return 0;
}

static size_t peer_answer(uint8_t *ans, size_t size, char status, const char *text, size_t n)
{
    if (size < 2)
        return 0;
    ans[0] = (uint8_t)status;
    if (n > size - 1)
        n = size - 1;
    memcpy(ans + 1, text, n);
    return n + 1;
}

static size_t peer_refuse(struct lbd *l, uint8_t *ans, size_t size, const char *why)
{
    unsigned long long held;
    char msg[200];
    l->peer_ctl_refused++;
    if (log_limit_pass(&l->lim_peer_ctl, clock_wall_ms(), &held))
        log_emit(LOG_WARN, "peer_control_refused", "reason=\"%s\" held_back=%llu", why, held);
    int n =
        snprintf(msg, sizeof(msg), "%s: refused the peer's command: %s\n", l->cfg.instance, why);
    return peer_answer(ans, size, '1', msg, (size_t)n);
}

size_t control_peer_request(struct lbd *l, const uint8_t *body, size_t len, uint8_t *ans,
                            size_t size)
{
    const uint8_t *head = body;
    if (l->peer_key_len == 0)
        return peer_refuse(l, ans, size, "no lbd.peer.key_file here");
    if (len < PEER_TEXT_AT - 8 + 2 || len - (PEER_TEXT_AT - 8) > PEER_MAX_TEXT ||
        head[0] != PEER_VERSION)
        return peer_refuse(l, ans, size, "not a version 1 command");
    const char *text = (const char *)body + (PEER_TEXT_AT - 8);
    size_t tlen = len - (PEER_TEXT_AT - 8);
    uint8_t mac[SHA256_LEN];
    peer_mac(l, head, text, tlen, mac);
    if (ct_memcmp(mac, body + (PEER_MAC_AT - 8), SHA256_LEN) != 0)
        return peer_refuse(l, ans, size, "bad signature (not the same lbd.peer.key_file?)");
    uint64_t ts = be64_get(head + 2), now = clock_wall_ms();
    if (ts + PEER_SKEW_MS < now || ts > now + PEER_SKEW_MS)
        return peer_refuse(l, ans, size, "its time is more than 30 s from ours (clocks in sync?)");
    const uint8_t *nonce = head + 10;
    for (unsigned i = 0; i < 256; i++)
        if (memcmp(l->peer_nonces[i], nonce, 16) == 0)
            return peer_refuse(l, ans, size, "taken before (a replay)");
    memcpy(l->peer_nonces[l->peer_nonce_next++ % 256], nonce, 16);
    /* "who\ncommand", as words */
    char line[PEER_MAX_TEXT + 1], by[160];
    memcpy(line, text, tlen);
    line[tlen] = '\0';
    if (memchr(line, '\0', tlen) != NULL)
        return peer_refuse(l, ans, size, "a NUL in its text");
    char *nl = strchr(line, '\n');
    if (nl == NULL)
        return peer_refuse(l, ans, size, "no command");
    *nl = '\0';
    char q[PEER_MAX_TEXT + 8];
    for (char *c = line; *c; c++) /* (the peer's words, made safe for a log value) */
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '_';
    snprintf(by, sizeof(by), "\"peer %s\"", line);
    char *argv[CTL_MAX_ARGS];
    int argc = 0;
    for (char *w = strtok(nl + 1, " "); w && argc < CTL_MAX_ARGS; w = strtok(NULL, " "))
        argv[argc++] = w;
    if (argc < 2 || strcmp(argv[0], "nodes") != 0 || strcmp(argv[1], "show") == 0)
        return peer_refuse(l, ans, size, "not a node command");
    l->peer_ctl_taken++;
    struct metrics_buf out;
    metrics_init(&out);
    int rc = nodes_change(l, by, argc - 1, argv + 1, head[1] != 0, &out);
    if (rc == 0 && change_kind(argc, argv)) /* (the peer's is the newer: ours is not sent) */
        pending_drop(l, argv[2], change_kind(argc, argv));
    log_emit(LOG_INFO, "control", "command=%s result=%s by=%s", log_quote(q, sizeof(q), nl + 1),
             rc == 0 ? "ok" : "error", by);
    size_t n = out.failed ? 0 : peer_answer(ans, size, rc == 0 ? '0' : '1', out.data, out.len);
    metrics_free(&out);
    return n;
}

struct peer_op {
    uv_tcp_t tcp; /* data = this */
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    struct lbd *l;
    struct ctl_conn *req; /* NULL: a pending command sent again (no one waits) */
    struct metrics_buf *out;
    bool json, finished;
    int handles;
    uint32_t seq;  /* a pending command's (peer_pending.seq) */
    char kind;     /* change_kind: kept when the peer misses it; 0: not kept */
    char node[64]; /* the node it is about */
    char by[96], cmd[PEER_MAX_TEXT];
    char peer[SOCKADDR_STRLEN];
    size_t pkt_len, ans_len;
    uint8_t pkt[PEER_TEXT_AT + PEER_MAX_TEXT];
    char ans[1024];
};

/* ---- node commands the peer missed ----
 *
 * A drain (disable, enable, weight) the peer lbd could not be told, because it was down,
 * restarting or out of reach, is kept, the last one per node and kind (its admin state,
 * its weight), and sent again every PEER_RETRY_MS until the peer answers, so the pair
 * agrees again once it is back. A later change of that kind to that node here (not a
 * --local one) or from the peer drops it: the last command to arrive wins, on both.
 * Kept in memory only (a restart of this lbd forgets them; the answer said the peer was
 * not told). */
#define PEER_RETRY_MS 2000

static struct peer_pending *pending_find(struct lbd *l, const char *node, char kind)
{
    for (size_t i = 0; i < l->n_peer_pending; i++)
        if (l->peer_pending[i].kind == kind && strcmp(l->peer_pending[i].node, node) == 0)
            return &l->peer_pending[i];
    return NULL;
}

static void pending_drop(struct lbd *l, const char *node, char kind)
{
    struct peer_pending *p = pending_find(l, node, kind);
    if (p == NULL)
        return;
    size_t i = (size_t)(p - l->peer_pending);
    memmove(p, p + 1, (l->n_peer_pending - i - 1) * sizeof(*p));
    l->n_peer_pending--;
}

/* Of "nodes VERB NODE ...": 'a' for a change of its admin state, 'w' of its weight, 0
 * for one not kept when the peer misses it (add and remove name the file instead). */
static char change_kind(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[0], "nodes") != 0)
        return 0;
    if (strcmp(argv[1], "drain") == 0 || strcmp(argv[1], "disable") == 0 ||
        strcmp(argv[1], "enable") == 0)
        return 'a';
    return strcmp(argv[1], "weight") == 0 ? 'w' : 0;
}

static void pending_put(struct lbd *l, const struct peer_op *op, const char *why)
{
    struct peer_pending *p = pending_find(l, op->node, op->kind);
    if (p == NULL) {
        if (l->n_peer_pending >= sizeof(l->peer_pending) / sizeof(l->peer_pending[0]))
            return; /* (two per node: not reached) */
        p = &l->peer_pending[l->n_peer_pending++];
    }
    p->kind = op->kind;
    snprintf(p->node, sizeof(p->node), "%s", op->node);
    snprintf(p->cmd, sizeof(p->cmd), "%s", op->cmd);
    snprintf(p->by, sizeof(p->by), "%s", op->by);
    p->since_ms = clock_wall_ms();
    p->seq = ++l->peer_pending_seq;
    char q[200], r[200];
    log_emit(LOG_WARN, "peer_pending",
             "node=%s command=%s peer=%s reason=%s detail=\"sent again every %d s until the "
             "peer lbd takes it\"",
             p->node, log_quote(q, sizeof(q), p->cmd), op->peer, log_quote(r, sizeof(r), why),
             PEER_RETRY_MS / 1000);
}

/* A pending command's try has ended: answered (taken, or refused by the peer for good),
 * or not (tried again later). */
static void retry_done(struct peer_op *op, bool answered)
{
    struct lbd *l = op->l;
    l->peer_retry_busy = false;
    if (!answered)
        return;
    struct peer_pending *p = pending_find(l, op->node, op->kind);
    bool same = p != NULL && p->seq == op->seq; /* (not superseded meanwhile) */
    unsigned long long waited = same ? clock_wall_ms() - p->since_ms : 0;
    char q[200], a[240], aq[300];
    const char *ans = op->ans + 1;
    const char *nl = memchr(ans, '\n', op->ans_len - 1);
    int alen = (int)(nl ? (size_t)(nl - ans) : op->ans_len - 1);
    snprintf(a, sizeof(a), "%.*s", alen, ans);
    if (op->ans[0] == '0') {
        l->peer_caught_up++;
        log_emit(LOG_INFO, "peer_caught_up", "node=%s command=%s peer=%s waited_ms=%llu answer=%s",
                 op->node, log_quote(q, sizeof(q), op->cmd), op->peer, waited,
                 log_quote(aq, sizeof(aq), a));
    } else {
        l->peer_catch_up_refused++;
        log_emit(LOG_WARN, "peer_catch_up_refused",
                 "node=%s command=%s peer=%s answer=%s detail=\"the peer lbd refused it; it is "
                 "not sent again\"",
                 op->node, log_quote(q, sizeof(q), op->cmd), op->peer,
                 log_quote(aq, sizeof(aq), a));
    }
    if (same)
        pending_drop(l, op->node, op->kind);
    l->peer_retry_ms = 0; /* (the peer is back: the next one at once) */
    peer_retry(l);
}

static void op_closed(uv_handle_t *h)
{
    struct peer_op *op = h->data;
    if (--op->handles == 0)
        free(op);
}

/* The peer's answer (or why there is none) goes after ours; the command's status is the
 * worse of the two. */
static void op_finish(struct peer_op *op, const char *failure)
{
    if (op->finished)
        return;
    op->finished = true;
    struct lbd *l = op->l;
    bool answered = failure == NULL && op->ans_len >= 1;
    if (op->req == NULL) {
        retry_done(op, answered);
    } else {
        int rc = 0;
        if (answered) {
            metrics_printf(op->out, "%.*s", (int)(op->ans_len - 1), op->ans + 1);
            rc = op->ans[0] == '0' ? 0 : -1;
        } else {
            rc = -1;
            const char *why = failure ? failure : "it closed without an answer";
            if (op->kind) {
                pending_put(l, op, why);
                say(l, op->out, op->json, "error",
                    "the peer lbd (%s) was not told: %s; this lbd tells it when it is back "
                    "(it tries every %d s; a later change to node %s supersedes this one)",
                    op->peer, why, PEER_RETRY_MS / 1000, op->node);
            } else {
                say(l, op->out, op->json, "error", "the peer lbd (%s) was not told: %s", op->peer,
                    why);
            }
        }
        if (rc != 0)
            l->peer_ctl_failed++;
        ctl_answer(op->req, rc);
    }
    uv_close((uv_handle_t *)&op->tcp, op_closed);
    uv_close((uv_handle_t *)&op->timer, op_closed);
}

static void op_timeout(uv_timer_t *t)
{
    op_finish(t->data, "no answer within 3 s");
}

static void op_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct peer_op *op = h->data;
    *buf = uv_buf_init(op->ans + op->ans_len, (unsigned)(sizeof(op->ans) - op->ans_len));
}

static void op_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct peer_op *op = s->data;
    if (nread == UV_EOF || (nread < 0 && op->ans_len > 0) ||
        op->ans_len + (size_t)(nread > 0 ? nread : 0) >= sizeof(op->ans)) {
        if (nread > 0)
            op->ans_len += (size_t)nread;
        op_finish(op, NULL);
        return;
    }
    if (nread < 0) {
        op_finish(op, uv_strerror((int)nread));
        return;
    }
    op->ans_len += (size_t)nread;
}

static void op_written(uv_write_t *w, int status)
{
    struct peer_op *op = w->data;
    if (status != 0)
        op_finish(op, uv_strerror(status));
}

static void op_connected(uv_connect_t *c, int status)
{
    struct peer_op *op = c->data;
    if (op->finished)
        return;
    if (status != 0) {
        op_finish(op, uv_strerror(status));
        return;
    }
    op->wreq.data = op;
    uv_buf_t b = uv_buf_init((char *)op->pkt, (unsigned)op->pkt_len);
    if (uv_write(&op->wreq, (uv_stream_t *)&op->tcp, &b, 1, op_written) != 0 ||
        uv_read_start((uv_stream_t *)&op->tcp, op_alloc, op_read) != 0)
        op_finish(op, "cannot write");
}

/* Sign op->by and op->cmd for the peer and connect to it. NULL: on its way (op_finish
 * ends it). Otherwise why not; op frees itself once its handles close, or, when it has
 * none open (op->handles 0), the caller frees it. */
static const char *op_start(struct peer_op *op)
{
    struct lbd *l = op->l;
    format_sockaddr((struct sockaddr *)&l->cfg.peer, op->peer, sizeof(op->peer));
    char text[PEER_MAX_TEXT + 1];
    int tn = snprintf(text, sizeof(text), "%s %s\n%s", l->cfg.instance, op->by, op->cmd);
    if (tn >= (int)sizeof(text) - 1)
        tn = (int)sizeof(text) - 1;
    uint8_t *p = op->pkt, *head = p + 8;
    uint32_t total = (uint32_t)(PEER_TEXT_AT + (size_t)tn);
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(total >> (24 - 8 * i));
        p[4 + i] = (uint8_t)(PGWIRE_CODE_PEER_CONTROL >> (24 - 8 * i));
    }
    head[0] = PEER_VERSION;
    head[1] = op->json;
    be64_put(head + 2, clock_wall_ms());
    if (getrandom(head + 10, 16, 0) != 16)
        return "no random bytes";
    peer_mac(l, head, text, (size_t)tn, p + PEER_MAC_AT);
    memcpy(p + PEER_TEXT_AT, text, (size_t)tn);
    op->pkt_len = total;
    /* From our peer listener's address: the peer takes its peer listener's connections
     * from there only. */
    uv_tcp_init(l->loop, &op->tcp);
    uv_timer_init(l->loop, &op->timer);
    op->tcp.data = op->timer.data = op->creq.data = op;
    op->handles = 2;
    int rc = 0;
    if (l->cfg.has_peer_listen) {
        struct sockaddr_storage src = l->cfg.peer_listen;
        ((struct sockaddr_in *)&src)->sin_port = 0; /* (the same offset for IPv6) */
        rc = uv_tcp_bind(&op->tcp, (struct sockaddr *)&src, 0);
    }
    if (rc == 0)
        rc = uv_tcp_connect(&op->creq, &op->tcp, (struct sockaddr *)&l->cfg.peer, op_connected);
    if (rc != 0) {
        op->finished = true;
        uv_close((uv_handle_t *)&op->tcp, op_closed);
        uv_close((uv_handle_t *)&op->timer, op_closed);
        return uv_strerror(rc);
    }
    uv_timer_start(&op->timer, op_timeout, PEER_TIMEOUT_MS, 0);
    return NULL;
}

/* After a node command here: the same command to the peer lbd, its answer after ours. */
static int peer_send(struct lbd *l, struct ctl_conn *req, const char *by, int argc, char **argv,
                     bool json, struct metrics_buf *out)
{
    char peer[SOCKADDR_STRLEN];
    if (!l->cfg.has_peer)
        return 0; /* (a single lbd) */
    format_sockaddr((struct sockaddr *)&l->cfg.peer, peer, sizeof(peer));
    if (l->peer_key_len == 0) {
        say(l, out, json, "note",
            "the peer lbd (%s) was not told: set lbd.peer.key_file on both instances to send "
            "node commands to both (or give this one to the other's pgvipctl too)",
            peer);
        return 0;
    }
    struct peer_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        say(l, out, json, "error", "the peer lbd (%s) was not told: out of memory", peer);
        return -1;
    }
    op->l = l;
    op->req = req;
    op->out = out;
    op->json = json;
    snprintf(op->by, sizeof(op->by), "%s", by); /* (quoted) */
    size_t cn = 0;
    for (int i = 0; i < argc && cn < sizeof(op->cmd); i++)
        cn += (size_t)snprintf(op->cmd + cn, sizeof(op->cmd) - cn, "%s%s", i ? " " : "", argv[i]);
    op->kind = change_kind(argc, argv);
    if (op->kind)
        snprintf(op->node, sizeof(op->node), "%s", argv[2]);
    l->peer_ctl_sent++;
    const char *why = op_start(op);
    if (why != NULL) { /* answered now: no ctl_answer for a command not yet pending */
        l->peer_ctl_failed++;
        if (op->kind)
            pending_put(l, op, why);
        say(l, out, json, "error", "the peer lbd (%s) was not told: %s%s", peer, why,
            op->kind ? "; this lbd tells it when it is back" : "");
        if (op->handles == 0)
            free(op);
        return -1;
    }
    return CTL_LATER;
}

/* Once a second (on_tick): the oldest command the peer missed, again. */
static void peer_retry(struct lbd *l)
{
    if (l->n_peer_pending == 0 || l->peer_retry_busy || l->peer_key_len == 0)
        return;
    uint64_t now = uv_now(l->loop);
    if (l->peer_retry_ms != 0 && now - l->peer_retry_ms < PEER_RETRY_MS)
        return;
    l->peer_retry_ms = now;
    const struct peer_pending *p = &l->peer_pending[0];
    struct peer_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->l = l;
    op->seq = p->seq;
    op->kind = p->kind;
    snprintf(op->node, sizeof(op->node), "%s", p->node);
    snprintf(op->cmd, sizeof(op->cmd), "%s", p->cmd);
    snprintf(op->by, sizeof(op->by), "%s", p->by);
    if (op_start(op) != NULL) {
        if (op->handles == 0)
            free(op);
        return; /* (again at the next tick) */
    }
    l->peer_retry_busy = true;
}

/* ---- lbd.control.state_file ---- */

static int parse_opstate(const char *name, const char *text, void *st, char *err, size_t errsize)
{
    return opstate_parse(name, text, st, err, errsize);
}

int control_state_restore(struct lbd *l)
{
    const char *path = l->cfg.control.state_file;
    if (path[0] == '\0')
        return 0;
    static struct opstate st; /* (start-up only: 64 nodes would crowd the stack) */
    int rc = statefile_load(path, l->cfg.user, "lbd: lbd.control.state_file",
                            "every node starts ready, with the configuration's weight",
                            parse_opstate, &st);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    char q[200];
    for (size_t i = 0; i < st.n; i++) {
        const struct opstate_node *e = &st.nodes[i];
        struct pool_node *n = node_find(&l->nodes, e->name);
        if (n == NULL) {
            log_emit(LOG_WARN, "state_skipped", "node=%s file=%s detail=\"not in lbd.pool.nodes\"",
                     log_quote(q, sizeof(q), e->name), path);
            continue;
        }
        n->admin = e->admin; /* (before any session or check: no hook to run) */
        n->admin_since_ms = clock_wall_ms();
        bool weight = e->weight_set && e->file_weight == n->weight_cfg;
        if (weight)
            n->weight = e->weight;
        log_emit(e->admin == NODE_ADMIN_READY ? LOG_INFO : LOG_WARN, "state_restored",
                 "node=%s admin=%s weight=%u file=%s%s", n->name, node_admin_name(n->admin),
                 n->weight, path,
                 e->weight_set && !weight
                     ? " detail=\"the operator's weight is dropped: the configuration's "
                       "weight for the node has changed since\""
                     : "");
    }
    return 0;
}

void control_state_save(struct lbd *l)
{
    const char *path = l->cfg.control.state_file;
    if (path[0] == '\0')
        return;
    static struct opstate st; /* (the main loop's alone) */
    st.n = 0;
    lbd_lock(l);
    for (size_t i = 0; i < l->nodes.pool.n; i++) {
        const struct pool_node *n = l->nodes.pool.nodes[i];
        if (n->admin == NODE_ADMIN_READY && n->weight == n->weight_cfg)
            continue;
        struct opstate_node *e = &st.nodes[st.n++];
        snprintf(e->name, sizeof(e->name), "%s", n->name);
        e->admin = n->admin;
        e->weight_set = n->weight != n->weight_cfg;
        e->weight = n->weight;
        e->file_weight = n->weight_cfg;
    }
    lbd_unlock(l);
    static char text[POOL_MAX_NODES * 400 + 512];
    size_t len = opstate_render(&st, text, sizeof(text));
    char err[600];
    if (len >= sizeof(text) || statefile_write(path, text, len, err, sizeof(err)) != 0) {
        char q[700];
        l->state_file_failed++;
        log_emit(LOG_ERROR, "state_file_failed",
                 "error=%s detail=\"pgvipctl's changes will not "
                 "survive a restart\"",
                 log_quote(q, sizeof(q), len >= sizeof(text) ? "too long" : err));
    }
}

int control_start(struct lbd *l)
{
    const struct lbd_config *c = &l->cfg;
    if (c->peer_key_file[0]) {
        char err[300];
        if (control_read_key(c->peer_key_file, l->peer_key, &l->peer_key_len, err, sizeof(err)) !=
            0) {
            fprintf(stderr, "lbd: lbd.peer.key_file: %s\n", err);
            return -EINVAL;
        }
    }
    int rc = ctl_config_open(&l->control, l->loop, &c->control, "lbd", handle, l, &l->control_uid,
                             &l->control_gid, &l->control_on);
    if (rc != 0 || !l->control_on)
        return rc;
    uv_timer_init(l->loop, &l->control_timer);
    l->control_timer.data = l;
    uv_timer_start(&l->control_timer, on_tick, CONTROL_TICK_MS, CONTROL_TICK_MS);
    uv_unref((uv_handle_t *)&l->control_timer);
    return 0;
}

void control_stop(struct lbd *l)
{
    if (!l->control_on)
        return;
    l->control_on = false;
    ctl_stop(&l->control);
    uv_close((uv_handle_t *)&l->control_timer, NULL);
}
