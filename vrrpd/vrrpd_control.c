/* vrrpd_control.c -- vrrpd's control socket (vrrp.control, common/ctl.h): what
 * `pgvipctl vrrp ...` asks.
 *
 *   vrrp [show]               the groups: state, priorities, master, last advert, VIPs
 *   vrrp resign VRID|all      hand the group to the peer now and stay backup: priority 1
 *                             until `vrrp restore` (make-before-break, as at shutdown)
 *   vrrp priority VRID N      an operator's priority (1-254) until `vrrp restore`
 *   vrrp restore VRID|all     the priority of the file again (preemption may take the
 *                             group back after its delay)
 *   vrrp giveback             resign the groups this instance holds but does not prefer
 *                             (their priority is below its best): the pair's active-active
 *                             layout again after a failover, without preemption
 *
 * Looking needs a connection; changes need root, vrrpd's start user or
 * vrrp.control.operators, and each is logged with who asked. An operator's priority
 * lasts until `vrrp restore` (a reload keeps it; a restart too, with
 * vrrp.control.state_file, else it ends there). */
#include "vrrpd.h"
#include "vrrpd_opstate.h"

#include "log.h"
#include "parse.h"
#include "statefile.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message: text, or {"instance": ..., key: "..."} (key: message, note or error). */
#define say(d, out, json, key, ...) ctl_say(out, json, (d)->cfg.instance, key, __VA_ARGS__)

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        say(d, out, json, "error", __VA_ARGS__);                                                   \
        return -1;                                                                                 \
    } while (0)

/* The priority this instance has in the groups it prefers (start_yield uses the same). */
static uint32_t best_priority(const struct vrrpd *d)
{
    uint32_t best = 0;
    for (size_t i = 0; i < d->n_groups; i++)
        best = d->groups[i].cfg.priority > best ? d->groups[i].cfg.priority : best;
    return best;
}

static int show(struct vrrpd *d, bool json, struct metrics_buf *out)
{
    static const char *const cols[] = {"vrid",    "state",     "priority", "file_priority",
                                       "set_by",  "preferred", "master",   "last_advert_ms",
                                       "preempt", "vips"};
    struct ctl_table t;
    ctl_table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    ctl_table_numeric(&t, 0);
    ctl_table_numeric(&t, 2);
    ctl_table_numeric(&t, 3);
    ctl_table_numeric(&t, 7);
    uint64_t now = clock_mono_ms(), best = best_priority(d);
    for (size_t i = 0; i < d->n_groups; i++) {
        const struct vrrpd_group *g = &d->groups[i];
        char ip[16], vips[512];
        vrrpd_vip_list(g, vips, sizeof(vips));
        ctl_table_cell(&t, "%u", g->cfg.vrid);
        ctl_table_cell(&t, "%s", vrrp_state_names[g->fsm.state]);
        ctl_table_cell(&t, "%u", g->fsm.priority);
        ctl_table_cell(&t, "%u", g->cfg.priority);
        ctl_table_cell(&t, "%s", g->prio_override ? "operator" : "file");
        ctl_table_cell(&t, "%s", g->cfg.priority >= best ? "yes" : "no");
        const char *mname = g->fsm.master_ip && g->fsm.state == VRRP_BACKUP
                                ? peerwatch_name_of(&d->watch, g->fsm.master_ip)
                                : NULL;
        if (g->fsm.state == VRRP_MASTER)
            ctl_table_cell(&t, "this instance");
        else if (g->fsm.master_ip)
            ctl_table_cell(&t, "%s%s%s%s", mname ? mname : "", mname ? " (" : "",
                           format_ip4(g->fsm.master_ip, ip, sizeof(ip)), mname ? ")" : "");
        else
            ctl_table_cell(&t, "-");
        if (g->fsm.state == VRRP_BACKUP && g->last_rx_ms)
            ctl_table_cell(&t, "%llu", (unsigned long long)(now - g->last_rx_ms));
        else
            ctl_table_cell(&t, "-");
        ctl_table_cell(&t, "%s", g->cfg.preempt ? "yes" : "no");
        ctl_table_cell(&t, "%s", vips);
    }
    ctl_table_render(&t, json, out);
    ctl_table_free(&t);
    return 0;
}

/* The groups a command names: one VRID, or all. */
static int pick(struct vrrpd *d, const char *arg, bool *sel)
{
    memset(sel, 0, sizeof(bool) * d->n_groups);
    bool all = strcmp(arg, "all") == 0;
    char *end = NULL;
    unsigned long v = all ? 0 : strtoul(arg, &end, 10);
    int n = 0;
    for (size_t i = 0; i < d->n_groups; i++) {
        if (all || (end && *end == '\0' && v == d->groups[i].cfg.vrid)) {
            sel[i] = true;
            n++;
        }
    }
    return n;
}

/* The longest a resignation waits for the local lbd's "quiet" (lbd answers within 1 s:
 * liveness.c's LIVENESS_QUIET_WAIT_MS). */
#define RESIGN_WAIT_MS 1200

/* VIP i of g as text (IPv4 ones first), as lbd writes it in its "quiet" line. */
static const char *vip_at(const struct vrrpd_group *g, size_t i, char *buf, size_t size)
{
    if (i < g->cfg.n_vips)
        return format_ip4(g->cfg.vips[i], buf, size);
    return inet_ntop(AF_INET6, &g->cfg.vips6[i - g->cfg.n_vips], buf, (socklen_t)size);
}

/* Before a planned resignation: ask the local lbd to drop new connections to the
 * group's VIPs until the handover ends (lbd.h: on_quiesce), so a client's SYN waits
 * for the new holder instead of opening a session here that the takeover would cut.
 * lbd answers "quiet ADDR" once the logins under way on it are done. Returns how many
 * VIPs it was asked for. */
static uint32_t quiesce_vips(struct vrrpd_group *g)
{
    struct vrrpd *d = g->d;
    if (!d->cfg.track_lbd[0] || g->fsm.state != VRRP_MASTER)
        return 0;
    uint64_t ms = vrrp_fsm_master_down_ms(&g->fsm) + g->cfg.interval_ms + RESIGN_WAIT_MS;
    char line[96], ip[INET6_ADDRSTRLEN];
    uint32_t asked = 0;
    for (size_t i = 0; i < g->cfg.n_vips + g->cfg.n_vips6; i++) {
        snprintf(line, sizeof(line), "quiesce %s %llu\n", vip_at(g, i, ip, sizeof(ip)),
                 (unsigned long long)ms);
        asked += track_send(&d->track, line) == 0;
    }
    return asked;
}

static void resign_now(struct vrrpd_group *g)
{
    struct vrrp_out o;
    g->resign_waiting = 0;
    vrrp_fsm_resign(&g->fsm, clock_mono_ms(), g->resign_why, &o);
    vrrpd_apply(g, &o);
    if (g->resign_sticky) { /* (not before: a master at priority 1 would be preempted) */
        g->resign_sticky = false;
        g->prio_override = 1;
        vrrpd_state_save(g->d);
        vrrpd_reevaluate(g->d, g->resign_why);
    }
}

static void on_resign_timer(uv_timer_t *t)
{
    struct vrrpd *d = t->data;
    uint64_t now = clock_mono_ms(), next = 0;
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        if (g->resign_waiting == 0)
            continue;
        if (now >= g->resign_due_ms) {
            log_emit(LOG_WARN, "resign_wait_over",
                     "vrid=%u vips_not_quiet=%u detail=\"the local lbd did not say its "
                     "logins were done: resigning anyway\"",
                     g->cfg.vrid, g->resign_waiting);
            resign_now(g);
        } else if (next == 0 || g->resign_due_ms < next) {
            next = g->resign_due_ms;
        }
    }
    if (next)
        uv_timer_start(&d->resign_timer, on_resign_timer, next - now, 0);
}

/* A resignation waits (RESIGN_WAIT_MS at most) for lbd's "quiet" on each of the group's
 * VIPs: a client that connected just before finishes its login here instead of being cut
 * by the move (vrrpd_lbd_line). */
static void resign(struct vrrpd_group *g, const char *why)
{
    snprintf(g->resign_why, sizeof(g->resign_why), "%s", why);
    if (g->resign_waiting)
        return; /* (already waiting: it resigns with this reason) */
    uint32_t asked = quiesce_vips(g);
    if (asked == 0) {
        resign_now(g);
        return;
    }
    g->resign_waiting = asked;
    g->resign_due_ms = clock_mono_ms() + RESIGN_WAIT_MS;
    if (!uv_is_active((uv_handle_t *)&g->d->resign_timer))
        uv_timer_start(&g->d->resign_timer, on_resign_timer, RESIGN_WAIT_MS, 0);
}

void vrrpd_lbd_line(void *arg, const char *line)
{
    struct vrrpd *d = arg;
    char addr[64], ip[INET6_ADDRSTRLEN];
    if (sscanf(line, "quiet %63s", addr) != 1)
        return;
    for (size_t i = 0; i < d->n_groups; i++) {
        struct vrrpd_group *g = &d->groups[i];
        for (size_t v = 0; g->resign_waiting && v < g->cfg.n_vips + g->cfg.n_vips6; v++)
            if (strcmp(vip_at(g, v, ip, sizeof(ip)), addr) == 0 && --g->resign_waiting == 0)
                resign_now(g);
    }
}

/* How long an operator's priority lasts beyond vrrp restore, for the answer. */
static const char *lifetime(const struct vrrpd *d)
{
    return d->cfg.control.state_file[0] ? " (kept across a restart: vrrp.control.state_file)"
                                        : " or a restart (vrrp.control.state_file is off)";
}

static int change(struct vrrpd *d, const char *by, int argc, char **argv, bool json,
                  struct metrics_buf *out)
{
    const char *verb = argv[0];
    bool sel[VRRPD_MAX_GROUPS];
    char why[200];
    if (strcmp(verb, "giveback") == 0) {
        uint32_t best = best_priority(d);
        int n = 0;
        for (size_t i = 0; i < d->n_groups; i++) {
            struct vrrpd_group *g = &d->groups[i];
            if (g->fsm.state != VRRP_MASTER || g->cfg.priority >= best)
                continue;
            snprintf(why, sizeof(why), "given back to the instance that prefers it, by %s", by);
            resign(g, why);
            say(d, out, json, "message",
                "vrid %u: resigned (priority %u, below this instance's %u)", g->cfg.vrid,
                g->cfg.priority, best);
            n++;
        }
        if (n == 0)
            say(d, out, json, "message", "holds no group it does not prefer: nothing to give back");
        vrrpd_write_state(d);
        return 0;
    }
    if (argc < 2)
        FAIL("usage: vrrp %s VRID|all%s", verb, strcmp(verb, "priority") == 0 ? " N" : "");
    if (pick(d, argv[1], sel) == 0)
        FAIL("no group \"%s\" (vrrp show lists them)", argv[1]);
    if (strcmp(verb, "priority") == 0) {
        char *end = NULL;
        unsigned long p = argc == 3 ? strtoul(argv[2], &end, 10) : 0;
        if (argc != 3 || *end != '\0' || p < 1 || p > 254)
            FAIL("usage: vrrp priority VRID|all N (1 to 254)");
        for (size_t i = 0; i < d->n_groups; i++)
            if (sel[i])
                d->groups[i].prio_override = (uint8_t)p;
        snprintf(why, sizeof(why), "priority %lu set by %s", p, by);
        vrrpd_reevaluate(d, why);
        vrrpd_state_save(d);
        for (size_t i = 0; i < d->n_groups; i++)
            if (sel[i])
                say(d, out, json, "message",
                    "vrid %u: priority %u (the file says %u) until vrrp restore%s; %s",
                    d->groups[i].cfg.vrid, d->groups[i].fsm.priority, d->groups[i].cfg.priority,
                    lifetime(d), vrrp_state_names[d->groups[i].fsm.state]);
        return 0;
    }
    if (strcmp(verb, "resign") == 0 || strcmp(verb, "restore") == 0) {
        bool res = strcmp(verb, "resign") == 0;
        for (size_t i = 0; i < d->n_groups; i++) {
            if (!sel[i])
                continue;
            struct vrrpd_group *g = &d->groups[i];
            bool was_master = g->fsm.state == VRRP_MASTER;
            g->resign_sticky = false;
            g->prio_override = res && !was_master ? 1 : 0;
            if (res && was_master) {
                snprintf(why, sizeof(why), "resigned by %s", by);
                g->resign_sticky = true; /* (priority 1 once resigned: resign_now) */
                resign(g, why);
            }
            say(d, out, json, "message", "vrid %u: %s%s", g->cfg.vrid,
                !res         ? "the file's priority again (a preempting group takes the VIPs "
                               "back after its delay)"
                : was_master ? "resigned: the peer takes over now (VIPs kept here until it "
                               "speaks); priority 1 until vrrp restore"
                             : "not master; priority 1 until vrrp restore",
                res ? lifetime(d) : "");
        }
        snprintf(why, sizeof(why), "%s by %s", res ? "resign" : "restore", by);
        vrrpd_reevaluate(d, why);
        vrrpd_state_save(d);
        return 0;
    }
    FAIL("unknown command \"vrrp %s\" (try help)", verb);
}

static const char help_text[] =
    " vrrp [show]                 the groups: state, priorities, master, last advert, VIPs\n"
    " vrrp resign VRID|all        hand the group to the peer now; priority 1 until restore\n"
    " vrrp priority VRID|all N    an operator's priority (1-254) until restore\n"
    " vrrp restore VRID|all       the file's priority again\n"
    " vrrp giveback               resign the groups held here that the peer prefers\n"
    " (--json first: JSON. Changes need root, vrrpd's start user or vrrp.control.operators.)\n";

static int handle(void *ctx, struct ctl_conn *req, const struct ctl_caller *who, int argc,
                  char **argv, bool json, struct metrics_buf *out)
{
    (void)req;
    struct vrrpd *d = ctx;
    char by[96], cmd[256], q[300];
    ctl_describe(who, argc, argv, by, sizeof(by), cmd, sizeof(cmd));
    if (strcmp(argv[0], "help") == 0 || (argc > 1 && strcmp(argv[1], "help") == 0)) {
        metrics_printf(out, "%s", help_text);
        return 0;
    }
    if (strcmp(argv[0], "vrrp") != 0)
        FAIL("unknown command \"%s\": vrrpd takes vrrp ... (try help)", cmd);
    if (argc == 1 || strcmp(argv[1], "show") == 0)
        return show(d, json, out);
    if (!ctl_caller_is(who, d->control_uid, d->control_gid)) {
        log_emit(LOG_WARN, "control_refused", "command=%s uid=%d pid=%d comm=%s",
                 log_quote(q, sizeof(q), cmd), (int)who->uid, (int)who->pid, who->comm);
        FAIL("permission denied: \"%s\" changes vrrpd; it needs root%s", cmd,
             d->control_gid != (gid_t)-1 ? " or group operators" : " (or vrrp.control.operators)");
    }
    if (d->stopping)
        FAIL("vrrpd is stopping");
    int rc = change(d, by, argc - 1, argv + 1, json, out);
    log_emit(LOG_INFO, "control", "command=%s result=%s uid=%d pid=%d comm=%s",
             log_quote(q, sizeof(q), cmd), rc == 0 ? "ok" : "error", (int)who->uid, (int)who->pid,
             who->comm);
    return rc;
}

/* ---- vrrp.control.state_file ---- */

static int parse_opstate(const char *name, const char *text, void *st, char *err, size_t errsize)
{
    return vrrpd_opstate_parse(name, text, st, err, errsize);
}

int vrrpd_state_restore(struct vrrpd *d)
{
    const char *path = d->cfg.control.state_file;
    if (path[0] == '\0')
        return 0;
    struct vrrpd_opstate st;
    int rc = statefile_load(path, "", "vrrpd: vrrp.control.state_file", "the file's priorities",
                            parse_opstate, &st);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    for (size_t i = 0; i < st.n; i++) {
        struct vrrpd_group *g = NULL;
        for (size_t j = 0; j < d->n_groups && g == NULL; j++)
            if (d->groups[j].cfg.vrid == st.groups[i].vrid)
                g = &d->groups[j];
        if (g == NULL) {
            log_emit(LOG_WARN, "state_skipped", "vrid=%u file=%s detail=\"not in vrrp.groups\"",
                     st.groups[i].vrid, path);
            continue;
        }
        g->prio_override = (uint8_t)st.groups[i].priority;
        log_emit(LOG_WARN, "state_restored",
                 "vrid=%u priority=%u file_priority=%u file=%s detail=\"%s until vrrp "
                 "restore\"",
                 g->cfg.vrid, g->prio_override, g->cfg.priority, path,
                 g->prio_override == 1 ? "resigned" : "an operator's priority");
    }
    return 0;
}

void vrrpd_state_save(struct vrrpd *d)
{
    const char *path = d->cfg.control.state_file;
    if (path[0] == '\0')
        return;
    struct vrrpd_opstate st = {.n = 0};
    for (size_t i = 0; i < d->n_groups; i++) {
        if (d->groups[i].prio_override == 0)
            continue;
        st.groups[st.n].vrid = d->groups[i].cfg.vrid;
        st.groups[st.n].priority = d->groups[i].prio_override;
        st.n++;
    }
    char text[VRRPD_MAX_GROUPS * 40 + 512], err[600], q[700];
    size_t len = vrrpd_opstate_render(&st, text, sizeof(text));
    if (len >= sizeof(text) || statefile_write(path, text, len, err, sizeof(err)) != 0) {
        d->state_file_failed++;
        log_emit(LOG_ERROR, "state_file_failed",
                 "error=%s detail=\"pgvipctl's priorities will not survive a restart\"",
                 log_quote(q, sizeof(q), len >= sizeof(text) ? "too long" : err));
    }
}

int vrrpd_control_start(struct vrrpd *d)
{
    return ctl_config_open(&d->control, d->loop, &d->cfg.control, "vrrpd", handle, d,
                           &d->control_uid, &d->control_gid, &d->control_on);
}

void vrrpd_control_stop(struct vrrpd *d)
{
    if (!d->control_on)
        return;
    d->control_on = false;
    ctl_stop(&d->control);
}
