/* peerwatch.c -- the peer watch link (see peerwatch.h): a listener that greets the
 * backups watching us, and one connection per master we watch. */
#include "peerwatch.h"

#include "listener.h"
#include "log.h"
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

static void sin_of(uint32_t ip, uint16_t port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(ip);
    sa->sin_port = htons(port);
}

static void schedule_retry(struct peerwatch *pw);

/* ---- watching a master ---- */

static void on_link_closed(uv_handle_t *h)
{
    struct peerwatch_link *k = h->data;
    struct peerwatch *pw = k->pw;
    k->open = false;
    k->armed = false;
    k->hello_len = 0;
    if (!k->wanted || pw->stopped) {
        k->ip = 0;
        return;
    }
    k->backoff_ms = k->backoff_ms ? k->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (k->backoff_ms > BACKOFF_MAX_MS)
        k->backoff_ms = BACKOFF_MAX_MS;
    k->retry_at_ms = uv_now(pw->loop) + k->backoff_ms;
    schedule_retry(pw);
}

static void link_close(struct peerwatch_link *k)
{
    k->armed = false;
    if (k->open && !uv_is_closing((uv_handle_t *)&k->tcp))
        uv_close((uv_handle_t *)&k->tcp, on_link_closed);
}

static void on_link_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct peerwatch_link *k = h->data;
    (void)size;
    if (k->hello_len < sizeof(k->hello))
        *buf = uv_buf_init(k->hello + k->hello_len, (unsigned)(sizeof(k->hello) - k->hello_len));
    else
        *buf = uv_buf_init(k->sink, sizeof(k->sink));
}

/* Take the first line of what a peer sends after the hello: "name INSTANCE". Returns
 * true when it completed one now. */
static bool take_name_line(char *line, size_t *len, bool *done, char *name, size_t namesize,
                           const char *data, size_t n)
{
    if (*done)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n' || *len + 1 >= 48) {
            line[*len] = '\0';
            *done = true;
            if (strncmp(line, "name ", 5) != 0)
                return false;
            size_t o = 0;
            for (const char *p = line + 5; *p && o + 1 < namesize; p++)
                if (*p > ' ' && *p < 0x7f && *p != '"' && *p != '\\')
                    name[o++] = *p;
            name[o] = '\0';
            return true;
        }
        line[(*len)++] = data[i];
    }
    return false;
}

static void say_name(struct peerwatch *pw, uv_stream_t *s, char *buf, size_t size)
{
    if (pw->name[0] == '\0')
        return;
    int n = snprintf(buf, size, "name %s\n", pw->name);
    uv_buf_t b = uv_buf_init(buf, (unsigned)n);
    (void)uv_try_write(s, &b, 1); /* (a few bytes on a fresh connection) */
}

const char *peerwatch_name_of(const struct peerwatch *pw, uint32_t ip)
{
    for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++)
        if (pw->links[i].ip == ip && pw->links[i].armed && pw->links[i].name[0])
            return pw->links[i].name;
    for (size_t i = 0; i < PEERWATCH_MAX_CONNS + PEERWATCH_SPARE; i++)
        if (pw->conns[i].open && pw->conns[i].ip == ip && pw->conns[i].name[0])
            return pw->conns[i].name;
    return NULL;
}

static void on_link_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct peerwatch_link *k = s->data;
    struct peerwatch *pw = k->pw;
    char ip[16];
    const size_t hl = sizeof(PEERWATCH_HELLO) - 1;
    (void)buf;
    if (nread < 0) {
        bool was_armed = k->armed;
        uint32_t who = k->ip;
        link_close(k);
        if (was_armed) {
            char why[96];
            snprintf(why, sizeof(why), "its peer watch link %s",
                     nread == UV_EOF ? "closed" : uv_strerror((int)nread));
            pw->gone_total++;
            pw->gone(pw->arg, who, why);
        } else {
            log_emit(LOG_DEBUG, "peer_watch_lost", "peer=%s detail=\"closed before its hello\"",
                     format_ip4(who, ip, sizeof(ip)));
        }
        return;
    }
    if (k->armed) { /* the master's name line, then nothing */
        take_name_line(k->line, &k->line_len, &k->line_done, k->name, sizeof(k->name), buf->base,
                       (size_t)nread);
        return;
    }
    if ((size_t)nread > sizeof(k->hello) - k->hello_len)
        return;
    k->hello_len += (size_t)nread;
    if (k->hello_len < hl)
        return;
    if (memcmp(k->hello, PEERWATCH_HELLO, hl) != 0) {
        /* Something else listens there: never act on its closing. */
        log_emit(LOG_WARN, "peer_watch_refused",
                 "peer=%s detail=\"not a vrrpd peer watch greeting\"",
                 format_ip4(k->ip, ip, sizeof(ip)));
        k->backoff_ms = BACKOFF_MAX_MS / 2;
        link_close(k);
        return;
    }
    k->hello_len = sizeof(k->hello); /* the rest goes to the sink */
    k->armed = true;
    k->backoff_ms = 0;
    k->line_len = 0;
    k->line_done = false;
    k->name[0] = '\0';
    char said[48];
    say_name(pw, s, said, sizeof(said)); /* the master answers with its own */
    log_emit(LOG_INFO, "peer_watch_up", "peer=%s port=%u", format_ip4(k->ip, ip, sizeof(ip)),
             pw->port);
}

static void on_link_connect(uv_connect_t *req, int status)
{
    struct peerwatch_link *k = req->data;
    char ip[16];
    if (uv_is_closing((uv_handle_t *)&k->tcp))
        return;
    if (status < 0) {
        if (k->backoff_ms == 0) /* once per failing streak, not every retry */
            log_emit(LOG_DEBUG, "peer_watch_unavailable", "peer=%s error=\"%s\"",
                     format_ip4(k->ip, ip, sizeof(ip)), uv_strerror(status));
        link_close(k);
        return;
    }
    uv_read_start((uv_stream_t *)&k->tcp, on_link_alloc, on_link_read);
}

static void link_connect(struct peerwatch *pw, struct peerwatch_link *k)
{
    struct sockaddr_in local, remote;
    k->retry_at_ms = 0;
    if (uv_tcp_init(pw->loop, &k->tcp) != 0)
        return;
    k->open = true;
    k->tcp.data = k;
    k->req.data = k;
    k->hello_len = 0;
    sin_of(pw->self, 0, &local);
    sin_of(k->ip, pw->port, &remote);
    /* From our primary address, which the peer's allowlist knows; not from a VIP. */
    if (uv_tcp_bind(&k->tcp, (struct sockaddr *)&local, 0) != 0 ||
        uv_tcp_connect(&k->req, &k->tcp, (struct sockaddr *)&remote, on_link_connect) != 0)
        link_close(k);
}

static void on_retry(uv_timer_t *t)
{
    struct peerwatch *pw = t->data;
    uint64_t now = uv_now(pw->loop);
    for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++) {
        struct peerwatch_link *k = &pw->links[i];
        if (k->ip && k->wanted && !k->open && k->retry_at_ms <= now)
            link_connect(pw, k);
    }
    schedule_retry(pw);
}

static void schedule_retry(struct peerwatch *pw)
{
    uint64_t next = 0, now = uv_now(pw->loop);
    if (pw->stopped)
        return;
    for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++) {
        const struct peerwatch_link *k = &pw->links[i];
        if (k->ip && k->wanted && !k->open && (next == 0 || k->retry_at_ms < next))
            next = k->retry_at_ms ? k->retry_at_ms : now;
    }
    if (next == 0)
        uv_timer_stop(&pw->retry);
    else
        uv_timer_start(&pw->retry, on_retry, next > now ? next - now : 0, 0);
}

void peerwatch_want(struct peerwatch *pw, const uint32_t *ips, size_t n)
{
    bool changed = false;
    if (pw->stopped)
        return;
    for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++) {
        struct peerwatch_link *k = &pw->links[i];
        bool w = false;
        for (size_t j = 0; j < n && k->ip && !w; j++)
            w = ips[j] == k->ip;
        if (k->ip && k->wanted != w) {
            k->wanted = w;
            changed = true;
        }
    }
    for (size_t j = 0; j < n; j++) {
        struct peerwatch_link *k = NULL, *free_slot = NULL;
        for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++) {
            if (pw->links[i].ip == ips[j])
                k = &pw->links[i];
            else if (pw->links[i].ip == 0 && !pw->links[i].open && free_slot == NULL)
                free_slot = &pw->links[i];
        }
        if (k || free_slot == NULL || ips[j] == 0)
            continue;
        free_slot->pw = pw;
        free_slot->ip = ips[j];
        free_slot->wanted = true;
        free_slot->retry_at_ms = 0;
        free_slot->backoff_ms = 0;
        changed = true;
    }
    if (!changed)
        return;
    for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++) {
        struct peerwatch_link *k = &pw->links[i];
        if (k->ip == 0)
            continue;
        if (!k->wanted) {
            if (k->open)
                link_close(k);
            else
                k->ip = 0;
        }
    }
    schedule_retry(pw);
}

size_t peerwatch_armed(const struct peerwatch *pw)
{
    size_t n = 0;
    for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++)
        n += pw->links[i].armed;
    return n;
}

/* The armed link to the master at ip, or -1. */
static int armed_index(const struct peerwatch *pw, uint32_t ip)
{
    for (int i = 0; i < PEERWATCH_MAX_LINKS; i++)
        if (ip && pw->links[i].ip == ip && pw->links[i].armed)
            return i;
    return -1;
}

bool peerwatch_is_armed(const struct peerwatch *pw, uint32_t ip)
{
    return armed_index(pw, ip) >= 0;
}

int peerwatch_probe(struct peerwatch *pw, uint32_t ip)
{
    int i = armed_index(pw, ip);
    if (i < 0)
        return -ENOTCONN;
    uv_buf_t b = uv_buf_init((char *)"?", 1);
    int rc = uv_try_write((uv_stream_t *)&pw->links[i].tcp, &b, 1);
    if (rc < 0)
        return rc; /* a full send buffer: the probes before this one are unanswered */
    pw->probes++;
    return 0;
}

uint64_t peerwatch_acked_at(const struct peerwatch *pw, uint32_t ip, uint64_t now)
{
    int i = armed_index(pw, ip);
    uv_os_fd_t fd;
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (i < 0 || uv_fileno((const uv_handle_t *)&pw->links[i].tcp, &fd) != 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ti.tcpi_last_ack_recv > now)
        return 0;
    return now - ti.tcpi_last_ack_recv;
}

/* ---- being watched ---- */

static void on_conn_closed(uv_handle_t *h)
{
    struct peerwatch_conn *c = h->data;
    c->open = c->closing = false;
}

static void conn_close(struct peerwatch_conn *c)
{
    if (c->open && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    }
}

static void on_conn_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct peerwatch_conn *c = h->data;
    (void)size;
    *buf = uv_buf_init(c->sink, sizeof(c->sink));
}

static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct peerwatch_conn *c = s->data;
    if (nread < 0) { /* the watcher left (it took over, or ended) */
        conn_close(c);
        return;
    }
    /* Its name line gets ours back; the probes after it are not looked at. */
    if (take_name_line(c->line, &c->line_len, &c->line_done, c->name, sizeof(c->name), buf->base,
                       (size_t)nread))
        say_name(c->pw, s, c->reply, sizeof(c->reply));
}

static void on_hello_written(uv_write_t *req, int status)
{
    if (status < 0 && status != UV_ECANCELED)
        conn_close(req->data);
}

void peerwatch_heard(struct peerwatch *pw, uint32_t ip, uint64_t now)
{
    size_t slot = 0;
    for (size_t i = 0; i < PEERWATCH_HEARD; i++) {
        if (pw->heard[i] == ip) {
            pw->heard_ms[i] = now;
            return;
        }
        if (pw->heard_ms[i] < pw->heard_ms[slot])
            slot = i;
    }
    pw->heard[slot] = ip;
    pw->heard_ms[slot] = now;
}

static bool is_heard(const struct peerwatch *pw, uint32_t ip, uint64_t now)
{
    for (size_t i = 0; i < PEERWATCH_HEARD; i++)
        if (pw->heard[i] == ip && pw->heard_ms[i] && now - pw->heard_ms[i] < PEERWATCH_HEARD_MS)
            return true;
    return false;
}

static bool is_configured(const struct peerwatch *pw, uint32_t ip)
{
    for (size_t i = 0; i < pw->n_peers; i++)
        if (pw->peers[i] == ip)
            return true;
    return false;
}

/* Why the new connection from ip may not stay (NULL: it may), making room if need be. */
static const char *admit(struct peerwatch *pw, const struct peerwatch_conn *new, uint32_t ip)
{
    uint64_t now = uv_now(pw->loop);
    if (pw->n_peers && !is_configured(pw, ip))
        return "not a configured peer";
    size_t live = 0, mine = 0;
    struct peerwatch_conn *victim = NULL;
    for (size_t i = 0; i < PEERWATCH_MAX_CONNS + PEERWATCH_SPARE; i++) {
        struct peerwatch_conn *c = &pw->conns[i];
        if (!c->open || c->closing || c == new)
            continue;
        live++;
        mine += c->ip == ip;
        if (!is_heard(pw, c->ip, now) && !is_configured(pw, c->ip) &&
            (victim == NULL || c->since_ms < victim->since_ms))
            victim = c;
    }
    if (mine >= PEERWATCH_PER_SOURCE)
        return "too many connections from this address";
    if (live < PEERWATCH_MAX_CONNS)
        return NULL;
    if (victim == NULL)
        return "every slot holds a peer";
    pw->evicted++;
    conn_close(victim);
    return NULL;
}

static void refused(struct peerwatch *pw, uint32_t ip, const char *why)
{
    uint64_t now = uv_now(pw->loop);
    char ips[16];
    pw->refused++;
    if (pw->last_refused_log_ms && now - pw->last_refused_log_ms < 1000)
        return;
    pw->last_refused_log_ms = now;
    log_emit(LOG_WARN, "peer_watch_refused", "from=%s reason=\"%s\" refused_total=%llu",
             format_ip4(ip, ips, sizeof(ips)), why, (unsigned long long)pw->refused);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct peerwatch *pw = server->data;
    struct peerwatch_conn *c = NULL;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uint32_t ip = 0;
    char ips[16];
    if (status < 0)
        return;
    /* (PEERWATCH_SPARE slots beyond the limit: one is free unless evicted connections
     * are still closing.) */
    for (size_t i = 0; i < PEERWATCH_MAX_CONNS + PEERWATCH_SPARE && c == NULL; i++)
        if (!pw->conns[i].open)
            c = &pw->conns[i];
    if (c == NULL || uv_tcp_init(pw->loop, &c->tcp) != 0) {
        listener_drop_pending(server);
        refused(pw, 0, "no free slot");
        return;
    }
    c->pw = pw;
    c->open = true;
    c->closing = false;
    c->ip = 0;
    c->line_len = 0;
    c->line_done = false;
    c->name[0] = '\0';
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    const char *why = "not IPv4";
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
        ip = ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr);
        why = admit(pw, c, ip);
    }
    if (why != NULL) {
        conn_close(c);
        refused(pw, ip, why);
        return;
    }
    pw->accepted++;
    c->ip = ip;
    c->since_ms = uv_now(pw->loop);
    c->wreq.data = c;
    uv_buf_t b = uv_buf_init((char *)PEERWATCH_HELLO, sizeof(PEERWATCH_HELLO) - 1);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_hello_written) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_conn_alloc, on_conn_read) != 0)
        conn_close(c);
    log_emit(LOG_DEBUG, "peer_watch_accepted", "from=%s", format_ip4(ip, ips, sizeof(ips)));
}

size_t peerwatch_watchers(const struct peerwatch *pw)
{
    size_t n = 0;
    for (size_t i = 0; i < PEERWATCH_MAX_CONNS + PEERWATCH_SPARE; i++)
        n += pw->conns[i].open && !pw->conns[i].closing;
    return n;
}

/* ---- life ---- */

int peerwatch_start(struct peerwatch *pw, uv_loop_t *loop, uint32_t self, uint16_t port,
                    const uint32_t *peers, size_t n_peers, peerwatch_gone_cb gone, void *arg)
{
    struct sockaddr_in sa;
    memset(pw, 0, sizeof(*pw));
    pw->loop = loop;
    pw->self = self;
    pw->port = port;
    pw->peers = peers;
    pw->n_peers = n_peers;
    pw->gone = gone;
    pw->arg = arg;
    for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++)
        pw->links[i].pw = pw;
    for (size_t i = 0; i < PEERWATCH_MAX_CONNS + PEERWATCH_SPARE; i++)
        pw->conns[i].pw = pw;
    uv_timer_init(loop, &pw->retry);
    pw->retry.data = pw;
    uv_tcp_init(loop, &pw->listener);
    pw->listener.data = pw;
    pw->listening = true;
    sin_of(self, port, &sa);
    int rc = uv_tcp_bind(&pw->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&pw->listener, 16, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&pw->listener, NULL);
        pw->listening = false;
    }
    return rc;
}

void peerwatch_stop(struct peerwatch *pw)
{
    if (pw->stopped || pw->loop == NULL)
        return;
    pw->stopped = true;
    for (size_t i = 0; i < PEERWATCH_MAX_LINKS; i++) {
        pw->links[i].wanted = false;
        link_close(&pw->links[i]);
    }
    for (size_t i = 0; i < PEERWATCH_MAX_CONNS + PEERWATCH_SPARE; i++)
        conn_close(&pw->conns[i]);
    if (pw->listening)
        uv_close((uv_handle_t *)&pw->listener, NULL);
    pw->listening = false;
    uv_close((uv_handle_t *)&pw->retry, NULL);
}
