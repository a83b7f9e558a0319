/* vrrpd_config.c -- vrrpd's configuration table and validation (see vrrpd_config.h). */
#include "vrrpd_config.h"

#include "cfg.h"
#include "log.h"
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(struct vrrpd_config, f)
#define GOFF(f) offsetof(struct vrrpd_group_config, f)
#define SZ(f) sizeof(((struct vrrpd_config *)0)->f)

static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const action_names[] = {"fault", "weight", NULL};

/* One IPv4 address (no port) into *out, host order. */
static int ipv4_value(struct cfg_doc *d, yaml_node_t *n, const char *path, uint32_t *out)
{
    const char *s = cfg_scalar(n);
    struct in_addr a;
    if (s == NULL)
        return cfg_error(d, n, path, "expected an IPv4 address, got a list or mapping");
    if (inet_pton(AF_INET, s, &a) != 1) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, s, &a6) == 1)
            return cfg_error(d, n, path, "IPv6 (\"%s\") is not supported yet; use IPv4", s);
        return cfg_error(d, n, path, "expected an IPv4 address like 10.0.0.100, got \"%s\"", s);
    }
    *out = ntohl(a.s_addr);
    if (*out == 0 || (*out >> 28) == 0xe || *out == 0xffffffff)
        return cfg_error(d, n, path, "\"%s\" is not a unicast address", s);
    return 0;
}

static int ipv4_list(struct cfg_doc *d, yaml_node_t *n, const char *path, uint32_t *out, size_t max,
                     size_t *count)
{
    int rc;
    if (n->type == YAML_SCALAR_NODE) {
        *count = 1;
        return ipv4_value(d, n, path, &out[0]);
    }
    if ((rc = cfg_expect(d, n, path, YAML_SEQUENCE_NODE)) != 0)
        return rc;
    size_t len = cfg_seq_len(n);
    if (len == 0 || len > max)
        return cfg_error(d, n, path, "expected 1 to %zu addresses", max);
    for (size_t i = 0; i < len; i++) {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        yaml_node_t *item = cfg_seq_item(d, n, i);
        if ((rc = ipv4_value(d, item, sub, &out[i])) != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (out[j] == out[i])
                return cfg_error(d, item, sub, "address repeated");
    }
    *count = len;
    return 0;
}

/* One IPv6 VIP: a unicast address a client can reach (not link-local, loopback,
 * multicast, unspecified or IPv4-mapped). */
static int ipv6_vip(struct cfg_doc *d, yaml_node_t *n, const char *path, const char *s,
                    const struct in6_addr *a)
{
    if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_MULTICAST(a) ||
        IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_V4MAPPED(a))
        return cfg_error(d, n, path, "\"%s\" is not a global or unique local unicast IPv6 address",
                         s);
    return 0;
}

/* The group's VIPs: IPv4 addresses (advertised), and IPv6 ones that move with them. */
static int parse_vips(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct vrrpd_group_config *g = base;
    int rc;
    size_t len = n->type == YAML_SCALAR_NODE ? 1 : 0;
    if (len == 0 && (rc = cfg_expect(d, n, path, YAML_SEQUENCE_NODE)) != 0)
        return rc;
    if (len == 0)
        len = cfg_seq_len(n);
    if (len == 0)
        return cfg_error(d, n, path, "expected at least one IPv4 address");
    g->n_vips = g->n_vips6 = 0;
    for (size_t i = 0; i < len; i++) {
        char sub[256];
        snprintf(sub, sizeof(sub), n->type == YAML_SCALAR_NODE ? "%s" : "%s[%zu]", path, i);
        yaml_node_t *item = n->type == YAML_SCALAR_NODE ? n : cfg_seq_item(d, n, i);
        const char *s = cfg_scalar(item);
        struct in6_addr a6;
        if (s && strchr(s, ':') && inet_pton(AF_INET6, s, &a6) == 1) {
            if ((rc = ipv6_vip(d, item, sub, s, &a6)) != 0)
                return rc;
            for (size_t j = 0; j < g->n_vips6; j++)
                if (memcmp(&g->vips6[j], &a6, sizeof(a6)) == 0)
                    return cfg_error(d, item, sub, "address repeated");
            if (g->n_vips6 == VRRPD_MAX_VIPS6)
                return cfg_error(d, item, sub, "at most %d IPv6 addresses per group",
                                 VRRPD_MAX_VIPS6);
            g->vips6[g->n_vips6++] = a6;
            continue;
        }
        if (g->n_vips == VRRP_MAX_ADDRS)
            return cfg_error(d, item, sub, "at most %d IPv4 addresses per group", VRRP_MAX_ADDRS);
        if ((rc = ipv4_value(d, item, sub, &g->vips[g->n_vips])) != 0)
            return rc;
        for (size_t j = 0; j < g->n_vips; j++)
            if (g->vips[j] == g->vips[g->n_vips])
                return cfg_error(d, item, sub, "address repeated");
        g->n_vips++;
    }
    if (g->n_vips == 0)
        return cfg_error(d, n, path,
                         "IPv6 addresses move with a group's IPv4 ones, and this group has none; "
                         "add its IPv4 VIP (IPv6 VRRP is not supported yet)");
    return 0;
}

static int parse_address(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    return ipv4_value(d, n, path, &((struct vrrpd_config *)base)->address);
}

static int parse_peers(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct vrrpd_config *c = base;
    return ipv4_list(d, n, path, c->peers, VRRPD_MAX_PEERS, &c->n_peers);
}

static const struct cfg_field group_fields[] = {
    {"vrid", CFG_UINT, GOFF(vrid), .min = 1, .max = 255, .required = true,
     .doc = "The virtual router's id, the same on both instances; unique on the segment "
            "(it also picks the virtual MAC 00:00:5e:00:01:VRID)."},
    {"priority", CFG_UINT, GOFF(priority), .min = 1, .max = 255,
     .doc = "Higher wins mastership; 255 only for the owner of the addresses. Give each "
            "instance the higher priority for one group (active-active)."},
    {"interval", CFG_DURATION, GOFF(interval_ms), .min = 10, .max = 40950,
     .doc = "Advertisement interval, in whole centiseconds. A backup takes over after about "
            "3 intervals without an advert (the master down interval)."},
    {"preempt", CFG_BOOL, GOFF(preempt),
     .doc = "A higher-priority instance takes the group back from a lower-priority master."},
    {"preempt_delay", CFG_DURATION, GOFF(preempt_delay_ms), .min = 0, .max = 3600000,
     .doc = "With preempt: wait this long after start-up before taking the group back."},
    {"vips", CFG_CUSTOM, 0, .custom = parse_vips, .required = true,
     .type_doc = "address or list of addresses",
     .doc = "The virtual addresses this group moves; each inside one of the interface's "
            "subnets. At least one IPv4 address: the adverts carry those. IPv6 addresses "
            "(at most 8) move with them, announced with unsolicited neighbor advertisements, "
            "but are not carried in the IPv4 adverts (keepalived's "
            "virtual_ipaddress_excluded; IPv6 VRRP is not supported yet)."},
    {NULL},
};

static const struct vrrpd_group_config group_defaults = {
    .priority = 100, .interval_ms = 1000, .preempt = true};

static int check_group(struct cfg_doc *d, yaml_node_t *item, const char *sub, size_t i, void *ctx)
{
    struct vrrpd_config *c = ctx;
    const struct vrrpd_group_config *g = &c->groups[i];
    if (g->interval_ms % 10 != 0) {
        char ip[256];
        snprintf(ip, sizeof(ip), "%s.interval", sub);
        return cfg_error(d, cfg_map_get(d, item, "interval"), ip,
                         "%llums is not a whole number of centiseconds (VRRP counts in 10 ms)",
                         (unsigned long long)g->interval_ms);
    }
    for (size_t j = 0; j < i; j++) {
        if (c->groups[j].vrid == g->vrid)
            return cfg_error(d, item, sub, "vrid %u is used by groups[%zu] too", g->vrid, j);
        for (size_t a = 0; a < g->n_vips; a++)
            for (size_t b = 0; b < c->groups[j].n_vips; b++)
                if (g->vips[a] == c->groups[j].vips[b])
                    return cfg_error(d, item, sub, "a VIP is in groups[%zu] too", j);
        for (size_t a = 0; a < g->n_vips6; a++)
            for (size_t b = 0; b < c->groups[j].n_vips6; b++)
                if (memcmp(&g->vips6[a], &c->groups[j].vips6[b], sizeof(g->vips6[a])) == 0)
                    return cfg_error(d, item, sub, "a VIP is in groups[%zu] too", j);
    }
    return 0;
}

static int parse_groups(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct vrrpd_config *c = base;
    const struct cfg_list l = {.min = 1,
                               .max = VRRPD_MAX_GROUPS,
                               .what = "groups",
                               .one = "group",
                               .fields = group_fields,
                               .items = c->groups,
                               .item_size = sizeof(c->groups[0]),
                               .defaults = &group_defaults,
                               .check = check_group,
                               .ctx = c};
    return cfg_list_apply(d, n, path, &l, &c->n_groups);
}

static const struct cfg_field garp_fields[] = {
    {"repeat", CFG_UINT, OFF(garp_repeat), .min = 1, .max = 100,
     .doc = "Gratuitous ARPs sent for each VIP on becoming master."},
    {"interval", CFG_DURATION, OFF(garp_interval_ms), .min = 1, .max = 60000,
     .doc = "Time between them."},
    {NULL},
};

static const struct cfg_field lbd_track_fields[] = {
    {"socket", CFG_STR, OFF(track_lbd), SZ(track_lbd), .required = true,
     .doc = "lbd's liveness socket (lbd.liveness_socket). Its closing (lbd died) is seen at "
            "once; until lbd's first answer, the groups stay in FAULT."},
    {"interval", CFG_DURATION, OFF(track_lbd_interval_ms), .min = 10, .max = 60000,
     .doc = "Time between pings to lbd."},
    {"timeout", CFG_DURATION, OFF(track_lbd_timeout_ms), .min = 10, .max = 600000,
     .doc = "A ping unanswered this long means lbd hangs; at least interval. (A dead lbd is "
            "seen at once, by its socket closing.) Too short a timeout turns CPU starvation "
            "into false failovers: at 300 ms, a 1,000-session reconnect storm on two cores "
            "made the soak flap."},
    {"action", CFG_ENUM, OFF(track_lbd_action), .choices = action_names,
     .doc = "fault: lbd down or draining puts every group in FAULT (the VIPs move, kept "
            "until the peer speaks); weight: lower the priority by weight instead."},
    {"weight", CFG_UINT, OFF(track_lbd_weight), .min = 1, .max = 254,
     .doc = "With action weight: how much lower."},
    {NULL},
};

static const struct cfg_field track_fields[] = {
    {"link", CFG_BOOL, OFF(track_link),
     .doc = "The interface going down puts every group in FAULT."},
    {"lbd", CFG_SECTION, .sub = lbd_track_fields,
     .doc = "Track this instance's lbd: a VIP should sit only where a proxy serves it."},
    {NULL},
};

static int parse_admin(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct vrrpd_config *c = base;
    return cfg_addr_or_off(d, n, path, 8082, &c->admin, &c->admin_enabled);
}

static int parse_peer_watch(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct vrrpd_config *c = base;
    const char *s = cfg_scalar(n);
    char *end;
    if (s && (strcmp(s, "off") == 0 || strcmp(s, "false") == 0)) {
        c->peer_watch_port = 0;
        return 0;
    }
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || v < 1 || v > 65535)
        return cfg_error(d, n, path, "expected a TCP port (1-65535) or off, got \"%s\"",
                         s ? s : "a list or mapping");
    c->peer_watch_port = (uint16_t)v;
    return 0;
}

static const struct cfg_field vrrp_fields[] = {
    {"interface", CFG_STR, OFF(interface), SZ(interface), .required = true,
     .doc = "The interface on the segment shared with the peer and the clients."},
    {"address", CFG_CUSTOM, 0, .custom = parse_address, .type_doc = "IPv4 address",
     .def_doc = "the interface's first IPv4 address",
     .doc = "Our address: the source of our adverts."},
    {"unicast_peers", CFG_CUSTOM, 0, .custom = parse_peers,
     .type_doc = "IPv4 address or list of up to 8", .def_doc = "none: multicast to 224.0.0.18",
     .doc = "Send adverts to these peers instead of multicast, and drop adverts from anyone "
            "else."},
    {"log_level", CFG_ENUM, OFF(log_level), .choices = level_names,
     .doc = "Least severe level logged (logfmt lines on stderr)."},
    {"log_target", CFG_ENUM, OFF(log_target), .choices = log_target_names,
     .doc = "Where the log lines go: stderr (logfmt); journal (systemd's journal, natively: "
            "the level as PRIORITY and every field as PGVIP_*, e.g. journalctl "
            "PGVIP_EVENT=transition PGVIP_VRID=51); syslog; auto: the journal when stderr is "
            "connected to it (under systemd), else stderr."},
    {"log_file", CFG_STR, OFF(log_file), SZ(log_file),
     .doc = "Also append the log lines to this file."},
    {"state_file", CFG_STR, OFF(state_file), SZ(state_file),
     .doc = "vrrpd writes its state here as JSON every 500 ms and on every change: read by "
            "vrrpd --status and by lbd's status page (stale = vrrpd dead)."},
    {"admin", CFG_CUSTOM, 0, .custom = parse_admin,
     .type_doc = "address host:port (port 8082 when omitted), or off", .def_doc = "127.0.0.1:8082",
     .doc = "The read-only admin endpoint: /metrics (Prometheus), /status (JSON), /health."},
    CTL_CONFIG_FIELD("control", OFF(control),
                     "vrrpd's control socket for pgvipctl: vrrp show, resign, priority, restore, "
                     "giveback. Default socket " VRRPD_CONTROL_SOCKET "."),
    {"transitions_file", CFG_STR, OFF(transitions_file), SZ(transitions_file),
     .doc = "Append one line per state transition here (time, group, from, to, reason)."},
    {"notify", CFG_STR, OFF(notify), SZ(notify),
     .doc = "Run as sh -c COMMAND notify STATE VRID INSTANCE on every transition, with "
            "VRRP_* variables (from, reason, VIPs) in the environment."},
    {"garp", CFG_SECTION, .sub = garp_fields, .doc = "Gratuitous ARP on becoming master."},
    {"track", CFG_SECTION, .sub = track_fields, .doc = "What makes this instance step back."},
    {"realtime", CFG_BOOL, OFF(realtime),
     .doc = "Run at SCHED_FIFO priority with locked memory, so adverts leave on time under "
            "full CPU load (short intervals)."},
    {"peer_watch", CFG_CUSTOM, 0, .custom = parse_peer_watch, .type_doc = "TCP port, or off",
     .def_doc = "5798",
     .doc = "Listen on this port of our address and hold a connection to the master we "
            "follow: when the master's vrrpd ends (crash, SIGKILL, docker kill) its kernel "
            "closes the connection and we take over after the skew time, as on a priority-0 "
            "advert, not the master down interval. Host loss or a network split still wait "
            "for the interval. Use the same port on both instances; open it between them."},
    {"silent_master_hold", CFG_DURATION, OFF(silent_hold_ms), .min = 0, .max = 60000,
     .doc = "When the master we follow falls silent but its host still acknowledges a probe "
            "on the peer watch link (its vrrpd stalled or starved, not crashed), wait up to "
            "this long past the master down interval, probing every interval, before taking "
            "over: a takeover resets every session on its VIPs. We take over as soon as the "
            "host stops answering. A crash closes the link and a dead host or a cut path "
            "answers nothing, so neither waits; but a whole instance frozen on a live host "
            "(docker pause, a cgroup freeze) answers too, and its takeover waits this long "
            "more. 0: off (RFC 5798's timing). Needs peer_watch."},
    {"start_yield", CFG_DURATION, OFF(start_yield_ms), .min = 0, .max = 60000,
     .doc = "At start-up, a group whose priority here is below this instance's best (a "
            "group the peer prefers) waits this long more than the master down interval "
            "before claiming a silence: the peer, started a little later, then takes its "
            "own group first, and the pair comes up active-active whatever the start order "
            "(without it, the first to start took every group, and preempt: false kept "
            "them). Alone, an instance claims such a group this much later. 0: off."},
    {"groups", CFG_CUSTOM, 0, .custom = parse_groups, .required = true,
     .type_doc = "list of mappings", .list = true, .sub = group_fields,
     .sub_defaults = &group_defaults, .doc = "The VRRP groups (at most 16), one per VIP set."},
    {NULL},
};

static const struct cfg_field top_fields[] = {
    {"instance", CFG_STR, OFF(instance), SZ(instance),
     .doc = "Names this instance in every log line, the metrics and the state file."},
    {"vrrp", CFG_SECTION, .sub = vrrp_fields, .required = true, .doc = "vrrpd's section."},
    {"lbd", CFG_IGNORE, 0, .type_doc = "section",
     .doc = "lbd's section (see lbd(8)); vrrpd does not read it."},
    {NULL},
};

void vrrpd_config_set_defaults(struct vrrpd_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->instance, sizeof(c->instance), "vrrpd");
    parse_sockaddr("127.0.0.1:8082", 0, &c->admin);
    c->admin_enabled = true;
    ctl_config_defaults(&c->control, VRRPD_CONTROL_SOCKET);
    c->log_level = LOG_INFO;
    c->garp_repeat = 3;
    c->garp_interval_ms = 100;
    c->track_link = true;
    c->track_lbd_interval_ms = 100;
    c->track_lbd_timeout_ms = 1000;
    c->track_lbd_action = VRRPD_TRACK_FAULT;
    c->track_lbd_weight = 50;
    c->peer_watch_port = 5798;
    c->start_yield_ms = 2000;
}

static void set_defaults(void *cfg)
{
    vrrpd_config_set_defaults(cfg);
}

static int validate(struct cfg_doc *d, void *cfg)
{
    const struct vrrpd_config *c = cfg;
    if (c->track_lbd_timeout_ms >= c->track_lbd_interval_ms)
        return 0;
    yaml_node_t *v = cfg_map_get(d, cfg_doc_root(d), "vrrp");
    return cfg_error(d, cfg_map_get(d, cfg_map_get(d, v, "track"), "lbd"), "vrrp.track.lbd",
                     "timeout must be at least the interval");
}

static const struct cfg_loader loader = {top_fields, set_defaults, validate};

int vrrpd_config_load(const char *path, struct vrrpd_config *cfg, char *err, size_t errsize)
{
    return cfg_load(&loader, path, NULL, cfg, err, errsize);
}

int vrrpd_config_load_string(const char *name, const char *text, struct vrrpd_config *cfg,
                             char *err, size_t errsize)
{
    return cfg_load(&loader, name, text, cfg, err, errsize);
}

void vrrpd_config_describe(FILE *out, bool roff)
{
    static struct vrrpd_config defaults;
    cfg_loader_describe(&loader, &defaults, out, roff);
}
