/* lbd.c -- the lbd daemon's lifecycle: start (listeners that may bind a VIP this host
 * does not hold yet), node states, SIGHUP reload without dropping sessions, SIGTERM
 * drain, and the small shared helpers (buffers, clock, random). */
#include "lbd.h"
#include "session.h"
#include "reuse.h"
#include "checker.h"
#include "vipwatch.h"
#include "liveness.h"
#include "control.h"
#include "admin.h"
#include "worker.h"

#include "listener.h"
#include "log.h"
#include "parse.h"
#include "sdnotify.h"

#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

uint32_t lbd_secret_key(void)
{
    uint32_t k;
    /* (Blocks only before the kernel's pool is seeded at boot; a short read cannot
     * happen for 4 bytes.) */
    while (getrandom(&k, sizeof(k), 0) != (ssize_t)sizeof(k))
        ;
    return k;
}

bool lbd_error_is_local(int err)
{
    return err == UV_EMFILE || err == UV_ENFILE || err == UV_ENOBUFS || err == UV_ENOMEM ||
           err == UV_EADDRNOTAVAIL || err == UV_EAGAIN;
}

bool lbd_io_waiting(const uv_handle_t *h, bool connecting)
{
    uv_os_fd_t fd;
    if (uv_fileno(h, &fd) != 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    if (poll(&p, 1, 0) != 1)
        return false;
    return (p.revents & (POLLIN | POLLERR | POLLHUP)) || (connecting && (p.revents & POLLOUT));
}

bool lbd_fd_room(const struct lbd *l, uint64_t need)
{
    if (l->fd_limit == 0)
        return true;
    /* Kept back for what is not counted: the loop, signals, listeners, the liveness
     * and log files, the admin's clients (32 at most). A small limit keeps an eighth. */
    uint64_t base = l->fd_limit >= 512 ? 64 : 8 + l->fd_limit / 8;
    /* (Totals the workers change: read relaxed, an estimate either way.) */
    uint64_t held = base + 2ull * RELAXED(l->n_sessions) + 4ull * RELAXED(l->n_bulk) +
                    RELAXED(l->n_parked) + RELAXED(l->guard.inflight) + RELAXED(l->nodes.pool.n);
    return held + need <= l->fd_limit;
}

static void guard_limits_from(const struct lbd_config *c, struct guard_limits *g)
{
    g->cancel_inflight = c->cancel_inflight;
    g->cancel_rate = c->cancel_rate;
    g->cancel_source_rate = c->cancel_source_rate;
    g->cancel_window_ms = c->cancel_window_ms;
    g->startup_per_source = c->startup_per_source;
}

static void tune_fd(const struct lbd_config *c, int fd)
{
    int one = 1, zero = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->keepalive_ms == 0) {
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &zero, sizeof(zero));
        return;
    }
    int idle = (int)((c->keepalive_ms + 999) / 1000);
    int intvl = idle > 10 ? 10 : idle, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

void lbd_tune_socket(const struct lbd_config *c, uv_tcp_t *t)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)t, &fd) == 0)
        tune_fd(c, fd);
}

/* The same options on a listening socket (and its quiesce twin): Linux copies
 * TCP_NODELAY and the keepalive settings to the sockets accept() returns, which saves
 * five system calls per client session. Again after a reload, for the keepalive time. */
static void tune_listener(struct lbd *l, struct lbd_listener *ls)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&ls->tcp, &fd) == 0)
        tune_fd(&l->cfg, fd);
    if (ls->twin_fd >= 0)
        tune_fd(&l->cfg, ls->twin_fd);
}

/* ---- what a node's change means for the rest of lbd (node.h's hooks) ---- */

static void on_node_state(void *ctx, struct pool_node *n)
{
    struct lbd *l = ctx;
    if (n->state != NODE_UP)
        reuse_close_node(l, n, "node_down");
    if (n->state != NODE_UP && l->cfg.on_node_down == LBD_ON_DOWN_CUT)
        session_cut_node(l, n, "node_down");
    else if (n->state == NODE_DRAINING)
        session_drain_node(l, n);
}

static void on_node_admin(void *ctx, struct pool_node *n)
{
    struct lbd *l = ctx;
    if (n->admin != NODE_ADMIN_READY)
        reuse_close_node(l, n, "node_admin");
    if (n->admin == NODE_ADMIN_DRAIN)
        session_drain_node(l, n); /* (the busy ones at their next idle moment) */
    control_state_save(l);
}

static void on_node_drain_due(void *ctx, struct pool_node *n)
{
    session_drain_deadline(ctx, n);
}

static void on_node_added(void *ctx, struct pool_node *n)
{
    check_start(ctx, n);
}

static void on_node_dropped(void *ctx, struct pool_node *n)
{
    reuse_close_node(ctx, n, "node_removed");
    check_stop(ctx, n);
}

/* The nodes' settings from the configuration, at start and after a reload. */
static void nodes_configure(struct lbd *l)
{
    struct nodes *ns = &l->nodes;
    ns->rise = l->cfg.rise;
    ns->fall = l->cfg.fall;
    ns->drain_deadline_ms = l->cfg.drain_deadline_ms;
    ns->checked = l->cfg.check_type != LBD_CHECK_NONE;
    ns->ctx = l;
    ns->on_state = on_node_state;
    ns->on_admin = on_node_admin;
    ns->on_drain_due = on_node_drain_due;
    ns->on_added = on_node_added;
    ns->on_dropped = on_node_dropped;
}

/* ---- listeners ---- */

static void accept_resume(uv_prepare_t *p);

struct handed {
    int fd;
    bool peer;
    struct sockaddr_storage addr; /* the listener's */
};

static void adopt_handed(struct lbd_worker *w, void *arg)
{
    struct handed *h = arg;
    session_adopt(w, h->fd, h->peer, &h->addr);
    free(h);
}

/* Give an accepted connection (fd) to the worker with the fewest sessions (worker.h);
 * ls: the listener it came from. */
static void hand_fd(struct lbd_listener *ls, int fd)
{
    struct lbd_worker *w = workers_pick(ls->lbd);
    struct handed *h = w->index == 0 ? NULL : malloc(sizeof(*h));
    if (h != NULL) {
        h->fd = fd;
        h->peer = ls->peer;
        h->addr = ls->addr;
        if (worker_post(w, adopt_handed, h))
            return;
        free(h);
        __atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
        w = &ls->lbd->workers[0]; /* (no memory for the message: served here) */
        __atomic_add_fetch(&w->load, 1, __ATOMIC_RELAXED);
    }
    session_adopt(w, fd, ls->peer, &ls->addr);
}

/* The connection libuv holds for ls: worker 0 takes it into a handle (outside the
 * connection callback, a deferred one, it must: uv_accept watches the listener again). */
static void accept_here(struct lbd_listener *ls)
{
    struct lbd_worker *w0 = &ls->lbd->workers[0];
    __atomic_add_fetch(&w0->load, 1, __ATOMIC_RELAXED);
    session_accept(ls, w0);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct lbd_listener *ls = server->data;
    struct lbd *l = ls->lbd;
    struct lbd_worker *w0 = &l->workers[0];
    if (status < 0) {
        /* (libuv has accepted and closed the connection with its reserve descriptor
         * when out of them: EMFILE/ENFILE.) */
        unsigned long long held;
        STAT_INC(w0->stats.accept_failed);
        if (lbd_log_pass(w0->lbd, &w0->lbd->lim_accept, &held))
            log_emit(LOG_WARN, "accept_failed", "error=\"%s\" held_back=%llu", uv_strerror(status),
                     held);
        return;
    }
    if (l->accepted_this_turn >= LBD_MAXACCEPT) {
        /* Leave it with libuv, which stops watching this listener until the next
         * turn's accept_resume takes it. */
        ls->deferred = true;
        return;
    }
    l->accepted_this_turn++;
    if (l->n_workers == 1 || ls->peer) {
        /* (The peer's connections, cancels and signed node commands, are served here:
         * a node command changes nodes, which only worker 0 does.) */
        accept_here(ls);
        return;
    }
    int fd = listener_take_pending(server);
    if (fd >= 0)
        hand_fd(ls, fd);
}

/* A new loop turn: accepting starts again, first with the connections left waiting. */
static void accept_resume(uv_prepare_t *p)
{
    struct lbd *l = p->data;
    l->accepted_this_turn = 0;
    for (struct lbd_listener *ls = l->listeners; ls; ls = ls->next) {
        if (ls->deferred) {
            ls->deferred = false;
            l->accepted_this_turn++;
            accept_here(ls); /* (uv_accept watches the listener again) */
        }
    }
}

static int twin_open(const struct sockaddr_storage *addr);

/* Bind with IP_FREEBIND so lbd can listen on a VIP before vrrpd adds it here. */
static int listener_open(struct lbd *l, const struct sockaddr_storage *addr, bool peer)
{
    char a[SOCKADDR_STRLEN];
    format_sockaddr((const struct sockaddr *)addr, a, sizeof(a));
    int one = 1;
    /* The listener uses SO_REUSEPORT (for its quiesce twin), which would let a second
     * lbd on the same address share it silently: probe with a plain socket first. */
    int probe = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(probe, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
        int rc =
            bind(probe, (const struct sockaddr *)addr, sockaddr_len((const struct sockaddr *)addr));
        int e = errno;
        close(probe);
        if (rc != 0) {
            fprintf(stderr, "lbd: cannot listen on %s: %s\n", a, strerror(e));
            return -e;
        }
    }
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
    if (!peer) /* the quiesce twin shares the address */
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)addr, sockaddr_len((const struct sockaddr *)addr)) != 0) {
        int e = errno;
        close(fd);
        fprintf(stderr, "lbd: cannot listen on %s: %s\n", a, strerror(e));
        return -e;
    }
    struct lbd_listener *ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        close(fd);
        return -ENOMEM;
    }
    ls->lbd = l;
    ls->addr = *addr;
    ls->peer = peer;
    ls->twin_fd = peer ? -1 : twin_open(addr);
    ls->paused_fd = -1;
    ls->tcp.data = ls;
    uv_tcp_init(l->loop, &ls->tcp);
    int rc = uv_tcp_open(&ls->tcp, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ls->tcp, 4096, on_connection);
    if (rc != 0) {
        fprintf(stderr, "lbd: cannot listen on %s: %s\n", a, uv_strerror(rc));
        uv_close((uv_handle_t *)&ls->tcp, (uv_close_cb)free);
        return rc;
    }
    ls->next = l->listeners;
    l->listeners = ls;
    tune_listener(l, ls);
    log_emit(LOG_INFO, "listen", "address=%s role=%s", a, peer ? "cancel_peer" : "clients");
    return 0;
}

/* The quiesce twin of a client listener: bound now (as root, with the same options) with
 * a drop-all socket filter, listening only when a handover begins. Attaching a filter
 * may need CAP_NET_ADMIN (kernel.unprivileged_bpf_disabled), so it is done here, before
 * lbd gives up its privileges; listen() later needs none. */
static int twin_open(const struct sockaddr_storage *addr)
{
    struct sock_filter drop[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
    struct sock_fprog prog = {.len = 1, .filter = drop};
    int one = 1;
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0 ||
        bind(fd, (const struct sockaddr *)addr, sockaddr_len((const struct sockaddr *)addr)) != 0) {
        log_emit(LOG_WARN, "quiesce_unavailable", "error=\"%s\"", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Stop taking new connections without refusing them: the twin starts listening (it
 * joins the SO_REUSEPORT group, and its filter drops every SYN silently), what the real
 * listener has queued is accepted, and the real listener closes. A client's TCP then
 * retransmits its SYN a second later, by when the VIP has moved. An RST would fail the
 * attempt; a session set up here now would be cut when the VIP moves. */
static void quiet_forget(struct lbd_listener *ls);

static void listeners_quiesce(struct lbd *l)
{
    struct lbd_listener **pp = &l->listeners;
    uv_timer_stop(&l->quiet_timer);
    while (*pp) {
        struct lbd_listener *ls = *pp;
        uv_os_fd_t fd;
        if (ls->quiet) { /* paused for a handover: its twin drops already */
            quiet_forget(ls);
            l->quiesced_fds[l->n_quiesced++] = ls->twin_fd;
            ls->twin_fd = -1;
            *pp = ls->next;
            if (ls->closing)
                ls->orphan = true; /* on_paused_closed frees it */
            else
                free(ls);
            continue;
        }
        if (ls->peer || ls->twin_fd < 0 || listen(ls->twin_fd, 64) != 0 ||
            uv_fileno((uv_handle_t *)&ls->tcp, &fd) != 0) {
            pp = &ls->next;
            continue;
        }
        int c;
        if (ls->deferred) { /* the one libuv holds */
            ls->deferred = false;
            accept_here(ls);
        }
        while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
            hand_fd(ls, c);
        l->quiesced_fds[l->n_quiesced++] = ls->twin_fd;
        ls->twin_fd = -1;
        *pp = ls->next;
        uv_close((uv_handle_t *)&ls->tcp, (uv_close_cb)free);
    }
}

/* A VIP's listener paused for a handover (quiesce_address): its quiesce twin
 * listens, with the drop-all filter root attached at start, and the listener itself stops
 * listening (shutdown(SHUT_RD) of a listening socket; its bound port stays, so listen()
 * resumes it), held on a descriptor of its own while libuv lets go of its handle. Nothing
 * here needs a privilege, so lbd running as its user can do it. */
static void quiet_resume(struct lbd *l, struct lbd_listener *ls)
{
    char a[SOCKADDR_STRLEN];
    format_sockaddr((struct sockaddr *)&ls->addr, a, sizeof(a));
    int rc = listen(ls->paused_fd, 4096) == 0 ? 0 : -errno;
    if (rc == 0) {
        ls->tcp.data = ls;
        uv_tcp_init(l->loop, &ls->tcp);
        rc = uv_tcp_open(&ls->tcp, ls->paused_fd);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&ls->tcp, 4096, on_connection);
    }
    shutdown(ls->twin_fd, SHUT_RD); /* the twin stops dropping: bound, not listening */
    ls->paused_fd = -1;
    ls->quiet = false;
    if (rc != 0)
        log_emit(LOG_ERROR, "quiesce_resume_failed", "address=%s error=\"%s\"", a, uv_strerror(rc));
    else
        log_emit(LOG_INFO, "quiesce_end", "address=%s", a);
}

static void on_quiet_end(uv_timer_t *t)
{
    struct lbd *l = t->data;
    for (struct lbd_listener *ls = l->listeners; ls; ls = ls->next) {
        if (ls->quiet && !ls->closing)
            quiet_resume(l, ls);
        else if (ls->quiet)
            ls->resume_due = true;
    }
}

static void on_paused_closed(uv_handle_t *h)
{
    struct lbd_listener *ls = h->data;
    if (ls->orphan) { /* stopped meanwhile: no longer listed */
        free(ls);
        return;
    }
    ls->closing = false;
    if (ls->quiet && ls->resume_due)
        quiet_resume(ls->lbd, ls); /* the quiet ended before libuv let go */
}

static void quiesce_address(struct lbd *l, const struct sockaddr_storage *ip, uint64_t ms)
{
    for (struct lbd_listener *ls = l->listeners; ls; ls = ls->next) {
        uv_os_fd_t fd;
        if (ls->peer || ls->quiet || ls->twin_fd < 0 ||
            !sockaddr_ip_equal((const struct sockaddr *)&ls->addr, (const struct sockaddr *)ip) ||
            uv_fileno((uv_handle_t *)&ls->tcp, &fd) != 0)
            continue;
        char a[SOCKADDR_STRLEN];
        format_sockaddr((struct sockaddr *)&ls->addr, a, sizeof(a));
        int keep = dup(fd);
        if (keep < 0 || listen(ls->twin_fd, 64) != 0) {
            log_emit(LOG_WARN, "quiesce_failed", "address=%s error=\"%s\"", a, strerror(errno));
            if (keep >= 0)
                close(keep);
            continue;
        }
        /* What completed its handshake already is served here. */
        if (ls->deferred) {
            ls->deferred = false;
            accept_here(ls);
        }
        int c;
        while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
            hand_fd(ls, c);
        ls->quiet = true;
        ls->closing = true;
        ls->resume_due = false;
        ls->paused_fd = keep;
        uv_close((uv_handle_t *)&ls->tcp, on_paused_closed);
        shutdown(keep, SHUT_RD); /* stops listening; the port stays bound */
        log_emit(LOG_INFO, "quiesce",
                 "address=%s ms=%llu reason=\"vrrpd hands the VIP over: new "
                 "connections wait for the new holder\"",
                 a, (unsigned long long)ms);
    }
    uv_timer_start(&l->quiet_timer, on_quiet_end, ms, 0);
}

/* A listener paused at shutdown or stop: its twin drops (or closes), its socket closes. */
static void quiet_forget(struct lbd_listener *ls)
{
    if (ls->paused_fd >= 0)
        close(ls->paused_fd);
    ls->paused_fd = -1;
}

static void listeners_close(struct lbd *l)
{
    struct lbd_listener *ls = l->listeners;
    while (ls) {
        struct lbd_listener *next = ls->next;
        if (ls->twin_fd >= 0)
            close(ls->twin_fd);
        if (ls->quiet) { /* paused: its handle is closed (or closing) already */
            quiet_forget(ls);
            if (ls->closing)
                ls->orphan = true;
            else
                free(ls);
        } else {
            uv_close((uv_handle_t *)&ls->tcp, (uv_close_cb)free);
        }
        ls = next;
    }
    l->listeners = NULL;
    for (size_t i = 0; i < l->n_quiesced; i++)
        close(l->quiesced_fds[i]);
    l->n_quiesced = 0;
}

/* ---- shutdown ---- */

static void finish(struct lbd *l)
{
    struct lbd_stats total;
    lbd_stats_total(l, &total);
    log_emit(LOG_INFO, "stop", "sessions_total=%llu", (unsigned long long)total.sessions_total);
    listeners_close(l);
    admin_stop(l);
    control_stop(l);
    liveness_stop(l);
    vipwatch_stop(l);
    for (size_t i = 0; i < l->nodes.pool.n; i++)
        node_drop(&l->nodes, l->nodes.pool.nodes[i]);
    l->nodes.pool.n = 0;
    uv_timer_stop(&l->drain_timer);
    uv_close((uv_handle_t *)&l->drain_timer, NULL);
    uv_close((uv_handle_t *)&l->accept_turn, NULL);
    uv_timer_stop(&l->reload_timer);
    uv_close((uv_handle_t *)&l->reload_timer, NULL);
    uv_close((uv_handle_t *)&l->quiet_timer, NULL);
    uv_close((uv_handle_t *)&l->quiet_wait_timer, NULL);
    l->stopped = true; /* (a reload still on the thread pool is dropped when it ends) */
    daemon_signals_close(&l->signals);
    workers_stop(l); /* (last: the hooks above ask every worker) */
}

static void sessions_gone(struct lbd *l)
{
    /* During the handover window the listeners still accept: not done yet. */
    if (l->draining && RELAXED(l->n_sessions) == 0 && l->listeners == NULL && l->n_quiesced == 0 &&
        !daemon_signals_closed(&l->signals))
        finish(l);
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct lbd *l = t->data;
    log_emit(LOG_WARN, "drain_timeout", "sessions=%u", RELAXED(l->n_sessions));
    session_close_all(l, "shutdown");
    sessions_gone(l);
}

static void drain_sessions(struct lbd *l)
{
    listeners_close(l);
    if (l->n_sessions == 0) {
        finish(l);
        return;
    }
    uv_timer_start(&l->drain_timer, on_drain_timeout, l->cfg.drain_ms, 0);
}

static void on_handover_done(uv_timer_t *t)
{
    struct lbd *l = t->data;
    log_emit(LOG_INFO, "handover_done", "sessions=%u detail=\"listeners close; sessions drain\"",
             RELAXED(l->n_sessions));
    drain_sessions(l);
}

/* The handover of a planned stop begins: vrrpd is told lbd drains and hands the VIPs to
 * the peer; timeouts.handover later the listeners close and open sessions finish for
 * timeouts.drain. */
static void handover_begin(struct lbd *l)
{
    uv_timer_stop(&l->drain_timer);
    if (l->startups_wait)
        log_emit(LOG_INFO, "handover_begin", "waited_ms=%llu sessions=%u",
                 (unsigned long long)(uv_now(l->loop) - l->stop_ms), RELAXED(l->n_sessions));
    __atomic_store_n(&l->startups_wait, false, __ATOMIC_RELAXED);
    __atomic_store_n(&l->draining, true, __ATOMIC_RELAXED);
    liveness_push(l);
    uv_timer_start(&l->drain_timer, on_handover_done, l->cfg.handover_ms, 0);
}

/* The longest a planned stop waits for the sessions accepted before it to finish their
 * startup (a login through lbd takes milliseconds; a client silent longer is not waited
 * for). */
#define STOP_STARTUP_WAIT_MS 1000

static void on_startups_wait_over(uv_timer_t *t)
{
    struct lbd *l = t->data;
    log_emit(LOG_WARN, "shutdown_startups_left",
             "sessions_starting=%zu waited_ms=%d detail=\"handing over anyway\"",
             session_count_starting(l), STOP_STARTUP_WAIT_MS);
    handover_begin(l);
}

/* A session left its startup (lbd.h: on_startup_over): the last one a planned stop
 * waited for lets the handover begin. */
static void startup_over(struct lbd *l)
{
    if (l->n_quiet_waits)
        liveness_quiet_check(l, false);
    if (l->startups_wait && session_count_starting(l) == 0)
        handover_begin(l);
}

/* SIGTERM. With a vrrpd watching: first quiesce the listeners (new SYNs are dropped and
 * retried by the client's TCP, reaching the new master), then, once the sessions
 * accepted before the stop have finished their startup (at most STOP_STARTUP_WAIT_MS),
 * hand over (handover_begin): a client that connected just before the stop logs in
 * here instead of being cut halfway by the VIP's move. Without a vrrpd: close the
 * listeners and let open sessions finish for timeouts.drain. */
static void shutdown_start(struct lbd *l, const char *why)
{
    if (l->draining || l->startups_wait) {
        __atomic_store_n(&l->startups_wait, false, __ATOMIC_RELAXED);
        __atomic_store_n(&l->draining, true, __ATOMIC_RELAXED);
        log_emit(LOG_WARN, "shutdown_now", "reason=%s sessions=%u", why, RELAXED(l->n_sessions));
        uv_timer_stop(&l->drain_timer);
        listeners_close(l);
        session_close_all(l, "shutdown");
        if (l->n_sessions == 0 && !daemon_signals_closed(&l->signals))
            finish(l);
        return;
    }
    reuse_close_node(l, NULL, "shutdown");
    sdnotify("STOPPING=1\nSTATUS=handing over and draining");
    bool handover = liveness_watchers(l) > 0 && l->cfg.handover_ms;
    size_t starting = 0;
    if (handover) {
        listeners_quiesce(l);
        starting = session_count_starting(l);
    }
    log_emit(LOG_INFO, "shutdown",
             "reason=%s sessions=%u sessions_starting=%zu drain_ms=%llu handover_ms=%llu", why,
             RELAXED(l->n_sessions), starting, (unsigned long long)l->cfg.drain_ms,
             (unsigned long long)(handover ? l->cfg.handover_ms : 0));
    if (handover && starting > 0) {
        /* (vrrpd is told once they have logged in: handover_begin) */
        __atomic_store_n(&l->startups_wait, true, __ATOMIC_RELAXED);
        l->stop_ms = uv_now(l->loop);
        uv_timer_start(&l->drain_timer, on_startups_wait_over, STOP_STARTUP_WAIT_MS, 0);
    } else if (handover) {
        handover_begin(l);
    } else {
        __atomic_store_n(&l->draining, true, __ATOMIC_RELAXED);
        liveness_push(l);
        drain_sessions(l);
    }
}

/* ---- reload ---- */

static bool listen_changed(const struct lbd_config *a, const struct lbd_config *b)
{
    if (a->n_listen != b->n_listen)
        return true;
    for (size_t i = 0; i < a->n_listen; i++)
        if (!sockaddr_equal((struct sockaddr *)&a->listen[i], (struct sockaddr *)&b->listen[i]))
            return true;
    return false;
}

static bool peer_listen_changed(const struct lbd_config *a, const struct lbd_config *b)
{
    return a->has_peer_listen != b->has_peer_listen ||
           (a->has_peer_listen && !sockaddr_equal((struct sockaddr *)&a->peer_listen,
                                                  (struct sockaddr *)&b->peer_listen));
}

static void apply_nodes(struct lbd *l, const struct lbd_config *nc, unsigned *added,
                        unsigned *removed)
{
    struct pool fresh = {.n = 0, .balance = (enum pool_balance)nc->balance};
    bool kept[POOL_MAX_NODES] = {false};
    struct pool_node *gone[POOL_MAX_NODES];
    size_t n_gone = 0;
    lbd_lock(l); /* (the workers pick from the pool) */
    for (size_t i = 0; i < nc->n_nodes; i++) {
        const struct lbd_node_config *c = &nc->nodes[i];
        struct pool_node *n = NULL;
        for (size_t j = 0; j < l->nodes.pool.n; j++) {
            struct pool_node *o = l->nodes.pool.nodes[j];
            if (!kept[j] && strcmp(o->name, c->name) == 0 &&
                sockaddr_equal((struct sockaddr *)&o->addr, (const struct sockaddr *)&c->addr)) {
                n = o;
                kept[j] = true;
                break;
            }
        }
        if (n) {
            /* A weight set at run time stays until the file's own weight changes. */
            if (n->weight == n->weight_cfg || c->weight != n->weight_cfg)
                n->weight = c->weight;
            n->weight_cfg = c->weight;
            n->runtime = false;
            n->max_sessions = c->max_sessions;
            n->check_port = (uint16_t)c->check_port;
            health_retune(&n->health, nc->rise, nc->fall);
        } else {
            n = node_new(&l->nodes, c);
            if (n == NULL)
                continue;
            (*added)++;
        }
        fresh.nodes[fresh.n++] = n;
    }
    for (size_t j = 0; j < l->nodes.pool.n; j++) {
        if (!kept[j]) {
            (*removed)++;
            log_emit(LOG_INFO, "node_removed", "node=%s sessions=%u", l->nodes.pool.nodes[j]->name,
                     l->nodes.pool.nodes[j]->active);
            gone[n_gone++] = l->nodes.pool.nodes[j];
        }
    }
    l->nodes.pool = fresh;
    lbd_unlock(l);
    for (size_t j = 0; j < n_gone; j++)
        node_drop(&l->nodes, gone[j]); /* (its hooks, without the lock) */
}

static void apply_config(struct lbd *l, struct lbd_config *nc);

/* The file is read, and its host names resolved, on libuv's thread pool: a slow or dead
 * resolver must not stop the loop (vrrpd would see lbd as hung and move the VIPs). The
 * new configuration is applied on the loop when it is ready. */
struct reload_job {
    uv_work_t work; /* data = this */
    struct lbd *lbd;
    char path[512];
    struct lbd_config cfg;
    char err[1024];
    int rc;
    uint64_t t0_ms;
};

#define RELOAD_SLOW_MS 2000

static void reload_work(uv_work_t *w)
{
    struct reload_job *j = w->data;
    j->rc = lbd_config_load(j->path, &j->cfg, j->err, sizeof(j->err));
}

static void reload(struct lbd *l);

static void reload_done(uv_work_t *w, int status)
{
    struct reload_job *j = w->data;
    struct lbd *l = j->lbd;
    l->reload_job = NULL;
    uv_timer_stop(&l->reload_timer);
    if (status == 0 && !l->stopped) {
        uint64_t took = uv_now(l->loop) - j->t0_ms;
        if (took >= RELOAD_SLOW_MS)
            log_emit(LOG_WARN, "reload_slow",
                     "took_ms=%llu detail=\"reading the file and "
                     "resolving its host names; the loop served meanwhile\"",
                     (unsigned long long)took);
        if (j->rc != 0)
            reload_failed(&l->reload, j->err);
        else
            apply_config(l, &j->cfg);
        reload_end(&l->reload, "serving");
    }
    free(j);
    if (l->reload_again && !l->stopped) {
        l->reload_again = false;
        reload(l);
    }
}

static void on_reload_slow(uv_timer_t *t)
{
    (void)t;
    log_emit(LOG_WARN, "reload_waiting",
             "waited_ms=%d detail=\"the configuration is still "
             "being read (a slow resolver?); lbd serves on with the old one\"",
             RELOAD_SLOW_MS);
}

/* SIGHUP, as systemd's Type=notify reload protocol expects it. */
static void reload(struct lbd *l)
{
    if (l->reload_job) { /* one at a time; this file is read again after it */
        l->reload_again = true;
        return;
    }
    struct reload_job *j = malloc(sizeof(*j));
    if (j == NULL) {
        reload_failed(&l->reload, "out of memory");
        return;
    }
    reload_begin();
    j->lbd = l;
    j->work.data = j;
    j->t0_ms = uv_now(l->loop);
    snprintf(j->path, sizeof(j->path), "%s", l->config_path);
    if (uv_queue_work(l->loop, &j->work, reload_work, reload_done) != 0) {
        free(j);
        reload_failed(&l->reload, "cannot queue the reload");
        reload_end(&l->reload, "serving");
        return;
    }
    l->reload_job = j;
    uv_timer_start(&l->reload_timer, on_reload_slow, RELOAD_SLOW_MS, 0);
}

/* A worker takes the configuration worker 0 loaded (on its own loop: between two of its
 * sessions' events, never during one). */
static void take_config(struct lbd_worker *w, void *arg)
{
    (void)arg;
    w->cfg = w->lbd->cfg;
}

static void apply_config(struct lbd *l, struct lbd_config *nc)
{
    /* Keep what cannot change live (sockets bound at start, the privileges given up, the
     * name every log line already carries), name what changed of it, as vrrpd does; take
     * everything else. */
    const struct lbd_config *o = &l->cfg;
    char restart[240] = "";
    bool admin_changed = nc->admin_enabled != o->admin_enabled ||
                         (o->admin_enabled && !sockaddr_equal((const struct sockaddr *)&nc->admin,
                                                              (const struct sockaddr *)&o->admin));
    const struct {
        bool changed;
        const char *key;
    } kept[] = {
        {strcmp(nc->instance, o->instance) != 0, "instance"},
        {listen_changed(o, nc), "listen"},
        {peer_listen_changed(o, nc), "peer.listen"},
        {nc->relay != o->relay, "relay"},
        {nc->workers != o->workers, "workers"},
        {admin_changed, "admin"},
        {strcmp(nc->liveness_socket, o->liveness_socket) != 0, "liveness_socket"},
        {strcmp(nc->user, o->user) != 0, "user"},
        {strcmp(nc->peer_key_file, o->peer_key_file) != 0, "peer.key_file"},
        {!ctl_config_equal(&nc->control, &o->control), "control"},
    };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        if (kept[i].changed)
            snprintf(restart + strlen(restart), sizeof(restart) - strlen(restart), "%s%s",
                     restart[0] ? "," : "", kept[i].key);
    if (restart[0])
        log_emit(LOG_WARN, "reload_partial",
                 "restart_needed_for=%s detail=\"running with the old values\"", restart);
    memcpy(nc->instance, o->instance, sizeof(nc->instance));
    nc->relay = o->relay;
    nc->workers = o->workers;
    memcpy(nc->listen, o->listen, sizeof(nc->listen));
    nc->n_listen = o->n_listen;
    nc->peer_listen = o->peer_listen;
    nc->has_peer_listen = o->has_peer_listen;
    nc->admin = o->admin;
    nc->admin_enabled = o->admin_enabled;
    memcpy(nc->liveness_socket, o->liveness_socket, sizeof(nc->liveness_socket));
    memcpy(nc->user, o->user, sizeof(nc->user));
    memcpy(nc->peer_key_file, o->peer_key_file, sizeof(nc->peer_key_file));
    nc->control = o->control;
    bool check_changed = nc->check_type != o->check_type;
    unsigned added = 0, removed = 0;
    if (check_changed)
        for (size_t i = 0; i < l->nodes.pool.n; i++)
            check_stop(l, l->nodes.pool.nodes[i]);
    l->cfg = *nc;
    nodes_configure(l);
    lbd_lock(l);
    guard_limits_from(&l->cfg, &l->guard.lim);
    lbd_unlock(l);
    workers_run(l, take_config, NULL);
    /* Kept node connections were opened under the old settings (a node's address, the
     * reuse limits): they are cheap to open again. */
    reuse_close_node(l, NULL, "reload");
    apply_nodes(l, nc, &added, &removed);
    for (size_t i = 0; i < l->nodes.pool.n; i++) {
        if (l->nodes.pool.nodes[i]->check == NULL)
            check_start(l, l->nodes.pool.nodes[i]);
        if (pool_node_draining(l->nodes.pool.nodes[i])) /* (pool.on_node_drain may be new) */
            session_drain_node(l, l->nodes.pool.nodes[i]);
    }
    control_state_save(l); /* (a weight the file now sets otherwise is no longer kept) */
    for (struct lbd_listener *ls = l->listeners; ls; ls = ls->next)
        tune_listener(l, ls);
    log_set_level((enum log_level)l->cfg.log_level);
    log_set_target((enum log_target)l->cfg.log_target);
    log_open_file(l->cfg.log_file);
    reload_succeeded(&l->reload);
    l->config_loaded_ms = clock_wall_ms();
    log_emit(LOG_INFO, "reload", "nodes=%zu added=%u removed=%u balance=%s", l->nodes.pool.n, added,
             removed, pool_balance_names[l->nodes.pool.balance]);
}

/* ---- signals ---- */

static void on_signal(uv_signal_t *h, int signum)
{
    struct lbd *l = h->data;
    if (signum == SIGHUP)
        reload(l);
    else
        shutdown_start(l, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start ---- */

int lbd_start(struct lbd *l, uv_loop_t *loop, const char *path, const struct lbd_config *cfg)
{
    memset(l, 0, sizeof(*l));
    l->loop = loop;
    snprintf(l->config_path, sizeof(l->config_path), "%s", path);
    l->cfg = *cfg;
    pthread_mutex_init(&l->nodes.lock, NULL);
    if (workers_start(l, loop, workers_wanted(cfg)) != 0)
        return -ENOMEM;
    struct guard_limits gl;
    guard_limits_from(cfg, &gl);
    if (guard_init(&l->guard, &gl) != 0)
        return -ENOMEM;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        l->fd_limit = rl.rlim_cur;
    l->started_ms = l->config_loaded_ms = clock_wall_ms();
    if (keymap_init(&l->keys) != 0)
        return -ENOMEM;
    l->on_sessions_gone = sessions_gone;
    l->on_quiesce = quiesce_address;
    l->on_startup_over = startup_over;
    nodes_configure(l);
    l->nodes.pool.balance = (enum pool_balance)cfg->balance;
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        struct pool_node *n = node_new(&l->nodes, &cfg->nodes[i]);
        if (n == NULL)
            return -ENOMEM;
        l->nodes.pool.nodes[l->nodes.pool.n++] = n;
    }
    if (control_state_restore(l) != 0)
        return -EINVAL;
    uv_timer_init(loop, &l->drain_timer);
    l->drain_timer.data = l;
    uv_timer_init(loop, &l->reload_timer);
    l->reload_timer.data = l;
    uv_timer_init(loop, &l->quiet_timer);
    l->quiet_timer.data = l;
    uv_timer_init(loop, &l->quiet_wait_timer);
    l->quiet_wait_timer.data = l;
    uv_prepare_init(loop, &l->accept_turn);
    l->accept_turn.data = l;
    uv_prepare_start(&l->accept_turn, accept_resume); /* (runs each turn; costs no wakeup) */
    daemon_signals_start(&l->signals, loop, l, on_signal);

    int rc = 0;
    for (size_t i = 0; i < cfg->n_listen && rc == 0; i++)
        rc = listener_open(l, &cfg->listen[i], false);
    if (rc == 0 && cfg->has_peer_listen)
        rc = listener_open(l, &cfg->peer_listen, true);
    if (rc == 0 && (rc = admin_start(l)) != 0) {
        char a[SOCKADDR_STRLEN];
        fprintf(stderr, "lbd: cannot serve the admin endpoint on %s: %s\n",
                format_sockaddr((struct sockaddr *)&cfg->admin, a, sizeof(a)), uv_strerror(rc));
    }
    if (rc == 0 && vipwatch_start(l) != 0)
        log_emit(LOG_WARN, "vipwatch_failed",
                 "detail=\"no netlink route socket: sessions of a VIP that moves away stay "
                 "open until TCP gives up on them\"");
    if (rc == 0 && (rc = liveness_start(l)) != 0)
        fprintf(stderr, "lbd: cannot open the liveness socket %s: %s\n", cfg->liveness_socket,
                uv_strerror(rc));
    if (rc == 0)
        rc = control_start(l);
    if (rc != 0) {
        finish(l);
        return rc;
    }
    for (size_t i = 0; i < l->nodes.pool.n; i++)
        check_start(l, l->nodes.pool.nodes[i]);
    log_emit(LOG_INFO, "start", "version=%s nodes=%zu balance=%s maxconn=%u check=%s",
             PGVIP_VERSION, l->nodes.pool.n, pool_balance_names[l->nodes.pool.balance],
             cfg->maxconn, lbd_check_type_names[cfg->check_type]);
    return 0;
}

void lbd_launch(struct lbd *l)
{
    control_state_save(l); /* (as the user lbd runs as: one that cannot write says so now) */
    unsigned n = workers_launch(l);
    log_emit(LOG_INFO, "workers", "workers=%u wanted=%u", n, workers_wanted(&l->cfg));
}

void lbd_free(struct lbd *l)
{
    workers_free(l);
    keymap_free(&l->keys);
    guard_free(&l->guard);
    pthread_mutex_destroy(&l->nodes.lock);
}
