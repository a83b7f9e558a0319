/* lbd_config.c -- lbd's configuration table and validation (see lbd_config.h). */
#include "lbd_config.h"

#include "cfg.h"
#include "log.h"
#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *const lbd_check_type_names[] = {"tcp", "pg", "http", "none", NULL};
const char *const lbd_cancel_unknown_names[] = {"all", "one", "drop", NULL};
static const char *const on_down_names[] = {"keep", "cut", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};

#define OFF(f) offsetof(struct lbd_config, f)
#define NOFF(f) offsetof(struct lbd_node_config, f)
#define HOUR_MS (3600ULL * 1000)
#define DAY_MS (24 * HOUR_MS)

static const struct cfg_field node_fields[] = {
    {"name", CFG_STR, NOFF(name), sizeof(((struct lbd_node_config *)0)->name)},
    {"address", CFG_ADDR, NOFF(addr), .default_port = 5432, .required = true},
    {"weight", CFG_UINT, NOFF(weight), .min = 0, .max = 1000},
    {"max_sessions", CFG_UINT, NOFF(max_sessions), .min = 0, .max = 10000000},
    {"check_port", CFG_UINT, NOFF(check_port), .min = 1, .max = 65535},
    {NULL},
};

static int parse_nodes(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct lbd_config *c = base;
    int rc = cfg_expect(d, n, path, YAML_SEQUENCE_NODE);
    if (rc)
        return rc;
    size_t len = cfg_seq_len(n);
    if (len == 0)
        return cfg_error(d, n, path, "needs at least one node");
    if (len > POOL_MAX_NODES)
        return cfg_error(d, n, path, "at most %d nodes", POOL_MAX_NODES);
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = cfg_seq_item(d, n, i);
        char sub[256];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        struct lbd_node_config *nc = &c->nodes[i];
        memset(nc, 0, sizeof(*nc));
        nc->weight = 1;
        if ((rc = cfg_map_apply(d, item, sub, node_fields, nc)) != 0)
            return rc;
        if (nc->name[0] == '\0')
            format_sockaddr((struct sockaddr *)&nc->addr, nc->name, sizeof(nc->name));
        for (size_t j = 0; j < i; j++) {
            if (sockaddr_equal((struct sockaddr *)&c->nodes[j].addr,
                               (struct sockaddr *)&nc->addr))
                return cfg_error(d, item, sub, "address of node \"%s\" repeats node \"%s\"",
                                 nc->name, c->nodes[j].name);
            if (strcmp(c->nodes[j].name, nc->name) == 0)
                return cfg_error(d, item, sub, "node name \"%s\" is used twice", nc->name);
        }
    }
    c->n_nodes = len;
    return 0;
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
    static const struct cfg_field f = {"admin", CFG_ADDR, 0, .default_port = 8081};
    const char *s = cfg_scalar(n);
    if (s && (strcmp(s, "off") == 0 || strcmp(s, "") == 0)) {
        c->admin_enabled = false;
        return 0;
    }
    c->admin_enabled = true;
    return cfg_field_apply(d, n, path, &f, &c->admin);
}

static const struct cfg_field health_fields[] = {
    {"type", CFG_ENUM, OFF(check_type), .choices = lbd_check_type_names},
    {"interval", CFG_DURATION, OFF(check_interval_ms), .min = 10, .max = HOUR_MS},
    {"timeout", CFG_DURATION, OFF(check_timeout_ms), .min = 10, .max = HOUR_MS},
    {"rise", CFG_UINT, OFF(rise), .min = 1, .max = 100},
    {"fall", CFG_UINT, OFF(fall), .min = 1, .max = 100},
    {"http_port", CFG_UINT, OFF(http_port), .min = 1, .max = 65535},
    {"http_path", CFG_STR, OFF(http_path), sizeof(((struct lbd_config *)0)->http_path)},
    {"pg_user", CFG_STR, OFF(pg_user), sizeof(((struct lbd_config *)0)->pg_user)},
    {"pg_database", CFG_STR, OFF(pg_database), sizeof(((struct lbd_config *)0)->pg_database)},
    {NULL},
};

static int parse_health(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    return cfg_map_apply(d, n, path, health_fields, base);
}

static const struct cfg_field pool_fields[] = {
    {"balance", CFG_ENUM, OFF(balance), .choices = pool_balance_names},
    {"retries", CFG_UINT, OFF(retries), .min = 0, .max = 16},
    {"on_node_down", CFG_ENUM, OFF(on_node_down), .choices = on_down_names},
    {"cancel_unknown", CFG_ENUM, OFF(cancel_unknown), .choices = lbd_cancel_unknown_names},
    {"health", CFG_CUSTOM, 0, .custom = parse_health},
    {"nodes", CFG_CUSTOM, 0, .custom = parse_nodes, .required = true},
    {NULL},
};

static int parse_pool(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    return cfg_map_apply(d, n, path, pool_fields, base);
}

static const struct cfg_field timeout_fields[] = {
    {"connect", CFG_DURATION, OFF(connect_ms), .min = 1, .max = HOUR_MS},
    {"startup", CFG_DURATION, OFF(startup_ms), .min = 1, .max = HOUR_MS},
    {"client_idle", CFG_DURATION, OFF(client_idle_ms), .min = 0, .max = 30 * DAY_MS},
    {"server_idle", CFG_DURATION, OFF(server_idle_ms), .min = 0, .max = 30 * DAY_MS},
    {"drain", CFG_DURATION, OFF(drain_ms), .min = 0, .max = DAY_MS},
    {"handover", CFG_DURATION, OFF(handover_ms), .min = 0, .max = 60000},
    {NULL},
};

static int parse_timeouts(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    return cfg_map_apply(d, n, path, timeout_fields, base);
}

static const struct cfg_field peer_fields[] = {
    {"address", CFG_ADDR, OFF(peer), .default_port = 5433},
    {"listen", CFG_ADDR, OFF(peer_listen), .default_port = 5433},
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
    {"listen", CFG_CUSTOM, 0, .custom = parse_listen, .required = true},
    {"admin", CFG_CUSTOM, 0, .custom = parse_admin},
    {"maxconn", CFG_UINT, OFF(maxconn), .min = 1, .max = 1000000},
    {"log_level", CFG_ENUM, OFF(log_level), .choices = level_names},
    {"log_file", CFG_STR, OFF(log_file), sizeof(((struct lbd_config *)0)->log_file)},
    {"liveness_socket", CFG_STR, OFF(liveness_socket),
     sizeof(((struct lbd_config *)0)->liveness_socket)},
    {"keepalive", CFG_DURATION, OFF(keepalive_ms), .min = 0, .max = DAY_MS},
    {"user", CFG_STR, OFF(user), sizeof(((struct lbd_config *)0)->user)},
    {"timeouts", CFG_CUSTOM, 0, .custom = parse_timeouts},
    {"peer", CFG_CUSTOM, 0, .custom = parse_peer},
    {"pool", CFG_CUSTOM, 0, .custom = parse_pool, .required = true},
    {NULL},
};

static int parse_lbd(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    return cfg_map_apply(d, n, path, lbd_fields, base);
}

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
    {"instance", CFG_STR, OFF(instance), sizeof(((struct lbd_config *)0)->instance)},
    {"lbd", CFG_CUSTOM, 0, .custom = parse_lbd, .required = true},
    {"vrrp", CFG_CUSTOM, 0, .custom = parse_vrrp},
    {NULL},
};

static void set_defaults(struct lbd_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->instance, sizeof(c->instance), "lbd");
    parse_sockaddr("127.0.0.1:8081", 0, &c->admin);
    c->admin_enabled = true;
    c->maxconn = 10000;
    c->log_level = LOG_INFO;
    c->connect_ms = 2000;
    c->startup_ms = 10000;
    c->drain_ms = 30000;
    c->handover_ms = 500;
    c->keepalive_ms = 60000;
    c->balance = POOL_ROUNDROBIN;
    c->retries = 2;
    c->on_node_down = LBD_ON_DOWN_KEEP;
    c->cancel_unknown = LBD_CANCEL_ALL;
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
    return 0;
}

static int finish(struct cfg_doc *d, int rc, struct lbd_config *cfg, char *err, size_t errsize)
{
    if (rc == 0)
        rc = cfg_map_apply(d, cfg_doc_root(d), "", top_fields, cfg);
    if (rc == 0)
        rc = validate(d, cfg);
    if (rc != 0)
        snprintf(err, errsize, "%s", d->err[0] ? d->err : "configuration error");
    cfg_doc_free(d);
    return rc;
}

int lbd_config_load(const char *path, struct lbd_config *cfg, char *err, size_t errsize)
{
    struct cfg_doc d;
    set_defaults(cfg);
    int rc = cfg_doc_load(&d, path);
    return finish(&d, rc, cfg, err, errsize);
}

int lbd_config_load_string(const char *name, const char *text, struct lbd_config *cfg,
                           char *err, size_t errsize)
{
    struct cfg_doc d;
    set_defaults(cfg);
    int rc = cfg_doc_load_string(&d, name, text);
    return finish(&d, rc, cfg, err, errsize);
}
