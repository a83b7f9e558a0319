/* krelay.c -- the kernel relay (see krelay.h): the BPF program, its two sockhash maps,
 * the end-of-session watch and the TCP_INFO byte totals. No libuv here; lbd.c polls
 * epoll_fd and session.c drives the rest. */
#include "krelay.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* tcpi_state values (include/net/tcp_states.h; <netinet/tcp.h> has them too, but its
 * struct tcp_info lacks the byte counters and clashes with <linux/tcp.h>). */
enum {
    ST_FIN_WAIT1 = 4,
    ST_FIN_WAIT2 = 5,
    ST_TIME_WAIT = 6,
    ST_CLOSE_WAIT = 8,
    ST_LAST_ACK = 9,
    ST_CLOSING = 11,
};

static long sys_bpf(int cmd, union bpf_attr *attr)
{
    return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

#define INSN(c, d, s, o, i)                                                                        \
    ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

static int map_create(uint32_t max)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = BPF_MAP_TYPE_SOCKHASH;
    a.key_size = sizeof(uint64_t);   /* the socket cookie */
    a.value_size = sizeof(uint64_t); /* a socket fd on update, its cookie on lookup */
    a.max_entries = max;
    snprintf(a.map_name, sizeof(a.map_name), "lbd_relay");
    int fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
    return fd < 0 ? -errno : fd;
}

/* r0 = bpf_sk_redirect_hash(skb, dest, &cookie(skb's socket), 0): SK_PASS with the
 * segment queued for the peer's send side, or SK_DROP when the socket has no peer in
 * dest (never, while lbd joins peers before it attaches either). */
static int prog_load(int dest_fd, char *log, size_t logsize)
{
    struct bpf_insn prog[] = {
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),
        INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -8, 0),
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
        INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, dest_fd),
        INSN(0, 0, 0, 0, 0),
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
        INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -8),
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0), /* egress of the peer */
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_hash),
        INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_SK_SKB;
    a.insns = (uint64_t)(uintptr_t)prog;
    a.insn_cnt = sizeof(prog) / sizeof(prog[0]);
    a.license = (uint64_t)(uintptr_t) "Dual MIT/GPL";
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = (uint32_t)logsize;
    a.log_level = 1;
    snprintf(a.prog_name, sizeof(a.prog_name), "lbd_relay");
    log[0] = '\0';
    int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
    return fd < 0 ? -errno : fd;
}

void krelay_close(struct krelay *k)
{
    int *fds[] = {&k->prog_fd, &k->dest_fd, &k->attach_fd, &k->epoll_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

int krelay_open(struct krelay *k, uint32_t max_sockets, char *err, size_t errsize)
{
    char log[1024];
    k->prog_fd = k->dest_fd = k->attach_fd = k->epoll_fd = -1;
    int rc = k->dest_fd = map_create(max_sockets);
    if (rc < 0) {
        snprintf(err, errsize, "cannot create a sockhash map: %s%s", strerror(-rc),
                 rc == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)" : "");
        goto fail;
    }
    rc = k->attach_fd = map_create(max_sockets);
    if (rc < 0) {
        snprintf(err, errsize, "cannot create a sockhash map: %s", strerror(-rc));
        goto fail;
    }
    rc = k->prog_fd = prog_load(k->dest_fd, log, sizeof(log));
    if (rc < 0) {
        char *nl = strchr(log, '\n');
        if (nl)
            *nl = '\0';
        snprintf(err, errsize, "the kernel refused the relay program: %s%s%s", strerror(-rc),
                 log[0] ? ": " : "", log);
        goto fail;
    }
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.target_fd = (uint32_t)k->attach_fd;
    a.attach_bpf_fd = (uint32_t)k->prog_fd;
    a.attach_type = BPF_SK_SKB_VERDICT;
    if (sys_bpf(BPF_PROG_ATTACH, &a) != 0) {
        rc = -errno;
        snprintf(err, errsize, "cannot attach the relay program: %s", strerror(errno));
        goto fail;
    }
    rc = k->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (rc < 0) {
        rc = -errno;
        snprintf(err, errsize, "epoll_create1: %s", strerror(errno));
        goto fail;
    }
    return 0;
fail:
    krelay_close(k); /* the failed one holds -errno: not closed, set to -1 */
    return rc;
}

static int map_update(int map, uint64_t key, int fd)
{
    union bpf_attr a;
    uint64_t value = (uint64_t)fd;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)&value;
    a.flags = BPF_NOEXIST;
    return sys_bpf(BPF_MAP_UPDATE_ELEM, &a) == 0 ? 0 : -errno;
}

static void map_delete(int map, uint64_t key)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map;
    a.key = (uint64_t)(uintptr_t)&key;
    (void)sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

static int socket_cookie(int fd, uint64_t *cookie)
{
    socklen_t len = sizeof(*cookie);
    return getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) == 0 ? 0 : -errno;
}

static int watch(struct krelay *k, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.u64 = tag};
    return epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static void unwatch(struct krelay *k, int fd)
{
    struct epoll_event ev = {0};
    (void)epoll_ctl(k->epoll_fd, EPOLL_CTL_DEL, fd, &ev);
}

int krelay_join(struct krelay *k, int a, int b, uint64_t tag_a, uint64_t tag_b)
{
    uint64_t ca, cb;
    int rc;
    if ((rc = socket_cookie(a, &ca)) != 0 || (rc = socket_cookie(b, &cb)) != 0)
        return rc;
    if ((rc = watch(k, a, tag_a)) != 0)
        return rc;
    if ((rc = watch(k, b, tag_b)) != 0)
        goto undo_watch_a;
    /* Both directions are in dest before either socket gets the program, so the first
     * segment the program sees already has its peer. Segments that arrived before the
     * program are still in the receive queue: the SO_RCVLOWAT below runs them through
     * it (tcp_set_rcvlowat signals data ready), in order, ahead of any later one. */
    if ((rc = map_update(k->dest_fd, ca, b)) != 0)
        goto undo_watch_b;
    if ((rc = map_update(k->dest_fd, cb, a)) != 0)
        goto undo_dest_a;
    if ((rc = map_update(k->attach_fd, ca, a)) != 0)
        goto undo_dest_b;
    if ((rc = map_update(k->attach_fd, cb, b)) != 0)
        goto undo_attach_a;
    int one = 1;
    (void)setsockopt(a, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    (void)setsockopt(b, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    return 0;
undo_attach_a:
    map_delete(k->attach_fd, ca);
undo_dest_b:
    map_delete(k->dest_fd, cb);
undo_dest_a:
    map_delete(k->dest_fd, ca);
undo_watch_b:
    unwatch(k, b);
undo_watch_a:
    unwatch(k, a);
    return rc;
}

int krelay_next_event(struct krelay *k, uint64_t *tag, bool *hangup)
{
    struct epoll_event ev;
    int n = epoll_wait(k->epoll_fd, &ev, 1, 0);
    if (n <= 0)
        return 0;
    *tag = ev.data.u64;
    *hangup = (ev.events & (EPOLLRDHUP | EPOLLHUP)) != 0;
    return 1;
}

int krelay_socket_totals(int fd, bool active_open, struct krelay_totals *t)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int outq = 0;
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ioctl(fd, SIOCOUTQ, &outq) != 0)
        return -errno;
    /* A received FIN advances bytes_received by one; SYN and FIN of this side count in
     * bytes_acked/SIOCOUTQ (the SYN only when this side connected). */
    bool fin_in = ti.tcpi_state == ST_CLOSE_WAIT || ti.tcpi_state == ST_LAST_ACK ||
                  ti.tcpi_state == ST_CLOSING || ti.tcpi_state == ST_TIME_WAIT;
    bool fin_out = ti.tcpi_state == ST_FIN_WAIT1 || ti.tcpi_state == ST_FIN_WAIT2 ||
                   ti.tcpi_state == ST_CLOSING || ti.tcpi_state == ST_LAST_ACK ||
                   ti.tcpi_state == ST_TIME_WAIT;
    uint64_t received = ti.tcpi_bytes_received, written = ti.tcpi_bytes_acked + (uint64_t)outq;
    uint64_t control = (active_open ? 1u : 0u) + (fin_out ? 1u : 0u);
    t->fin_received = fin_in;
    t->received = received >= (fin_in ? 1u : 0u) ? received - (fin_in ? 1u : 0u) : 0;
    t->written = written >= control ? written - control : 0;
    t->idle_ms = ti.tcpi_last_data_recv;
    return 0;
}
