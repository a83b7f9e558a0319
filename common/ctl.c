/* ctl.c -- see ctl.h. */
#include "ctl.h"
#include "list.h"

#include "fault.h"
#include "listener.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct ctl_conn {
    uv_pipe_t pipe; /* data = this */
    uv_timer_t timer;
    uv_write_t wreq;
    struct ctl *c;
    struct ctl_conn *prev, *next;
    struct ctl_caller who;
    struct metrics_buf out; /* the answer being made, then written */
    int handles;            /* open libuv handles (+1 while pending); freed at 0 */
    bool writing;           /* an answer is being written: the next line waits */
    bool pending;           /* the handler answers later (CTL_LATER) */
    size_t used;
    char line[CTL_MAX_LINE + 1];
};

static void conn_closed(uv_handle_t *h)
{
    struct ctl_conn *k = h->data;
    if (--k->handles == 0) {
        metrics_free(&k->out);
        free(k);
    }
}

static void conn_close(struct ctl_conn *k)
{
    if (uv_is_closing((uv_handle_t *)&k->pipe))
        return;
    struct ctl *c = k->c;
    LIST_UNLINK(c->conns, k);
    c->n_conns--;
    uv_close((uv_handle_t *)&k->pipe, conn_closed);
    uv_close((uv_handle_t *)&k->timer, conn_closed);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void serve_lines(struct ctl_conn *k);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
    struct ctl_conn *k = req->data;
    metrics_free(&k->out);
    metrics_init(&k->out);
    k->writing = false;
    if (status != 0 || uv_is_closing((uv_handle_t *)&k->pipe)) {
        conn_close(k);
        return;
    }
    uv_read_start((uv_stream_t *)&k->pipe, on_alloc, on_read);
    serve_lines(k); /* a line that came with the last one */
}

/* Split a line into words (spaces and tabs); returns the count, -1 when too many. */
static int split(char *line, char **argv)
{
    int n = 0;
    for (char *p = strtok(line, " \t\r"); p; p = strtok(NULL, " \t\r")) {
        if (n == CTL_MAX_ARGS)
            return -1;
        argv[n++] = p;
    }
    return n;
}

/* Send what the handler wrote, with the %end line. */
static void send_answer(struct ctl_conn *k, int rc)
{
    struct ctl *c = k->c;
    struct metrics_buf *out = &k->out;
    if (rc != 0)
        c->errors++;
    if (out->failed) {
        metrics_free(out);
        metrics_init(out);
        metrics_printf(out, "out of memory\n");
        rc = -1;
    }
    if (out->len && out->data[out->len - 1] != '\n')
        metrics_printf(out, "\n");
    metrics_printf(out, "%%end %s\n", rc == 0 ? "ok" : "error");
    if (out->failed) {
        conn_close(k);
        return;
    }
    k->writing = true;
    k->wreq.data = k;
    uv_buf_t b = uv_buf_init(out->data, (unsigned)out->len);
    if (uv_write(&k->wreq, (uv_stream_t *)&k->pipe, &b, 1, on_written) != 0) {
        k->writing = false;
        conn_close(k);
    }
}

static void answer(struct ctl_conn *k, char *line)
{
    struct ctl *c = k->c;
    char *argv[CTL_MAX_ARGS];
    int argc = split(line, argv), rc = -1;
    bool json = false;
    if (argc > 0 && strcmp(argv[0], "--json") == 0) {
        json = true;
        memmove(argv, argv + 1, sizeof(char *) * (size_t)(argc - 1));
        argc--;
    }
    metrics_free(&k->out);
    metrics_init(&k->out);
    uv_read_stop((uv_stream_t *)&k->pipe); /* one command at a time */
    c->commands++;
    if (argc < 0)
        metrics_printf(&k->out, "too many words (at most %d)\n", CTL_MAX_ARGS);
    else if (argc == 0)
        rc = 0; /* an empty line: an empty answer (a client's keepalive) */
    else
        rc = c->handler(c->ctx, k, &k->who, argc, argv, json, &k->out);
    if (rc == CTL_LATER) {
        k->pending = true;
        k->handles++; /* (the connection's memory stays until ctl_answer) */
        return;
    }
    send_answer(k, rc);
}

void ctl_answer(struct ctl_conn *k, int rc)
{
    if (!k->pending)
        return;
    k->pending = false;
    if (uv_is_closing((uv_handle_t *)&k->pipe)) { /* its client went, or the daemon stops */
        if (--k->handles == 0) {
            metrics_free(&k->out);
            free(k);
        }
        return;
    }
    k->handles--;
    send_answer(k, rc);
}

/* Answer the complete lines read, one at a time (the next when this one is written). */
static void serve_lines(struct ctl_conn *k)
{
    if (k->writing || k->pending || uv_is_closing((uv_handle_t *)&k->pipe))
        return;
    char *nl = memchr(k->line, '\n', k->used);
    if (nl == NULL) {
        if (k->used >= CTL_MAX_LINE) { /* no room left for its end: refuse and close */
            static const char msg[] = "line too long\n%end error\n";
            uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);
            (void)uv_try_write((uv_stream_t *)&k->pipe, &b, 1);
            conn_close(k);
        }
        return;
    }
    size_t len = (size_t)(nl - k->line);
    char cmd[CTL_MAX_LINE + 1];
    memcpy(cmd, k->line, len);
    cmd[len] = '\0';
    memmove(k->line, nl + 1, k->used - len - 1);
    k->used -= len + 1;
    uv_timer_again(&k->timer);
    if (memchr(cmd, '\0', len) != NULL) {
        conn_close(k);
        return;
    }
    answer(k, cmd);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct ctl_conn *k = h->data;
    *buf = uv_buf_init(k->line + k->used, (unsigned)(CTL_MAX_LINE - k->used));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct ctl_conn *k = s->data;
    if (nread < 0) {
        conn_close(k);
        return;
    }
    k->used += (size_t)nread;
    serve_lines(k);
}

static void read_caller(struct ctl_conn *k)
{
    uv_os_fd_t fd;
    struct ucred cr = {0, (uid_t)-1, (gid_t)-1};
    socklen_t len = sizeof(cr);
    k->who.uid = (uid_t)-1;
    k->who.gid = (gid_t)-1;
    snprintf(k->who.comm, sizeof(k->who.comm), "?");
    if (uv_fileno((uv_handle_t *)&k->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return;
    k->who.pid = cr.pid;
    k->who.uid = cr.uid;
    k->who.gid = cr.gid;
    len = sizeof(k->who.groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, k->who.groups, &len) == 0)
        k->who.n_groups = (int)(len / sizeof(gid_t));
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/comm", (int)cr.pid);
    FILE *f = fopen(p, "r");
    if (f) {
        if (fgets(k->who.comm, sizeof(k->who.comm), f))
            k->who.comm[strcspn(k->who.comm, "\n")] = '\0';
        fclose(f);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct ctl *c = server->data;
    if (status < 0)
        return;
    struct ctl_conn *k = fault_hit("ctl_alloc") ? NULL : calloc(1, sizeof(*k));
    if (k == NULL) {
        c->rejected++;
        listener_drop_pending(server);
        return;
    }
    k->c = c;
    metrics_init(&k->out);
    k->pipe.data = k->timer.data = k;
    uv_pipe_init(c->loop, &k->pipe, 0);
    uv_timer_init(c->loop, &k->timer);
    k->handles = 2;
    LIST_PUSH(c->conns, k);
    c->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&k->pipe) != 0) {
        conn_close(k);
        return;
    }
    if (c->n_conns > CTL_MAX_CONNS) {
        /* The oldest connection not answering a command makes room (an idle operator's
         * shell, not a command half-done). */
        struct ctl_conn *old = NULL;
        for (struct ctl_conn *o = c->conns; o; o = o->next)
            if (o != k && !o->writing && !o->pending)
                old = o;
        if (old == NULL) {
            c->rejected++;
            conn_close(k);
            return;
        }
        c->evicted++;
        conn_close(old);
    }
    read_caller(k);
    uv_timer_start(&k->timer, on_timeout, CTL_IDLE_MS, CTL_IDLE_MS);
    uv_read_start((uv_stream_t *)&k->pipe, on_alloc, on_read);
}

int ctl_start(struct ctl *c, uv_loop_t *loop, const char *path, unsigned mode, gid_t gid,
              ctl_handler handler, void *ctx)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->handler = handler;
    c->ctx = ctx;
    if (strlen(path) >= sizeof(c->path) || path[0] == '\0')
        return -ENAMETOOLONG;
    snprintf(c->path, sizeof(c->path), "%s", path);
    /* Another daemon answering on this path keeps it; a stale socket goes. */
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        int rc = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
        close(probe);
        if (rc == 0)
            return -EADDRINUSE;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST; /* never remove a file that is not a socket */
        unlink(path);
    }
    uv_pipe_init(loop, &c->pipe, 0);
    c->pipe.data = c;
    c->open = true;
    /* Created with no access for anyone; opened up to mode once its group is set. */
    mode_t old = umask(0777);
    int rc = uv_pipe_bind(&c->pipe, path);
    umask(old);
    if (rc != 0)
        return rc;
    if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0)
        return -errno;
    if (chmod(path, mode & 0777) != 0)
        return -errno;
    return uv_listen((uv_stream_t *)&c->pipe, 16, on_connection);
}

void ctl_stop(struct ctl *c)
{
    if (!c->open)
        return;
    c->open = false;
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, NULL);
    while (c->conns)
        conn_close(c->conns);
    unlink(c->path); /* (fails once privileges are dropped: the next start replaces it) */
}

void ctl_say(struct metrics_buf *out, bool json, const char *instance, const char *key,
             const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!json) {
        metrics_printf(out, "%s: %s\n", instance, msg);
        return;
    }
    metrics_printf(out, "{\"instance\":");
    metrics_json_str(out, instance);
    metrics_printf(out, ",\"%s\":", key);
    metrics_json_str(out, msg);
    metrics_printf(out, "}\n");
}

void ctl_describe(const struct ctl_caller *who, int argc, char **argv, char *by, size_t bysize,
                  char *cmd, size_t cmdsize)
{
    snprintf(by, bysize, "\"%s pid=%d uid=%d\"", who->comm, (int)who->pid, (int)who->uid);
    cmd[0] = '\0';
    for (int i = 0; i < argc; i++) {
        size_t used = strlen(cmd);
        snprintf(cmd + used, cmdsize - used, "%s%s", i ? " " : "", argv[i]);
    }
}

bool ctl_caller_is(const struct ctl_caller *who, uid_t uid, gid_t gid)
{
    if (who->uid == 0 || who->uid == uid)
        return who->uid != (uid_t)-1;
    if (gid == (gid_t)-1)
        return false;
    if (who->gid == gid)
        return true;
    for (int i = 0; i < who->n_groups; i++)
        if (who->groups[i] == gid)
            return true;
    return false;
}

/* ---- tables ---- */

void ctl_table_init(struct ctl_table *t, const char *const *cols, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->cols = cols;
    t->ncols = ncols;
    t->numeric = calloc(ncols, sizeof(bool));
    t->failed = t->numeric == NULL;
}

void ctl_table_numeric(struct ctl_table *t, size_t i)
{
    if (t->numeric && i < t->ncols)
        t->numeric[i] = true;
}

void ctl_table_cell(struct ctl_table *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **p = realloc(t->cells, cap * sizeof(char *));
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->cells = p;
        t->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (s == NULL) {
        t->failed = 1;
        return;
    }
    /* One line per cell: a newline or tab in a name would break the layout. */
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    t->cells[t->ncells++] = s;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void pad(struct metrics_buf *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        metrics_printf(out, " ");
}

void ctl_table_render(struct ctl_table *t, bool json, struct metrics_buf *out)
{
    if (t->failed) {
        out->failed = 1;
        return;
    }
    size_t rows = t->ncols ? t->ncells / t->ncols : 0;
    if (json) {
        metrics_printf(out, "[");
        for (size_t r = 0; r < rows; r++) {
            metrics_printf(out, "%s{", r ? "," : "");
            for (size_t i = 0; i < t->ncols; i++) {
                const char *v = t->cells[r * t->ncols + i];
                metrics_printf(out, "%s", i ? "," : "");
                metrics_json_str(out, t->cols[i]);
                metrics_printf(out, ":");
                char *end = NULL;
                if (t->numeric[i] && v[0] && (strtod(v, &end), *end == '\0'))
                    metrics_printf(out, "%s", v);
                else if (t->numeric[i] && (v[0] == '\0' || strcmp(v, "-") == 0))
                    metrics_printf(out, "null");
                else
                    metrics_json_str(out, v);
            }
            metrics_printf(out, "}");
        }
        metrics_printf(out, "]\n");
        return;
    }
    size_t w[32] = {0};
    size_t nc = t->ncols < 32 ? t->ncols : 32;
    for (size_t i = 0; i < nc; i++)
        w[i] = width(t->cols[i]);
    for (size_t c = 0; c < rows * t->ncols; c++)
        if (c % t->ncols < nc && width(t->cells[c]) > w[c % t->ncols])
            w[c % t->ncols] = width(t->cells[c]);
    for (size_t i = 0; i < nc; i++) { /* headers centred, as psql does */
        size_t left = (w[i] - width(t->cols[i])) / 2;
        metrics_printf(out, "%s ", i ? "|" : "");
        pad(out, left);
        metrics_printf(out, "%s", t->cols[i]);
        if (i + 1 < nc)
            pad(out, w[i] - width(t->cols[i]) - left + 1);
    }
    metrics_printf(out, "\n");
    for (size_t i = 0; i < nc; i++) {
        metrics_printf(out, "%s", i ? "+" : "");
        for (size_t j = 0; j < w[i] + 2; j++)
            metrics_printf(out, "-");
    }
    metrics_printf(out, "\n");
    for (size_t r = 0; r < rows; r++) {
        for (size_t i = 0; i < nc; i++) {
            const char *v = t->cells[r * t->ncols + i];
            metrics_printf(out, "%s ", i ? "|" : "");
            if (t->numeric[i])
                pad(out, w[i] - width(v));
            metrics_printf(out, "%s", v);
            if (i + 1 < nc && !t->numeric[i])
                pad(out, w[i] - width(v));
            if (i + 1 < nc)
                metrics_printf(out, " ");
        }
        metrics_printf(out, "\n");
    }
    metrics_printf(out, "(%zu row%s)\n", rows, rows == 1 ? "" : "s");
}

void ctl_table_free(struct ctl_table *t)
{
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->numeric);
    memset(t, 0, sizeof(*t));
}
