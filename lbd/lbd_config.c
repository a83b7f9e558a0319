/* lbd_config.c -- lbd's configuration table and validation (see lbd_config.h). */
#include "lbd_config.h"

#include "cfg.h"
#include "log.h"
#include "parse.h"

#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

const char *const lbd_check_type_names[] = {"tcp", "pg", "http", "none", NULL};
const char *const lbd_cancel_unknown_names[] = {"all", "one", "drop", NULL};
const char *const lbd_relay_names[] = {"auto", "user", NULL};
static const char *const on_down_names[] = {"keep", "cut", NULL};
static const char *const on_drain_names[] = {"close_at_idle", "keep", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};

#define OFF(f) offsetof(struct lbd_config, f)
#define NOFF(f) offsetof(struct lbd_node_config, f)
#define HOUR_MS (3600ULL * 1000)
#define DAY_MS (24 * HOUR_MS)

static const struct cfg_field node_fields[] = {
    {"name", CFG_STR, NOFF(name), sizeof(((struct lbd_node_config *)0)->name),
     .def_doc = "the address", .doc = "Names the node in logs, metrics and the status page."},
    {"address", CFG_ADDR, NOFF(addr), .default_port = 5432, .required = true,
     .doc = "Where the node takes PostgreSQL-wire connections."},
    {"weight", CFG_UINT, NOFF(weight), .min = 0, .max = 1000,
     .doc = "Share of new sessions relative to the other nodes; 0 = never chosen."},
    {"max_sessions", CFG_UINT, NOFF(max_sessions), .min = 0, .max = 10000000,
     .doc = "Sessions at most on this node (0 = no limit); a full node is skipped."},
    {"check_port", CFG_UINT, NOFF(check_port), .min = 1, .max = 65535,
     .def_doc = "pool.health.http_port",
     .doc = "The port of the node's HTTP readiness endpoint (health type http)."},
    {NULL},
};

static const struct lbd_node_config node_defaults = {.weight = 1};

static int check_node(struct cfg_doc *d, yaml_node_t *item, const char *sub, size_t i, void *ctx)
{
    struct lbd_config *c = ctx;
    struct lbd_node_config *nc = &c->nodes[i];
    if (nc->name[0] == '\0')
        format_sockaddr((struct sockaddr *)&nc->addr, nc->name, sizeof(nc->name));
    for (size_t j = 0; j < i; j++) {
        if (sockaddr_equal((struct sockaddr *)&c->nodes[j].addr, (struct sockaddr *)&nc->addr))
            return cfg_error(d, item, sub, "address of node \"%s\" repeats node \"%s\"", nc->name,
                             c->nodes[j].name);
        if (strcmp(c->nodes[j].name, nc->name) == 0)
            return cfg_error(d, item, sub, "node name \"%s\" is used twice", nc->name);
    }
    return 0;
}

static int parse_nodes(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct lbd_config *c = base;
    const struct cfg_list l = {.min = 1,
                               .max = POOL_MAX_NODES,
                               .what = "nodes",
                               .one = "node",
                               .fields = node_fields,
                               .items = c->nodes,
                               .item_size = sizeof(c->nodes[0]),
                               .defaults = &node_defaults,
                               .check = check_node,
                               .ctx = c};
    return cfg_list_apply(d, n, path, &l, &c->n_nodes);
}

static int parse_listen(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct lbd_config *c = base;
    static const struct cfg_field one = {"listen", CFG_ADDR, 0, .default_port = 5432};
    if (n->type == YAML_SCALAR_NODE) {
        c->n_listen = 1;
        return cfg_field_apply(d, n, path, &one, &c->listen[0]);
    }
    int rc = cfg_expect(d, n, path, YAML_SEQUENCE_NODE);
    if (rc)
        return rc;
    size_t len = cfg_seq_len(n);
    if (len == 0 || len > LBD_MAX_LISTEN)
        return cfg_error(d, n, path, "expected 1 to %d addresses", LBD_MAX_LISTEN);
    for (size_t i = 0; i < len; i++) {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        if ((rc = cfg_field_apply(d, cfg_seq_item(d, n, i), sub, &one, &c->listen[i])) != 0)
            return rc;
    }
    c->n_listen = len;
    return 0;
}

static int parse_admin(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct lbd_config *c = base;
    return cfg_addr_or_off(d, n, path, 8081, &c->admin, &c->admin_enabled);
}

static const struct cfg_field health_fields[] = {
    {"type", CFG_ENUM, OFF(check_type), .choices = lbd_check_type_names,
     .doc = "tcp: a connect; pg: a StartupMessage the node must answer like a PostgreSQL "
            "server (it leaves nothing in the node's log); http: GET http_path on the node's "
            "check_port, 200 up, 503 draining (CockroachDB); none: always up."},
    {"interval", CFG_DURATION, OFF(check_interval_ms), .min = 10, .max = HOUR_MS,
     .doc = "Time between checks of a node."},
    {"timeout", CFG_DURATION, OFF(check_timeout_ms), .min = 10, .max = HOUR_MS,
     .doc = "A check not answered in this time failed; at most interval."},
    {"rise", CFG_UINT, OFF(rise), .min = 1, .max = 100,
     .doc = "Good checks in a row before a down node takes sessions again."},
    {"fall", CFG_UINT, OFF(fall), .min = 1, .max = 100,
     .doc = "Failed checks in a row before an up node is marked down (the first check after "
            "start counts at once)."},
    {"http_port", CFG_UINT, OFF(http_port), .min = 1, .max = 65535,
     .doc = "http checks: the readiness port of nodes without check_port."},
    {"http_path", CFG_STR, OFF(http_path), sizeof(((struct lbd_config *)0)->http_path),
     .doc = "http checks: the path requested; must start with /."},
    {"pg_user", CFG_STR, OFF(pg_user), sizeof(((struct lbd_config *)0)->pg_user),
     .doc = "pg checks: the user named in the check's StartupMessage."},
    {"pg_database", CFG_STR, OFF(pg_database), sizeof(((struct lbd_config *)0)->pg_database),
     .doc = "pg checks: the database named in the check's StartupMessage."},
    {NULL},
};

static const struct cfg_field reuse_fields[] = {
    {"max_idle", CFG_UINT, OFF(reuse_max_idle), .min = 0, .max = 10000,
     .doc = "Node connections kept per node for reuse (0 = none: every session opens its "
            "own). A session whose node let its user in without a password (trust) and "
            "whose client left cleanly (Terminate, every query answered, no transaction, "
            "no ParameterStatus since the startup, relayed by lbd) leaves its connection "
            "here after DISCARD ALL; the next client with the same StartupMessage on that "
            "node gets it without a new backend (lbd answers its startup, with a secret "
            "key of its own). Kept connections are backends too: count them against the "
            "node's max_connections."},
    {"idle", CFG_DURATION, OFF(reuse_idle_ms), .min = 1, .max = DAY_MS,
     .doc = "A kept connection not taken within this time is closed."},
    {NULL},
};

static const struct cfg_field pool_fields[] = {
    {"balance", CFG_ENUM, OFF(balance), .choices = pool_balance_names,
     .doc = "roundrobin: smooth weighted round robin; leastconn: fewest sessions per weight; "
            "p2c: the better of two random nodes (power of two choices)."},
    {"retries", CFG_UINT, OFF(retries), .min = 0, .max = 16,
     .doc = "Other nodes tried after a failed connect, or a node that refuses the startup "
            "(57P03, 57P01, 53300) or closes before answering; only while nothing reached "
            "the client."},
    {"on_node_down", CFG_ENUM, OFF(on_node_down), .choices = on_down_names,
     .doc = "What happens to the open sessions of a node that goes down or drains: keep "
            "them, or cut them."},
    {"on_node_drain", CFG_ENUM, OFF(on_node_drain), .choices = on_drain_names,
     .doc = "The open sessions of a node that drains (its readiness check answers 503, as "
            "CockroachDB's does while it drains): close_at_idle closes each at its first idle "
            "moment (ReadyForQuery outside a transaction, nothing in flight either way) with "
            "the FATAL 57P01 PostgreSQL sends when an administrator ends a session, never "
            "inside a transaction; keep leaves them open. on_node_down: cut cuts them at "
            "once instead."},
    {"drain_deadline", CFG_DURATION, OFF(drain_deadline_ms), .min = 0, .max = DAY_MS,
     .doc = "How long a draining node's sessions may stay busy (inside a transaction, or "
            "with a request unanswered) after the drain began; then they are ended with "
            "FATAL 57P01 as PostgreSQL's pg_terminate_backend() ends a busy backend (its "
            "transaction rolls back). Looked at with each health check. 0 = never: a "
            "transaction is never cut."},
    {"cancel_unknown", CFG_ENUM, OFF(cancel_unknown), .choices = lbd_cancel_unknown_names,
     .doc = "A CancelRequest whose key neither this lbd nor its peer knows (a TLS session's: "
            "lbd cannot read its key): one: to one node (CockroachDB forwards cancels "
            "itself); all: to every healthy node (what PostgreSQL over TLS needs; PostgreSQL "
            "ignores a wrong key, but every node forks for each); drop."},
    {"health", CFG_SECTION, .sub = health_fields, .doc = "Health checks, per node."},
    {"reuse", CFG_SECTION, .sub = reuse_fields,
     .doc = "Reuse of node connections between clients (off by default)."},
    {"nodes", CFG_CUSTOM, 0, .custom = parse_nodes, .required = true,
     .type_doc = "list of mappings", .list = true, .sub = node_fields,
     .sub_defaults = &node_defaults, .doc = "The database nodes (at most 64)."},
    {NULL},
};

static const struct cfg_field timeout_fields[] = {
    {"connect", CFG_DURATION, OFF(connect_ms), .min = 1, .max = HOUR_MS,
     .doc = "Connecting to a node; then the next node is tried (pool.retries)."},
    {"startup", CFG_DURATION, OFF(startup_ms), .min = 1, .max = HOUR_MS,
     .doc = "From accept to the client's StartupMessage, whatever came before it (one "
            "deadline: encryption requests answered meanwhile do not restart it), and for "
            "the node's answer to the startup."},
    {"client_idle", CFG_DURATION, OFF(client_idle_ms), .min = 0, .max = 30 * DAY_MS,
     .doc = "Close a session whose client neither sent nor received anything this long "
            "(0 = never: long idle sessions are normal for databases)."},
    {"server_idle", CFG_DURATION, OFF(server_idle_ms), .min = 0, .max = 30 * DAY_MS,
     .doc = "Close a session whose node neither sent nor received anything this long "
            "(0 = never)."},
    {"drain", CFG_DURATION, OFF(drain_ms), .min = 0, .max = DAY_MS,
     .doc = "After SIGTERM, open sessions may finish this long; then they are closed."},
    {"handover", CFG_DURATION, OFF(handover_ms), .min = 0, .max = 60000,
     .doc = "After SIGTERM with vrrpd watching: keep serving this long while the VIPs move to "
            "the peer, before the listeners close."},
    {NULL},
};

static const struct cfg_field limit_fields[] = {
    {"cancel_inflight", CFG_UINT, OFF(cancel_inflight), .min = 0, .max = 100000,
     .doc = "CancelRequest connections (to nodes and the peer) open at once; beyond it a "
            "cancel is dropped (0 = no limit). Each costs a descriptor here and, on "
            "PostgreSQL, a process on the node."},
    {"cancel_rate", CFG_UINT, OFF(cancel_rate), .min = 0, .max = 1000000,
     .doc = "CancelRequests acted on per second, from all clients (0 = no limit)."},
    {"cancel_source_rate", CFG_UINT, OFF(cancel_source_rate), .min = 0, .max = 1000000,
     .doc = "CancelRequests acted on per second from one client address (an IPv6 /64 "
            "counts as one), with bursts of twice that (0 = no limit). Cancels the peer lbd "
            "forwards were counted there."},
    {"cancel_window", CFG_DURATION, OFF(cancel_window_ms), .min = 0, .max = 60000,
     .doc = "A CancelRequest with the same (pid, key) as one acted on this recently is "
            "dropped (0 = off): a second one cannot cancel more."},
    {"startup_per_source", CFG_UINT, OFF(startup_per_source), .min = 0, .max = 1000000,
     .doc = "Connections from one client address (an IPv6 /64 counts as one) that have not "
            "yet had a node's first answer; beyond it a new one gets 53300 at once (0 = no "
            "limit). With timeouts.startup counted from accept, this bounds how many of "
            "maxconn one source can hold without logging in."},
    {NULL},
};

static const struct cfg_field peer_fields[] = {
    {"address", CFG_ADDR, OFF(peer), .default_port = 5433,
     .doc = "The peer lbd's cancel listener: CancelRequests for keys unknown here go there."},
    {"listen", CFG_ADDR, OFF(peer_listen), .default_port = 5433,
     .doc = "Our cancel listener for the peer (takes only CancelRequests, never forwards "
            "them again). Changes on restart only."},
    {"key_file", CFG_STR, OFF(peer_key_file), sizeof(((struct lbd_config *)0)->peer_key_file),
     .def_doc = "none",
     .doc = "A file with the pair's shared secret (the same on both instances, at least 16 "
            "bytes, not readable by others; e.g. head -c 32 /dev/urandom | base64). With it, a "
            "node command given to one lbd (pgvipctl nodes drain ...) is also sent to the "
            "peer over the peer listener, signed (HMAC-SHA256, a timestamp within 30 s, never "
            "taken twice), and the answer says what each instance did; without it, commands "
            "act on this instance only. Read at start (before lbd gives up root); changes on "
            "restart only."},
    {NULL},
};

static int parse_peer(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct lbd_config *c = base;
    int rc = cfg_map_apply(d, n, path, peer_fields, base);
    c->has_peer = cfg_map_get(d, n, "address") != NULL;
    c->has_peer_listen = cfg_map_get(d, n, "listen") != NULL;
    return rc;
}

static const struct cfg_field lbd_fields[] = {
    {"listen", CFG_CUSTOM, 0, .custom = parse_listen, .required = true,
     .type_doc = "address or list of up to 8 addresses host:port (port 5432 when omitted)",
     .doc = "Where clients connect: the VIPs. Bound with IP_FREEBIND, so lbd listens before "
            "vrrpd adds the address to this host. Changes on restart only."},
    {"admin", CFG_CUSTOM, 0, .custom = parse_admin,
     .type_doc = "address host:port (port 8081 when omitted), or off", .def_doc = "127.0.0.1:8081",
     .doc = "The read-only admin endpoint: / (status page), /health, /metrics (Prometheus), "
            "/status (JSON). Changes on restart only."},
    {"maxconn", CFG_UINT, OFF(maxconn), .min = 1, .max = 1000000,
     .doc = "Client sessions at most; beyond it a client gets ErrorResponse 53300."},
    {"workers", CFG_UINT, OFF(workers), .min = 0, .max = LBD_MAX_WORKERS,
     .def_doc = "0 (the CPUs lbd may run on)",
     .doc = "Event loops relaying client sessions, each on its own thread and core; 0: one "
            "per CPU lbd may run on (its affinity), or $PGVIP_LBD_WORKERS when set. The first also "
            "accepts every connection "
            "and runs the checks, the admin and control endpoints and the liveness "
            "channel; a new connection goes to the loop with the fewest sessions. Node "
            "states, session counts per node, maxconn, the cancel key map and the limits are "
            "shared by all. Changes on restart only."},
    {"relay", CFG_ENUM, OFF(relay), .choices = lbd_relay_names,
     .doc = "Who moves an established session's bytes: lbd, in user space, with both values "
            "(it copies messages through one buffer per direction and splices bulk "
            "transfers). The experimental kernel relay (relay: kernel) was removed: it could "
            "duplicate a segment when a direction fell back to lbd (docs/kernel-relay.md). "
            "Changes on restart only."},
    {"log_level", CFG_ENUM, OFF(log_level), .choices = level_names,
     .doc = "Least severe level logged (logfmt lines on stderr)."},
    {"log_target", CFG_ENUM, OFF(log_target), .choices = log_target_names,
     .doc = "Where the log lines go: stderr (logfmt); journal (systemd's journal, natively: "
            "the level as PRIORITY and every field as PGVIP_*, e.g. journalctl "
            "PGVIP_EVENT=node_state PGVIP_NODE=pg2); syslog; auto: the journal when stderr "
            "is connected to it (under systemd), else stderr."},
    {"log_file", CFG_STR, OFF(log_file), sizeof(((struct lbd_config *)0)->log_file),
     .doc = "Also append the log lines to this file."},
    {"liveness_socket", CFG_STR, OFF(liveness_socket),
     sizeof(((struct lbd_config *)0)->liveness_socket),
     .doc = "Unix socket through which vrrpd tracks this lbd (vrrp.track.lbd.socket). Changes "
            "on restart only."},
    {"keepalive", CFG_DURATION, OFF(keepalive_ms), .min = 0, .max = DAY_MS,
     .doc = "TCP keepalive idle time on client and node connections (0 = off)."},
    {"user", CFG_STR, OFF(user), sizeof(((struct lbd_config *)0)->user),
     .doc = "Started as root, lbd binds its sockets and then runs as this user. Changes on "
            "restart only."},
    {"close_on_vip_loss", CFG_BOOL, OFF(close_on_vip_loss),
     .doc = "When an address lbd serves leaves this host (vrrpd moved the VIP to the peer), "
            "close the sessions clients opened to it at once: their packets go to the peer "
            "now, so they can never carry another query, and closing frees their node "
            "connections instead of holding them until TCP keepalive gives up."},
    {"log_sessions", CFG_BOOL, OFF(log_sessions),
     .doc = "A session_end line (info) for each session that ends normally, with its client, "
            "VIP, node, backend pid, user, database, times and bytes. Off on a busy "
            "instance, the counters and histograms still count every session; sessions that "
            "end in an error are logged either way (warn)."},
    CTL_CONFIG_FIELD("control", OFF(control),
                     "lbd's control socket for pgvipctl: nodes (drain, disable, enable, weight, "
                     "add, remove), sessions (show, kill). Default socket " LBD_CONTROL_SOCKET "."),
    {"timeouts", CFG_SECTION, .sub = timeout_fields, .doc = "Deadlines."},
    {"limits", CFG_SECTION, .sub = limit_fields,
     .doc = "Bounds on what clients that have not logged in can cost (docs/abuse-model.md)."},
    {"peer", CFG_CUSTOM, 0, .custom = parse_peer, .type_doc = "section", .sub = peer_fields,
     .doc = "The other lbd of the pair, for CancelRequests that reach the wrong instance "
            "(both address and listen, or neither)."},
    {"pool", CFG_SECTION, .sub = pool_fields, .required = true,
     .doc = "The database nodes, balancing and health checks."},
    {NULL},
};

/* The vrrp: section is vrrpd's (vrrpd --check validates it); lbd reads only where vrrpd
 * writes its state, to show it on the status page. */
static int parse_vrrp(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct lbd_config *c = base;
    if (n->type != YAML_MAPPING_NODE)
        return 0;
    yaml_node_t *sf = cfg_map_get(d, n, "state_file");
    const char *v = sf ? cfg_scalar(sf) : NULL;
    if (v == NULL)
        return 0;
    if (strlen(v) >= sizeof(c->vrrpd_state_file))
        return cfg_error(d, sf, "vrrp.state_file", "a path shorter than %zu bytes",
                         sizeof(c->vrrpd_state_file));
    snprintf(c->vrrpd_state_file, sizeof(c->vrrpd_state_file), "%s", v);
    (void)path;
    return 0;
}

static const struct cfg_field top_fields[] = {
    {"instance", CFG_STR, OFF(instance), sizeof(((struct lbd_config *)0)->instance),
     .doc = "Names this instance in every log line, the metrics and the status page. Changes "
            "on restart only."},
    {"lbd", CFG_SECTION, .sub = lbd_fields, .required = true, .doc = "lbd's section."},
    {"vrrp", CFG_CUSTOM, 0, .custom = parse_vrrp, .type_doc = "section",
     .doc = "vrrpd's section (see vrrpd(8)); lbd reads only vrrp.state_file from it, to show "
            "vrrpd's state on the status page."},
    {NULL},
};

void lbd_config_set_defaults(struct lbd_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->instance, sizeof(c->instance), "lbd");
    parse_sockaddr("127.0.0.1:8081", 0, &c->admin);
    c->admin_enabled = true;
    c->maxconn = 10000;
    c->relay = LBD_RELAY_USER;
    c->close_on_vip_loss = true;
    ctl_config_defaults(&c->control, LBD_CONTROL_SOCKET);
    c->log_sessions = true;
    c->log_level = LOG_INFO;
    c->connect_ms = 2000;
    c->startup_ms = 10000;
    c->drain_ms = 30000;
    c->handover_ms = 500;
    c->keepalive_ms = 60000;
    c->balance = POOL_ROUNDROBIN;
    c->retries = 2;
    c->on_node_down = LBD_ON_DOWN_KEEP;
    c->cancel_unknown = LBD_CANCEL_ONE;
    c->cancel_inflight = 64;
    c->cancel_rate = 100;
    c->cancel_source_rate = 10;
    c->cancel_window_ms = 1000;
    c->startup_per_source = 256;
    c->reuse_max_idle = 0;
    c->reuse_idle_ms = 30000;
    c->check_type = LBD_CHECK_PG;
    c->check_interval_ms = 2000;
    c->check_timeout_ms = 1000;
    c->rise = 2;
    c->fall = 3;
    c->http_port = 8080;
    snprintf(c->http_path, sizeof(c->http_path), "/health?ready=1");
    snprintf(c->pg_user, sizeof(c->pg_user), "lbd_check");
    snprintf(c->pg_database, sizeof(c->pg_database), "postgres");
}

/* Whether ip (a listen address, port ignored) is one this host has now. */
static bool address_is_local(const struct sockaddr_storage *ip)
{
    struct ifaddrs *ifs = NULL;
    bool found = false;
    if (getifaddrs(&ifs) != 0)
        return true; /* (cannot tell: do not refuse) */
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != ip->ss_family)
            continue;
        if (ip->ss_family == AF_INET)
            found = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
                    ((const struct sockaddr_in *)ip)->sin_addr.s_addr;
        else
            found = memcmp(&((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
                           &((const struct sockaddr_in6 *)ip)->sin6_addr, 16) == 0;
    }
    freeifaddrs(ifs);
    return found;
}

static bool address_is_any_or_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET) {
        uint32_t v = ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr);
        return v == INADDR_ANY || (v >> 24) == 127;
    }
    const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
    return IN6_IS_ADDR_UNSPECIFIED(v6) || IN6_IS_ADDR_LOOPBACK(v6);
}

/* Whether a vrrp group of the file moves ip: vrrp.groups[].vips, a scalar or a list. */
static bool vrrp_moves(struct cfg_doc *d, yaml_node_t *groups, const struct sockaddr_storage *ip)
{
    if (groups == NULL || groups->type != YAML_SEQUENCE_NODE)
        return false;
    for (size_t g = 0; g < cfg_seq_len(groups); g++) {
        yaml_node_t *grp = cfg_seq_item(d, groups, g);
        yaml_node_t *vips =
            grp && grp->type == YAML_MAPPING_NODE ? cfg_map_get(d, grp, "vips") : NULL;
        size_t n = vips == NULL ? 0 : vips->type == YAML_SEQUENCE_NODE ? cfg_seq_len(vips) : 1;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *v = vips->type == YAML_SEQUENCE_NODE ? cfg_seq_item(d, vips, i) : vips;
            const char *s = v ? cfg_scalar(v) : NULL;
            struct sockaddr_storage a;
            if (s && parse_ip(s, &a) == 0 && a.ss_family == ip->ss_family &&
                (a.ss_family == AF_INET
                     ? ((struct sockaddr_in *)&a)->sin_addr.s_addr ==
                           ((const struct sockaddr_in *)ip)->sin_addr.s_addr
                     : memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
                              &((const struct sockaddr_in6 *)ip)->sin6_addr, 16) == 0))
                return true;
        }
    }
    return false;
}

/* What lbd's section says against the vrrp section of the same file: mistakes each
 * daemon accepts alone and the pair cannot work with. */
static int validate_pair(struct cfg_doc *d, struct lbd_config *c, yaml_node_t *lbd)
{
    yaml_node_t *vrrp = cfg_map_get(d, cfg_doc_root(d), "vrrp");
    if (vrrp == NULL || vrrp->type != YAML_MAPPING_NODE)
        return 0;
    yaml_node_t *track = cfg_map_get(d, vrrp, "track");
    yaml_node_t *tl =
        track && track->type == YAML_MAPPING_NODE ? cfg_map_get(d, track, "lbd") : NULL;
    yaml_node_t *ts = tl && tl->type == YAML_MAPPING_NODE ? cfg_map_get(d, tl, "socket") : NULL;
    const char *tsock = ts ? cfg_scalar(ts) : NULL;
    if (tsock && strcmp(tsock, c->liveness_socket) != 0)
        return cfg_error(d, ts, "vrrp.track.lbd.socket",
                         "\"%s\" is not lbd.liveness_socket (%s): vrrpd would wait in FAULT "
                         "for an lbd that never answers there",
                         tsock, c->liveness_socket[0] ? c->liveness_socket : "not set");
    yaml_node_t *groups = cfg_map_get(d, vrrp, "groups");
    if (groups == NULL || groups->type != YAML_SEQUENCE_NODE)
        return 0; /* (vrrpd's own check says what is missing) */
    for (size_t i = 0; i < c->n_listen; i++) {
        const struct sockaddr_storage *a = &c->listen[i];
        if (address_is_any_or_loopback(a) || vrrp_moves(d, groups, a) || address_is_local(a))
            continue;
        char s[SOCKADDR_STRLEN];
        return cfg_error(d, cfg_map_get(d, lbd, "listen"), "lbd.listen",
                         "%s is in no vrrp group's vips and not an address of this host: no "
                         "client could ever reach lbd there",
                         format_sockaddr((const struct sockaddr *)a, s, sizeof(s)));
    }
    return 0;
}

static int validate(struct cfg_doc *d, struct lbd_config *c)
{
    yaml_node_t *root = cfg_doc_root(d);
    yaml_node_t *lbd = cfg_map_get(d, root, "lbd");
    if (c->check_timeout_ms > c->check_interval_ms)
        return cfg_error(d, cfg_map_get(d, cfg_map_get(d, lbd, "pool"), "health"),
                         "lbd.pool.health", "timeout (%llums) must not exceed interval (%llums)",
                         (unsigned long long)c->check_timeout_ms,
                         (unsigned long long)c->check_interval_ms);
    if (c->http_path[0] != '/')
        return cfg_error(d, cfg_map_get(d, cfg_map_get(d, lbd, "pool"), "health"),
                         "lbd.pool.health.http_path", "must start with /");
    if (c->has_peer != c->has_peer_listen)
        return cfg_error(d, cfg_map_get(d, lbd, "peer"), "lbd.peer",
                         "needs both address (the peer's cancel listener) and listen (ours)");
    if (c->has_peer) {
        /* A client port (or our own cancel listener) as the peer's would send forwarded
         * cancels where they are not taken, or back here. */
        const struct sockaddr *pa = (const struct sockaddr *)&c->peer;
        bool clash = sockaddr_equal(pa, (const struct sockaddr *)&c->peer_listen);
        for (size_t i = 0; i < c->n_listen && !clash; i++) {
            const struct sockaddr *la = (const struct sockaddr *)&c->listen[i];
            /* (Both instances listen for clients on the same ports.) */
            clash = sockaddr_port(pa) == sockaddr_port(la);
        }
        if (clash)
            return cfg_error(d, cfg_map_get(d, cfg_map_get(d, lbd, "peer"), "address"),
                             "lbd.peer.address",
                             "the peer lbd's cancel listener (its peer.listen): not on a port "
                             "the pair listens on for clients, and not our own peer.listen");
    }
    return validate_pair(d, c, lbd);
}

static void set_defaults(void *cfg)
{
    lbd_config_set_defaults(cfg);
}

static int validate_any(struct cfg_doc *d, void *cfg)
{
    return validate(d, cfg);
}

static const struct cfg_loader loader = {top_fields, set_defaults, validate_any};

int lbd_config_load(const char *path, struct lbd_config *cfg, char *err, size_t errsize)
{
    return cfg_load(&loader, path, NULL, cfg, err, errsize);
}

int lbd_config_load_string(const char *name, const char *text, struct lbd_config *cfg, char *err,
                           size_t errsize)
{
    return cfg_load(&loader, name, text, cfg, err, errsize);
}

void lbd_config_describe(FILE *out, bool roff)
{
    static struct lbd_config defaults;
    cfg_loader_describe(&loader, &defaults, out, roff);
}
