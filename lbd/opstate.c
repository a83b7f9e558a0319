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

/* One UTF-8 sequence at p: its code point and length; 0 when it is not UTF-8 (a stray
 * byte, an overlong form, a surrogate, past U+10FFFF). */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
    size_t n = p[0] < 0x80             ? 1
               : (p[0] & 0xe0) == 0xc0 ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0)
        return 0;
    uint32_t c = n == 1 ? p[0] : p[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* (a NUL ends it here too) */
            return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < least[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* name as a YAML double-quoted scalar that reads back the same: libyaml folds a line
 * break written as it is (U+0085, U+2028, U+2029) and refuses control characters, so
 * those are escaped, with '"' and '\'; other UTF-8 goes as it is. A byte that is not
 * UTF-8 (a name given to pgvipctl nodes add; libyaml would refuse the whole file)
 * becomes U+FFFD. */
static size_t quoted(const char *in, char *out, size_t size)
{
    size_t o = 0;
    out[o++] = '"';
    const unsigned char *p = (const unsigned char *)in;
    while (*p && o + 8 < size) {
        uint32_t c = 0xfffd;
        size_t n = utf8_next(p, &c);
        if (n == 0) {
            o += (size_t)snprintf(out + o, size - o, "\\ufffd");
            p++;
            continue;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 ||
                   c == 0xfeff || c == 0xfffe || c == 0xffff) {
            o += (size_t)snprintf(out + o, size - o, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
        } else {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
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
        char q[64 * 6 + 16]; /* (a name's 63 bytes, each escaped) */
        quoted(e->name, q, sizeof(q));
        ADD("  - {name: %s, admin: %s", q, admin_names[e->admin]);
        if (e->weight_set)
            ADD(", weight: %u, file_weight: %u", e->weight, e->file_weight);
        ADD("}\n");
    }
#undef ADD
    return len;
}
