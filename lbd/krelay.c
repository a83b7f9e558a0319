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
#include <sys/mman.h>
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
    ST_CLOSE = 7,
    ST_CLOSING = 11,
};

static long sys_bpf(int cmd, union bpf_attr *attr)
{
    return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

#define INSN(c, d, s, o, i)                                                                        \
    ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

static int map_create(enum bpf_map_type type, uint32_t key_size, uint32_t value_size, uint32_t max)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = type;
    a.key_size = key_size;
    a.value_size = value_size;
    a.max_entries = max;
    snprintf(a.map_name, sizeof(a.map_name), "lbd_relay");
    int fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
    return fd < 0 ? -errno : fd;
}

/* ---- the program ----
 *
 * For a segment arriving on socket X (key: X's cookie):
 *   st = state[X], al = allow[X]             (missing: SK_PASS, X keeps it)
 *   st.passing and st.passed + 1 == al.ret:  st.passing = 0, al.ret = 0, note RETURNED,
 *                                            and on as below (lbd read all, asked back)
 *   st.passing and al.ret (not that):        al.ret = 0, note MISSED, and on (a segment
 *                                            was passed after lbd looked: lbd reads on)
 *   st.passing: st.passed += len, SK_PASS    (X's direction is lbd's now)
 *   st.redirected + len > al.limit:          st.passing = 1, note PASSING, and as above
 *   else st.redirected += len; when within half a window of the limit, note LOW
 *   (once per limit); redirect to the send side of dest[X].
 * SK_PASS queues the segment on X itself, charged to X's receive buffer: TCP's window
 * closes and the sender waits, the back-pressure sockmap's redirect lacks. */

struct asm_buf {
    struct bpf_insn insn[96];
    int n;
    int label[8]; /* instruction index of each label, -1 until placed */
    int fix_at[16], fix_label[16], n_fix;
};

static void emit(struct asm_buf *b, struct bpf_insn i)
{
    if (b->n < (int)(sizeof(b->insn) / sizeof(b->insn[0])))
        b->insn[b->n] = i;
    b->n++;
}

static void emit_jump(struct asm_buf *b, struct bpf_insn i, int label)
{
    if (b->n_fix < (int)(sizeof(b->fix_at) / sizeof(b->fix_at[0]))) {
        b->fix_at[b->n_fix] = b->n;
        b->fix_label[b->n_fix++] = label;
    }
    emit(b, i);
}

static void emit_map(struct asm_buf *b, int reg, int fd)
{
    emit(b, INSN(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, fd));
    emit(b, INSN(0, 0, 0, 0, 0));
}

#define MOV_X(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_K(d, k) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, k)
#define ADD_K(d, k) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, k)
#define ADD_X(d, s) INSN(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0)
#define LDX(sz, d, s, off) INSN(BPF_LDX | BPF_MEM | (sz), d, s, off, 0)
#define STX(sz, d, s, off) INSN(BPF_STX | BPF_MEM | (sz), d, s, off, 0)
#define ST(sz, d, off, k) INSN(BPF_ST | BPF_MEM | (sz), d, 0, off, k)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define JMP_K(op, d, k) INSN(BPF_JMP | (op) | BPF_K, d, 0, 0, k)
#define JMP_X(op, d, s) INSN(BPF_JMP | (op) | BPF_X, d, s, 0, 0)

enum { L_PASS, L_REDIRECT, L_STOP, L_CHECK, L_SELF, L_MISSED };

/* note(kind): ringbuf_output(ring, {st.tag, kind}, 16); r7 = st; clobbers r1-r5 */
static void emit_note(struct asm_buf *b, int ring_fd, int kind)
{
    emit(b, LDX(BPF_DW, BPF_REG_2, BPF_REG_7, offsetof(struct krelay_state, tag)));
    emit(b, STX(BPF_DW, BPF_REG_10, BPF_REG_2, -24));
    emit(b, ST(BPF_DW, BPF_REG_10, -16, kind));
    emit_map(b, BPF_REG_1, ring_fd);
    emit(b, MOV_X(BPF_REG_2, BPF_REG_10));
    emit(b, ADD_K(BPF_REG_2, -24));
    emit(b, MOV_K(BPF_REG_3, 16));
    emit(b, MOV_K(BPF_REG_4, 0));
    emit(b, CALL(BPF_FUNC_ringbuf_output));
}

/* reg = &map[cookie at fp-8], or SK_PASS when the socket has no entry; clobbers r0-r5 */
static void emit_lookup(struct asm_buf *b, int map_fd, int reg)
{
    emit_map(b, BPF_REG_1, map_fd);
    emit(b, MOV_X(BPF_REG_2, BPF_REG_10));
    emit(b, ADD_K(BPF_REG_2, -8));
    emit(b, CALL(BPF_FUNC_map_lookup_elem));
    emit_jump(b, JMP_K(BPF_JEQ, BPF_REG_0, 0), L_PASS);
    emit(b, MOV_X(reg, BPF_REG_0));
}

static int prog_assemble(struct asm_buf *b, const struct krelay *k)
{
    memset(b, 0, sizeof(*b));
    for (size_t i = 0; i < sizeof(b->label) / sizeof(b->label[0]); i++)
        b->label[i] = -1;
    emit(b, MOV_X(BPF_REG_6, BPF_REG_1));
    emit(b, CALL(BPF_FUNC_get_socket_cookie));
    emit(b, STX(BPF_DW, BPF_REG_10, BPF_REG_0, -8));
    emit_lookup(b, k->state_fd, BPF_REG_7); /* r7 = &state[cookie] */
    emit_lookup(b, k->allow_fd, BPF_REG_9); /* r9 = &allow[cookie] */
    emit(b, LDX(BPF_W, BPF_REG_1, BPF_REG_7, offsetof(struct krelay_state, passing)));
    emit_jump(b, JMP_K(BPF_JEQ, BPF_REG_1, 0), L_CHECK);
    /* passing: back to redirecting only when lbd asked and has read every byte passed */
    emit(b, LDX(BPF_DW, BPF_REG_1, BPF_REG_7, offsetof(struct krelay_state, passed)));
    emit(b, ADD_K(BPF_REG_1, 1));
    emit(b, LDX(BPF_DW, BPF_REG_2, BPF_REG_9, offsetof(struct krelay_allowance, ret)));
    emit_jump(b, JMP_X(BPF_JNE, BPF_REG_1, BPF_REG_2), L_MISSED);
    emit(b, ST(BPF_W, BPF_REG_7, offsetof(struct krelay_state, passing), 0));
    emit(b, ST(BPF_DW, BPF_REG_9, offsetof(struct krelay_allowance, ret), 0));
    emit_note(b, k->ring_fd, KRELAY_NOTE_RETURNED);
    b->label[L_CHECK] = b->n;
    emit(b, LDX(BPF_DW, BPF_REG_8, BPF_REG_9, offsetof(struct krelay_allowance, limit)));
    /* r3 = redirected + len; over the allowance: stop */
    emit(b, LDX(BPF_DW, BPF_REG_3, BPF_REG_7, offsetof(struct krelay_state, redirected)));
    emit(b, LDX(BPF_W, BPF_REG_4, BPF_REG_6, offsetof(struct __sk_buff, len)));
    emit(b, ADD_X(BPF_REG_3, BPF_REG_4));
    emit_jump(b, JMP_X(BPF_JGT, BPF_REG_3, BPF_REG_8), L_STOP);
    emit(b, STX(BPF_DW, BPF_REG_7, BPF_REG_3, offsetof(struct krelay_state, redirected)));
    /* within half a window of the allowance, once per allowance: note LOW */
    emit(b, ADD_K(BPF_REG_3, KRELAY_WINDOW / 2));
    emit_jump(b, JMP_X(BPF_JLE, BPF_REG_3, BPF_REG_8), L_REDIRECT);
    emit(b, LDX(BPF_DW, BPF_REG_1, BPF_REG_7, offsetof(struct krelay_state, noted)));
    emit_jump(b, JMP_X(BPF_JEQ, BPF_REG_1, BPF_REG_8), L_REDIRECT);
    emit(b, STX(BPF_DW, BPF_REG_7, BPF_REG_8, offsetof(struct krelay_state, noted)));
    emit_note(b, k->ring_fd, KRELAY_NOTE_LOW);
    b->label[L_REDIRECT] = b->n;
    emit(b, MOV_X(BPF_REG_1, BPF_REG_6));
    emit_map(b, BPF_REG_2, k->dest_fd);
    emit(b, MOV_X(BPF_REG_3, BPF_REG_10));
    emit(b, ADD_K(BPF_REG_3, -8));
    emit(b, MOV_K(BPF_REG_4, 0)); /* the peer's send side */
    emit(b, CALL(BPF_FUNC_sk_redirect_hash));
    emit(b, EXIT());
    b->label[L_STOP] = b->n;
    emit(b, ST(BPF_W, BPF_REG_7, offsetof(struct krelay_state, passing), 1));
    emit_note(b, k->ring_fd, KRELAY_NOTE_PASSING);
    emit_jump(b, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0), L_SELF);
    /* r2 = al.ret, which did not match: nonzero, lbd asked and waits (not reading) */
    b->label[L_MISSED] = b->n;
    emit_jump(b, JMP_K(BPF_JEQ, BPF_REG_2, 0), L_SELF);
    emit(b, ST(BPF_DW, BPF_REG_9, offsetof(struct krelay_allowance, ret), 0));
    emit_note(b, k->ring_fd, KRELAY_NOTE_MISSED);
    b->label[L_SELF] = b->n;
    emit(b, LDX(BPF_DW, BPF_REG_1, BPF_REG_7, offsetof(struct krelay_state, passed)));
    emit(b, LDX(BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct __sk_buff, len)));
    emit(b, ADD_X(BPF_REG_1, BPF_REG_2));
    emit(b, STX(BPF_DW, BPF_REG_7, BPF_REG_1, offsetof(struct krelay_state, passed)));
    b->label[L_PASS] = b->n;
    emit(b, MOV_K(BPF_REG_0, SK_PASS));
    emit(b, EXIT());
    if (b->n > (int)(sizeof(b->insn) / sizeof(b->insn[0])))
        return -E2BIG;
    for (int i = 0; i < b->n_fix; i++)
        b->insn[b->fix_at[i]].off = (int16_t)(b->label[b->fix_label[i]] - (b->fix_at[i] + 1));
    return 0;
}

/* log NULL: no verifier log (a log too small for a valid program fails its load). */
static int prog_load(const struct krelay *k, char *log, size_t logsize)
{
    struct asm_buf b;
    if (prog_assemble(&b, k) != 0)
        return -E2BIG;
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_SK_SKB;
    a.insns = (uint64_t)(uintptr_t)b.insn;
    a.insn_cnt = (uint32_t)b.n;
    a.license = (uint64_t)(uintptr_t) "Dual MIT/GPL";
    if (log) {
        log[0] = '\0';
        a.log_buf = (uint64_t)(uintptr_t)log;
        a.log_size = (uint32_t)logsize;
        a.log_level = 1;
    }
    snprintf(a.prog_name, sizeof(a.prog_name), "lbd_relay");
    int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
    return fd < 0 ? -errno : fd;
}

void krelay_close(struct krelay *k)
{
    int *fds[] = {&k->prog_fd,  &k->dest_fd, &k->attach_fd, &k->state_fd,
                  &k->allow_fd, &k->ring_fd, &k->epoll_fd};
    if (k->ring_cons)
        munmap(k->ring_cons, (size_t)getpagesize());
    if (k->ring_data)
        munmap(k->ring_data, (size_t)getpagesize() + 2 * k->ring_size);
    k->ring_cons = k->ring_data = NULL;
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* The ring never overflows while there are no more sockets than it was sized for: a
 * direction has at most 3 notes unread (after lbd's last write to its allowance, one
 * RETURNED or MISSED, which clears the request; one LOW, once per limit; one PASSING,
 * after which it is silent until lbd asks again), and a note takes 24 bytes (8 of
 * header). A lost note would leave its direction stalled. 96 bytes a socket, a power of
 * 2 from 256 KiB to 16 MiB (175,000 sockets; above that the margin is lbd's draining). */
#define RING_MIN (256 * 1024)
#define RING_MAX (16 * 1024 * 1024)
#define RING_PER_SOCKET 96

static size_t ring_size_for(uint32_t max_sockets)
{
    size_t size = RING_MIN;
    while (size < RING_MAX && size < (size_t)max_sockets * RING_PER_SOCKET)
        size *= 2;
    return size;
}

int krelay_open(struct krelay *k, uint32_t max_sockets, char *err, size_t errsize)
{
    char log[4096];
    memset(k, 0, sizeof(*k));
    k->prog_fd = k->dest_fd = k->attach_fd = k->state_fd = k->allow_fd = k->ring_fd = k->epoll_fd =
        -1;
    int rc = k->dest_fd = map_create(BPF_MAP_TYPE_SOCKHASH, 8, 8, max_sockets);
    if (rc < 0) {
        snprintf(err, errsize, "cannot create a sockhash map: %s%s", strerror(-rc),
                 rc == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)" : "");
        goto fail;
    }
    if ((rc = k->attach_fd = map_create(BPF_MAP_TYPE_SOCKHASH, 8, 8, max_sockets)) < 0 ||
        (rc = k->state_fd =
             map_create(BPF_MAP_TYPE_HASH, 8, sizeof(struct krelay_state), max_sockets)) < 0 ||
        (rc = k->allow_fd =
             map_create(BPF_MAP_TYPE_HASH, 8, sizeof(struct krelay_allowance), max_sockets)) < 0 ||
        (rc = k->ring_fd =
             map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, (uint32_t)ring_size_for(max_sockets))) < 0) {
        snprintf(err, errsize, "cannot create the relay's maps: %s", strerror(-rc));
        goto fail;
    }
    size_t page = (size_t)getpagesize();
    k->ring_size = ring_size_for(max_sockets);
    k->ring_cons = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, k->ring_fd, 0);
    if (k->ring_cons == MAP_FAILED) {
        k->ring_cons = NULL;
        rc = -errno;
        snprintf(err, errsize, "cannot map the relay's ring: %s", strerror(errno));
        goto fail;
    }
    /* The producer page, then the data twice (the kernel maps it so that a record
     * that wraps reads contiguously). */
    k->ring_data =
        mmap(NULL, page + 2 * k->ring_size, PROT_READ, MAP_SHARED, k->ring_fd, (off_t)page);
    if (k->ring_data == MAP_FAILED) {
        k->ring_data = NULL;
        rc = -errno;
        snprintf(err, errsize, "cannot map the relay's ring: %s", strerror(errno));
        goto fail;
    }
    rc = k->prog_fd = prog_load(k, NULL, 0);
    if (rc < 0) {
        prog_load(k, log, sizeof(log)); /* again, for the verifier's reason */
        const char *why = log;
        char *last = strrchr(log, '\n');
        while (last && last[1] == '\0' && last > log) { /* the last non-empty line */
            *last = '\0';
            last = strrchr(log, '\n');
        }
        if (last)
            why = last + 1;
        snprintf(err, errsize, "the kernel refused the relay program: %s%s%s", strerror(-rc),
                 why[0] ? ": " : "", why);
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
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, k->ring_fd, &ev) != 0) {
        rc = -errno;
        snprintf(err, errsize, "cannot watch the relay's ring: %s", strerror(errno));
        goto fail;
    }
    return 0;
fail:
    krelay_close(k); /* the failed one holds -errno: not closed, set to -1 */
    return rc;
}

static int map_update(int map, uint64_t key, const void *value, uint64_t flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)value;
    a.flags = flags;
    return sys_bpf(BPF_MAP_UPDATE_ELEM, &a) == 0 ? 0 : -errno;
}

static int map_update_fd(int map, uint64_t key, int fd)
{
    uint64_t value = (uint64_t)fd;
    return map_update(map, key, &value, BPF_NOEXIST);
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

int krelay_allow(struct krelay *k, uint64_t cookie, uint64_t allowance)
{
    struct krelay_allowance a = {.limit = allowance};
    return map_update(k->allow_fd, cookie, &a, BPF_ANY);
}

int krelay_return(struct krelay *k, uint64_t cookie, uint64_t allowance, uint64_t passed)
{
    struct krelay_allowance a = {.limit = allowance, .ret = passed + 1};
    return map_update(k->allow_fd, cookie, &a, BPF_ANY);
}

void krelay_forget(struct krelay *k, const uint64_t cookies[2])
{
    for (int i = 0; i < 2; i++) {
        map_delete(k->state_fd, cookies[i]);
        map_delete(k->allow_fd, cookies[i]);
    }
}

int krelay_join(struct krelay *k, int a, int b, uint64_t tag_a, uint64_t tag_b, uint64_t cookies[2])
{
    uint64_t ca, cb;
    struct krelay_allowance window = {.limit = KRELAY_WINDOW};
    int rc;
    if ((rc = socket_cookie(a, &ca)) != 0 || (rc = socket_cookie(b, &cb)) != 0)
        return rc;
    cookies[0] = ca;
    cookies[1] = cb;
    struct krelay_state sa = {.tag = tag_a}, sb = {.tag = tag_b};
    if ((rc = map_update(k->state_fd, ca, &sa, BPF_ANY)) != 0 ||
        (rc = map_update(k->state_fd, cb, &sb, BPF_ANY)) != 0 ||
        (rc = map_update(k->allow_fd, ca, &window, BPF_ANY)) != 0 ||
        (rc = map_update(k->allow_fd, cb, &window, BPF_ANY)) != 0)
        goto undo_state;
    if ((rc = watch(k, a, tag_a)) != 0)
        goto undo_state;
    if ((rc = watch(k, b, tag_b)) != 0)
        goto undo_watch_a;
    /* Both directions are in dest before either socket gets the program, so the first
     * segment the program sees already has its peer. Segments that arrived before the
     * program are still in the receive queue: the SO_RCVLOWAT below runs them through
     * it (tcp_set_rcvlowat signals data ready), in order, ahead of any later one. */
    if ((rc = map_update_fd(k->dest_fd, ca, b)) != 0)
        goto undo_watch_b;
    if ((rc = map_update_fd(k->dest_fd, cb, a)) != 0)
        goto undo_dest_a;
    if ((rc = map_update_fd(k->attach_fd, ca, a)) != 0)
        goto undo_dest_b;
    /* (This one fails only when memory does, as attach holds what dest holds.) */
    if ((rc = map_update_fd(k->attach_fd, cb, b)) != 0)
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
undo_state:
    krelay_forget(k, cookies);
    return rc;
}

int krelay_next_event(struct krelay *k, uint64_t *tag, bool *hangup)
{
    struct epoll_event ev;
    int n = epoll_wait(k->epoll_fd, &ev, 1, 0);
    if (n <= 0)
        return 0;
    if (ev.data.u64 == 0)
        return 2; /* the ring (level-triggered: reported until it is read) */
    *tag = ev.data.u64;
    *hangup = (ev.events & (EPOLLRDHUP | EPOLLHUP)) != 0;
    return 1;
}

int krelay_next_note(struct krelay *k, uint64_t *tag, enum krelay_note_kind *kind)
{
    if (k->ring_cons == NULL || k->ring_data == NULL)
        return 0;
    size_t page = (size_t)getpagesize();
    volatile uint64_t *cons = k->ring_cons;
    const volatile uint64_t *prod = k->ring_data;
    const uint8_t *data = (const uint8_t *)k->ring_data + page;
    for (;;) {
        uint64_t c = *cons, p = __atomic_load_n(prod, __ATOMIC_ACQUIRE);
        if (c >= p)
            return 0;
        const uint8_t *rec = data + (c & (k->ring_size - 1));
        uint32_t len = __atomic_load_n((const uint32_t *)rec, __ATOMIC_ACQUIRE);
        if (len & BPF_RINGBUF_BUSY_BIT)
            return 0; /* being written */
        bool discard = (len & BPF_RINGBUF_DISCARD_BIT) != 0;
        len &= ~(uint32_t)(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
        uint64_t note[2] = {0, 0};
        if (!discard && len == sizeof(note))
            memcpy(note, rec + BPF_RINGBUF_HDR_SZ, sizeof(note));
        __atomic_store_n(cons, c + ((BPF_RINGBUF_HDR_SZ + len + 7) & ~7u), __ATOMIC_RELEASE);
        if (!discard && len == sizeof(note)) {
            *tag = note[0];
            *kind = (enum krelay_note_kind)note[1];
            return 1;
        }
    }
}

int krelay_probe(struct krelay *k)
{
    uint64_t key = 0, value;
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)k->allow_fd;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)&value;
    if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) == 0 || errno == ENOENT)
        return 0;
    return -errno;
}

int krelay_state_get(struct krelay *k, uint64_t cookie, struct krelay_state *st)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)k->state_fd;
    a.key = (uint64_t)(uintptr_t)&cookie;
    a.value = (uint64_t)(uintptr_t)st;
    return sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) == 0 ? 0 : -errno;
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
    t->acked = ti.tcpi_bytes_acked >= (active_open ? 1u : 0u)
                   ? ti.tcpi_bytes_acked - (active_open ? 1u : 0u)
                   : 0;
    uint64_t control = (active_open ? 1u : 0u) + (fin_out ? 1u : 0u);
    t->fin_received = fin_in;
    /* Reset (after a FIN or not): whether bytes_received counted a FIN is unknown. */
    t->reset = ti.tcpi_state == ST_CLOSE;
    t->received = received >= (fin_in ? 1u : 0u) ? received - (fin_in ? 1u : 0u) : 0;
    t->written = written >= control ? written - control : 0;
    /* Data either way (keepalive probes are not data: tcp_xmit_probe_skb leaves the
     * send time alone). */
    t->idle_ms = ti.tcpi_last_data_recv < ti.tcpi_last_data_sent ? ti.tcpi_last_data_recv
                                                                 : ti.tcpi_last_data_sent;
    return 0;
}
