/* ctl.h -- a daemon's control socket: one command per line on a Unix stream socket,
 * as HAProxy's runtime API and PgBouncer's console take theirs, with no network
 * exposure. pgvipctl is the client.
 *
 * The protocol: the client writes one line (words separated by spaces; a first word
 * "--json" asks for JSON); the daemon answers with text lines and a last line
 * "%end ok" or "%end error". Several commands may follow on one connection. Every
 * answer line of a table starts with a space (psql's layout) and JSON with '[' or '{',
 * so "%end" never begins one.
 *
 * Bounds (the socket's mode decides who can connect, but a local client can still be
 * careless or hostile): CTL_MAX_CONNS connections, the oldest idle one evicted for a new
 * one; a line of at most CTL_MAX_LINE bytes; a connection idle for CTL_IDLE_MS is
 * closed. Each connection knows who is on the other end (SO_PEERCRED, SO_PEERGROUPS):
 * the handler decides what that caller may change and logs it. */
#ifndef COMMON_CTL_H
#define COMMON_CTL_H

#include "metrics.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define CTL_MAX_CONNS 16
#define CTL_MAX_LINE 4096
#define CTL_IDLE_MS 60000
#define CTL_MAX_ARGS 16
#define CTL_MAX_GROUPS 64

/* Who asked: the connecting process's credentials when it connected. */
struct ctl_caller {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    gid_t groups[CTL_MAX_GROUPS]; /* supplementary groups (SO_PEERGROUPS) */
    int n_groups;
    char comm[20]; /* its command name (/proc/PID/comm), "?" when gone */
};

struct ctl_conn;

/* One command: argv[0..argc) (the --json flag removed). Writes the answer into out
 * (without the %end line) and returns 0 (ok) or -1 (error); or CTL_LATER, and then calls
 * ctl_answer(req, rc) once the rest of the answer is in out (out stays valid until
 * then; the connection waits, even if its client has gone). */
#define CTL_LATER 1
typedef int (*ctl_handler)(void *ctx, struct ctl_conn *req, const struct ctl_caller *who, int argc,
                           char **argv, bool json, struct metrics_buf *out);
void ctl_answer(struct ctl_conn *req, int rc);

struct ctl {
    uv_pipe_t pipe; /* data = this */
    uv_loop_t *loop;
    bool open;
    char path[108];
    ctl_handler handler;
    void *ctx;
    struct ctl_conn *conns; /* newest first */
    unsigned n_conns;
    uint64_t commands, errors, evicted, rejected;
};

/* Create the socket at path (a stale one from a killed run is replaced; a live one, a
 * daemon already answering there, is not: -EADDRINUSE), chmod it to mode, chown it to
 * gid (-1: leave it) and listen. 0 or a negative errno; ctl_stop in every case. */
int ctl_start(struct ctl *c, uv_loop_t *loop, const char *path, unsigned mode, gid_t gid,
              ctl_handler handler, void *ctx);
/* Stop listening, close every connection and remove the socket. Safe twice. */
void ctl_stop(struct ctl *c);

/* A one-line answer: "INSTANCE: text", or {"instance": ..., key: "text"} with json. */
void ctl_say(struct metrics_buf *out, bool json, const char *instance, const char *key,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The caller as the logs name it ("\"pgvipctl pid=42 uid=0\"", quoted) and the command's
 * words joined by spaces. */
void ctl_describe(const struct ctl_caller *who, int argc, char **argv, char *by, size_t bysize,
                  char *cmd, size_t cmdsize);

/* Whether the caller is root, has uid, or is in group gid (primary or supplementary;
 * gid (gid_t)-1: no group). */
bool ctl_caller_is(const struct ctl_caller *who, uid_t uid, gid_t gid);

/* A table answered as psql prints one (aligned columns, a header, "(N rows)") or as a
 * JSON array of objects. Cells are copied. */
struct ctl_table {
    size_t ncols, ncells, cap;
    const char *const *cols;
    char **cells;
    bool *numeric; /* per column: right-aligned, a JSON number */
    int failed;
};
void ctl_table_init(struct ctl_table *t, const char *const *cols, size_t ncols);
/* The next cell (row by row); printf-like. */
void ctl_table_cell(struct ctl_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Mark column i as numeric (before rendering). */
void ctl_table_numeric(struct ctl_table *t, size_t i);
void ctl_table_render(struct ctl_table *t, bool json, struct metrics_buf *out);
void ctl_table_free(struct ctl_table *t);

#endif
