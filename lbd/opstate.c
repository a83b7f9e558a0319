/* opstate.c -- lbd's operator state file (see opstate.h). One line a node that differs
 * from what the configuration alone gives (an admin state other than ready, or an
 * operator's weight):
 *
 *   nodes:
 *     - {name: "pg1", admin: drain}
 *     - {name: "pg2", admin: ready, weight: 5, file_weight: 10}
 */
#include "opstate.h"

#include "cfg.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define SOFF(f) offsetof(struct opstate_node, f)

static const char *const admin_names[] = {"ready", "drain", "disabled", NULL};

static const struct cfg_field node_fields[] = {
    {"name", CFG_STR, SOFF(name), sizeof(((struct opstate_node *)0)->name), .required = true,
     .doc = "The node (lbd.pool.nodes[].name)."},
    {"admin", CFG_ENUM, SOFF(admin), .choices = admin_names, .doc = "Its admin state."},
    {"weight", CFG_UINT, SOFF(weight), .min = 0, .max = 1000, .doc = "An operator's weight."},
    {"file_weight", CFG_UINT, SOFF(file_weight), .min = 0, .max = 1000,
     .doc = "The configuration's weight when it was set."},
    {NULL},
};

static int check_node(struct cfg_doc *d, yaml_node_t *item, const char *sub, size_t i, void *ctx)
{
    struct opstate *s = ctx;
    struct opstate_node *e = &s->nodes[i];
    e->weight_set = cfg_map_get(d, item, "weight") != NULL;
    if (e->weight_set != (cfg_map_get(d, item, "file_weight") != NULL))
        return cfg_error(d, item, sub, "weight and file_weight go together");
    for (size_t j = 0; j < i; j++)
        if (strcmp(s->nodes[j].name, e->name) == 0)
            return cfg_error(d, item, sub, "node \"%s\" is listed twice", e->name);
    return 0;
}

static int parse_nodes(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct opstate *s = base;
    static const struct opstate_node none = {.admin = NODE_ADMIN_READY};
    const struct cfg_list l = {.max = POOL_MAX_NODES,
                               .what = "nodes",
                               .one = "node",
                               .fields = node_fields,
                               .items = s->nodes,
                               .item_size = sizeof(s->nodes[0]),
                               .defaults = &none,
                               .check = check_node,
                               .ctx = s};
    return cfg_list_apply(d, n, path, &l, &s->n);
}

static const struct cfg_field top_fields[] = {
    {"nodes", CFG_CUSTOM, 0, .custom = parse_nodes, .type_doc = "list of mappings", .list = true,
     .sub = node_fields, .doc = "The nodes an operator changed."},
    {NULL},
};

static void set_defaults(void *base)
{
    memset(base, 0, sizeof(struct opstate));
}

int opstate_parse(const char *name, const char *text, struct opstate *s, char *err, size_t errsize)
{
    static const struct cfg_loader ld = {.top = top_fields, .set_defaults = set_defaults};
    return cfg_load(&ld, name, text, s, err, errsize);
}

const struct opstate_node *opstate_find(const struct opstate *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->nodes[i].name, name) == 0)
            return &s->nodes[i];
    return NULL;
}

/* name as a YAML double-quoted scalar */
static size_t quoted(const char *in, char *out, size_t size)
{
    size_t o = 0;
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 6 < size; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return o;
}

size_t opstate_render(const struct opstate *s, char *buf, size_t size)
{
    size_t len = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int k =                                                                                    \
            snprintf(buf + (len < size ? len : size), len < size ? size - len : 0, __VA_ARGS__);   \
        len += k > 0 ? (size_t)k : 0;                                                              \
    } while (0)
    ADD("# lbd's operator state (lbd.control.state_file): what pgvipctl changed on the\n"
        "# nodes, kept across a restart. lbd rewrites it on every change; use pgvipctl.\n");
    ADD("nodes:%s\n", s->n ? "" : " []");
    for (size_t i = 0; i < s->n; i++) {
        const struct opstate_node *e = &s->nodes[i];
        char q[64 * 4 + 3];
        quoted(e->name, q, sizeof(q));
        ADD("  - {name: %s, admin: %s", q, admin_names[e->admin]);
        if (e->weight_set)
            ADD(", weight: %u, file_weight: %u", e->weight, e->file_weight);
        ADD("}\n");
    }
#undef ADD
    return len;
}
