/* ctl_config.c -- see ctl_config.h. */
#include "ctl_config.h"

#include "log.h"

#include <errno.h>
#include <grp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COFF(f) offsetof(struct ctl_config, f)

void ctl_config_defaults(struct ctl_config *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->socket, sizeof(c->socket), "%s", path);
    c->mode = 0660;
}

bool ctl_config_equal(const struct ctl_config *a, const struct ctl_config *b)
{
    return strcmp(a->socket, b->socket) == 0 && a->mode == b->mode &&
           strcmp(a->group, b->group) == 0 && strcmp(a->operators, b->operators) == 0 &&
           strcmp(a->state_file, b->state_file) == 0;
}

static int parse_socket(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct ctl_config *c = base;
    const char *v = cfg_scalar(n);
    if (v == NULL)
        return cfg_error(d, n, path, "expected a path, or off");
    c->socket_set = true;
    if (strcmp(v, "off") == 0 || v[0] == '\0') {
        c->socket[0] = '\0';
        return 0;
    }
    if (v[0] != '/' || strlen(v) >= sizeof(c->socket))
        return cfg_error(d, n, path, "an absolute path shorter than %zu bytes, or off",
                         sizeof(c->socket));
    snprintf(c->socket, sizeof(c->socket), "%s", v);
    return 0;
}

static int parse_state_file(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct ctl_config *c = base;
    const char *v = cfg_scalar(n);
    if (v == NULL)
        return cfg_error(d, n, path, "expected a path, or off");
    if (strcmp(v, "off") == 0 || v[0] == '\0') {
        c->state_file[0] = '\0';
        return 0;
    }
    /* (".tmp" is added for the write, and the whole must fit statefile.c's buffers) */
    if (v[0] != '/' || strlen(v) + 4 >= sizeof(c->state_file) || v[strlen(v) - 1] == '/')
        return cfg_error(d, n, path, "an absolute file path shorter than %zu bytes, or off",
                         sizeof(c->state_file) - 4);
    snprintf(c->state_file, sizeof(c->state_file), "%s", v);
    return 0;
}

static int parse_mode(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct ctl_config *c = base;
    const char *v = cfg_scalar(n);
    char *end = NULL;
    unsigned long m = v ? strtoul(v, &end, 8) : 0;
    if (v == NULL || v[0] == '\0' || *end != '\0' || m > 0777 || v[0] == '-')
        return cfg_error(d, n, path, "an octal file mode such as 0660");
    c->mode = (uint32_t)m;
    return 0;
}

const struct cfg_field ctl_config_fields[] = {
    {"socket", CFG_CUSTOM, 0, .custom = parse_socket, .type_doc = "path, or off",
     .def_doc = "/run/pgvip/DAEMON-control.sock",
     .doc = "The control socket pgvipctl talks to. Created before the daemon gives up root; "
            "a stale socket is replaced. With the default, the daemon runs without one (and "
            "says so) when its directory is missing or another daemon answers there; a path "
            "set here must work. Changes on restart only."},
    {"mode", CFG_CUSTOM, 0, .custom = parse_mode, .type_doc = "octal file mode", .def_doc = "0660",
     .doc = "The socket's mode: who can connect, and so look. Changes on restart only."},
    {"group", CFG_STR, COFF(group), sizeof(((struct ctl_config *)0)->group),
     .def_doc = "none (root's)",
     .doc = "The socket's group (with mode 0660, its members may connect and look). Changes "
            "on restart only."},
    {"operators", CFG_STR, COFF(operators), sizeof(((struct ctl_config *)0)->operators),
     .def_doc = "none",
     .doc = "A group whose members (primary or supplementary group) may change things. Root "
            "may always; so may the user the daemon was started as, when that was not root. "
            "Every change is logged with who asked (pid, uid, command). Changes on restart "
            "only."},
    {"state_file", CFG_CUSTOM, 0, .custom = parse_state_file, .type_doc = "path, or off",
     .def_doc = "off",
     .doc = "Where the daemon keeps what operators changed with pgvipctl, so that a restart "
            "keeps it (docs/control.md says what each daemon keeps). Rewritten whole on each "
            "change (a temporary file renamed over it), read at start; a missing directory "
            "is made at start, for the user the daemon runs as. Off: changes last until a "
            "restart. Changes on restart only."},
    {NULL},
};

int ctl_config_parse(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct ctl_config *c = base; /* (cfg_field_apply passes the field's own address) */
    int rc = cfg_map_apply(d, n, path, ctl_config_fields, c);
    char sub[300];
    const char *keys[2] = {"group", "operators"};
    const char *vals[2] = {c->group, c->operators};
    for (int i = 0; i < 2; i++) {
        if (vals[i][0] == '\0' || getgrnam(vals[i]) != NULL)
            continue;
        snprintf(sub, sizeof(sub), "%s.%s", path, keys[i]);
        rc = cfg_error(d, cfg_map_get(d, n, keys[i]), sub, "no group \"%s\" on this host", vals[i]);
    }
    return rc;
}

int ctl_config_open(struct ctl *c, uv_loop_t *loop, const struct ctl_config *cfg,
                    const char *daemon, ctl_handler handler, void *ctx, uid_t *owner_uid,
                    gid_t *operators_gid, bool *open)
{
    *owner_uid = getuid(); /* (before the daemon gives up root) */
    *operators_gid = (gid_t)-1;
    *open = false;
    if (cfg->socket[0] == '\0')
        return 0;
    gid_t sock_gid = (gid_t)-1;
    const char *names[2] = {cfg->group, cfg->operators};
    gid_t *gids[2] = {&sock_gid, operators_gid};
    for (int i = 0; i < 2; i++) {
        if (names[i][0] == '\0')
            continue;
        struct group *g = getgrnam(names[i]);
        if (g == NULL) {
            fprintf(stderr, "%s: control: no group \"%s\"\n", daemon, names[i]);
            return -ENOENT;
        }
        *gids[i] = g->gr_gid;
    }
    int rc = ctl_start(c, loop, cfg->socket, cfg->mode, sock_gid, handler, ctx);
    if (rc != 0) {
        ctl_stop(c);
        const char *why = rc == -EADDRINUSE ? "another daemon answers there"
                          : rc == -EEXIST   ? "a file that is not a socket is there"
                                            : strerror(-rc);
        if (cfg->socket_set) {
            fprintf(stderr, "%s: cannot open the control socket %s: %s\n", daemon, cfg->socket,
                    why);
            return rc;
        }
        log_emit(rc == -ENOENT ? LOG_INFO : LOG_WARN, "control_off",
                 "socket=%s reason=\"%s\" detail=\"set the control socket in the file to have "
                 "one\"",
                 cfg->socket, why);
        return 0;
    }
    *open = true;
    log_emit(LOG_INFO, "listen", "address=%s role=control mode=%04o group=%s operators=%s",
             cfg->socket, cfg->mode, cfg->group[0] ? cfg->group : "-",
             cfg->operators[0] ? cfg->operators : "-");
    return 0;
}
