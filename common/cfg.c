/* cfg.c -- YAML configuration loading (see cfg.h). */
#include "cfg.h"

#include "parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

int cfg_error(struct cfg_doc *d, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    if (d->n_errs >= CFG_MAX_ERRORS)
        return -EINVAL;
    char msg[768], line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n)
        snprintf(line, sizeof(line), "%s:%zu:%zu: %s: %s", d->file, n->start_mark.line + 1,
                 n->start_mark.column + 1, path && path[0] ? path : "(top)", msg);
    else
        snprintf(line, sizeof(line), "%s: %s: %s", d->file, path && path[0] ? path : "(top)", msg);
    if (d->n_errs++ == 0) {
        snprintf(d->err, sizeof(d->err), "%s", line);
    } else {
        size_t used = strlen(d->more);
        if (used + strlen(line) + 2 < sizeof(d->more))
            snprintf(d->more + used, sizeof(d->more) - used, "%s%s", used ? "\n" : "", line);
    }
    return -EINVAL;
}

const char *cfg_errors(const struct cfg_doc *d, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s", d->err[0] ? d->err : "configuration error",
             d->more[0] ? "\n" : "", d->more);
    return buf;
}

static int load_parser(struct cfg_doc *d, yaml_parser_t *parser)
{
    if (!yaml_parser_load(parser, &d->doc)) {
        yaml_mark_t m = parser->problem_mark;
        snprintf(d->err, sizeof(d->err), "%s:%zu:%zu: YAML syntax error: %s%s%s", d->file,
                 m.line + 1, m.column + 1, parser->problem ? parser->problem : "unknown",
                 parser->context ? " " : "", parser->context ? parser->context : "");
        yaml_parser_delete(parser);
        return -EINVAL;
    }
    yaml_parser_delete(parser);
    d->loaded = 1;
    if (yaml_document_get_root_node(&d->doc) == NULL) {
        snprintf(d->err, sizeof(d->err), "%s: the file is empty; expected a mapping", d->file);
        return -EINVAL;
    }
    return 0;
}

int cfg_doc_load(struct cfg_doc *d, const char *path)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->file, sizeof(d->file), "%s", path);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        snprintf(d->err, sizeof(d->err), "%s: cannot open the configuration file: %s", path,
                 strerror(e));
        return -e;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int rc = load_parser(d, &parser);
    if (rc == 0 && ferror(f)) {
        snprintf(d->err, sizeof(d->err), "%s: read error", path);
        rc = -EIO;
    }
    fclose(f);
    return rc;
}

int cfg_doc_load_string(struct cfg_doc *d, const char *name, const char *text)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->file, sizeof(d->file), "%s", name);
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    return load_parser(d, &parser);
}

void cfg_doc_free(struct cfg_doc *d)
{
    if (d->loaded)
        yaml_document_delete(&d->doc);
    d->loaded = 0;
}

yaml_node_t *cfg_doc_root(struct cfg_doc *d)
{
    return d->loaded ? yaml_document_get_root_node(&d->doc) : NULL;
}

const char *cfg_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

size_t cfg_seq_len(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *cfg_seq_item(struct cfg_doc *d, const yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(&d->doc, seq->data.sequence.items.start[i]);
}

int cfg_list_apply(struct cfg_doc *d, yaml_node_t *n, const char *path, const struct cfg_list *l,
                   size_t *count)
{
    *count = 0;
    int rc = cfg_expect(d, n, path, YAML_SEQUENCE_NODE);
    if (rc)
        return rc;
    size_t len = cfg_seq_len(n);
    if (len == 0 && l->min == 1)
        return cfg_error(d, n, path, "needs at least one %s", l->one);
    if (len < l->min || len > l->max)
        return cfg_error(d, n, path, "expected %zu to %zu %s", l->min, l->max, l->what);
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = cfg_seq_item(d, n, i);
        char sub[256];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        void *it = (char *)l->items + i * l->item_size;
        memcpy(it, l->defaults, l->item_size);
        if ((rc = cfg_map_apply(d, item, sub, l->fields, it)) != 0 ||
            (l->check && (rc = l->check(d, item, sub, i, l->ctx)) != 0))
            return rc;
        *count = i + 1;
    }
    return 0;
}

yaml_node_t *cfg_map_get(struct cfg_doc *d, const yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = cfg_scalar(yaml_document_get_node(&d->doc, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(&d->doc, p->value);
    }
    return NULL;
}

int cfg_expect(struct cfg_doc *d, const yaml_node_t *n, const char *path, yaml_node_type_t type)
{
    if (n->type == type)
        return 0;
    const char *want = type == YAML_MAPPING_NODE    ? "a mapping (key: value lines)"
                       : type == YAML_SEQUENCE_NODE ? "a list"
                                                    : "a single value";
    return cfg_error(d, n, path, "expected %s, got %s", want, node_kind(n));
}

/* Edit distance, for "did you mean" on unknown keys. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            cur[j] = del < ins ? (del < sub ? del : sub) : (ins < sub ? ins : sub);
        }
        memcpy(prev, cur, sizeof(size_t) * (lb + 1));
    }
    return prev[lb];
}

static int unknown_key(struct cfg_doc *d, yaml_node_t *kn, const char *path, const char *key,
                       const struct cfg_field *fields)
{
    char valid[512] = "";
    size_t used = 0;
    const char *best = NULL;
    size_t best_d = 3;
    for (const struct cfg_field *f = fields; f->key; f++) {
        int w = snprintf(valid + used, sizeof(valid) - used, "%s%s", used ? ", " : "", f->key);
        if (w > 0 && (size_t)w < sizeof(valid) - used)
            used += (size_t)w;
        /* A shortened key ("prio" for "priority") is the likeliest meaning. */
        size_t kl = strlen(key);
        size_t dist = (kl >= 3 && strncmp(f->key, key, kl) == 0) ? 0 : edit_distance(key, f->key);
        if (dist < best_d) {
            best_d = dist;
            best = f->key;
        }
    }
    if (best)
        return cfg_error(d, kn, path, "unknown key \"%s\" (did you mean \"%s\"?); valid keys: %s",
                         key, best, valid);
    return cfg_error(d, kn, path, "unknown key \"%s\"; valid keys: %s", key, valid);
}

static void join_path(char *out, size_t size, const char *path, const char *key)
{
    if (path && path[0])
        snprintf(out, size, "%s.%s", path, key);
    else
        snprintf(out, size, "%s", key);
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "True", "TRUE", "Yes", "On"};
    static const char *const no[] = {"false", "no", "off", "False", "FALSE", "No", "Off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int apply_uint(struct cfg_doc *d, yaml_node_t *n, const char *path,
                      const struct cfg_field *f, const char *s, void *dst)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '-' || s[0] == '\0' || *end != '\0' || errno)
        return cfg_error(d, n, path, "expected a whole number from %llu to %llu, got \"%s\"",
                         (unsigned long long)f->min, (unsigned long long)f->max, s);
    if (v < f->min || v > f->max)
        return cfg_error(d, n, path, "%llu is out of range; expected %llu to %llu", v,
                         (unsigned long long)f->min, (unsigned long long)f->max);
    *(uint32_t *)dst = (uint32_t)v;
    return 0;
}

static int apply_duration(struct cfg_doc *d, yaml_node_t *n, const char *path,
                          const struct cfg_field *f, const char *s, void *dst)
{
    uint64_t ms;
    if (parse_duration_ms(s, &ms) != 0)
        return cfg_error(d, n, path,
                         "expected a duration like 250ms, 2s or 1m (0 for none), got \"%s\"", s);
    if (ms < f->min || ms > f->max)
        return cfg_error(d, n, path, "%s is out of range; expected %llums to %llums", s,
                         (unsigned long long)f->min, (unsigned long long)f->max);
    *(uint64_t *)dst = ms;
    return 0;
}

static int apply_enum(struct cfg_doc *d, yaml_node_t *n, const char *path,
                      const struct cfg_field *f, const char *s, void *dst)
{
    char valid[256] = "";
    size_t used = 0;
    for (int i = 0; f->choices[i]; i++) {
        if (strcmp(s, f->choices[i]) == 0) {
            *(int *)dst = i;
            return 0;
        }
        int w = snprintf(valid + used, sizeof(valid) - used, "%s%s", i ? ", " : "", f->choices[i]);
        if (w > 0 && (size_t)w < sizeof(valid) - used)
            used += (size_t)w;
    }
    return cfg_error(d, n, path, "\"%s\" is not a valid choice; expected one of: %s", s, valid);
}

int cfg_field_apply(struct cfg_doc *d, yaml_node_t *n, const char *path, const struct cfg_field *f,
                    void *base)
{
    void *dst = (char *)base + f->off;
    if (f->type == CFG_IGNORE)
        return 0;
    if (f->type == CFG_CUSTOM) /* (at its offset: a section held in a struct of its own) */
        return f->custom(d, n, path, dst);
    if (f->type == CFG_SECTION)
        return cfg_map_apply(d, n, path, f->sub, base);
    const char *s = cfg_scalar(n);
    if (s == NULL)
        return cfg_error(d, n, path, "expected a single value, got %s", node_kind(n));
    switch (f->type) {
    case CFG_STR:
        if (strlen(s) >= f->size)
            return cfg_error(d, n, path, "value is too long (at most %zu characters)", f->size - 1);
        snprintf((char *)dst, f->size, "%s", s);
        return 0;
    case CFG_UINT:
        return apply_uint(d, n, path, f, s, dst);
    case CFG_BOOL:
        if (parse_bool(s, (bool *)dst) != 0)
            return cfg_error(d, n, path, "expected true or false, got \"%s\"", s);
        return 0;
    case CFG_DURATION:
        return apply_duration(d, n, path, f, s, dst);
    case CFG_ENUM:
        return apply_enum(d, n, path, f, s, dst);
    case CFG_ADDR: {
        int rc = parse_sockaddr(s, f->default_port, (struct sockaddr_storage *)dst);
        if (rc == -ENOENT)
            return cfg_error(d, n, path, "host name in \"%s\" does not resolve", s);
        if (rc == -ERANGE)
            return cfg_error(d, n, path, "port in \"%s\" must be 1 to 65535", s);
        if (rc != 0)
            return cfg_error(d, n, path,
                             "expected an address like 10.0.0.1:5432 or [::1]:5432, got \"%s\"", s);
        return 0;
    }
    default:
        return cfg_error(d, n, path, "internal: unhandled field type");
    }
}

int cfg_map_apply(struct cfg_doc *d, yaml_node_t *map, const char *path,
                  const struct cfg_field *fields, void *base)
{
    int rc = cfg_expect(d, map, path, YAML_MAPPING_NODE);
    if (rc)
        return rc;
    /* A key in error is recorded and the next one looked at: the first error is kept
     * as the result, and every one is reported. */
    int first = 0;
    uint64_t seen = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(&d->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(&d->doc, p->value);
        const char *key = cfg_scalar(kn);
        if (key == NULL) {
            rc = cfg_error(d, kn, path, "keys must be plain words");
            first = first ? first : rc;
            continue;
        }
        size_t i = 0;
        const struct cfg_field *f = fields;
        for (; f->key; f++, i++)
            if (strcmp(f->key, key) == 0)
                break;
        if (f->key == NULL) {
            rc = unknown_key(d, kn, path, key, fields);
            first = first ? first : rc;
            continue;
        }
        char sub[256];
        join_path(sub, sizeof(sub), path, key);
        if (i < 64 && (seen & (1ULL << i))) {
            rc = cfg_error(d, kn, sub, "key appears twice");
            first = first ? first : rc;
            continue;
        }
        if (i < 64)
            seen |= 1ULL << i;
        rc = cfg_field_apply(d, vn, sub, f, base);
        first = first ? first : rc;
    }
    size_t i = 0;
    for (const struct cfg_field *f = fields; f->key; f++, i++)
        if (f->required && i < 64 && !(seen & (1ULL << i))) {
            rc = cfg_error(d, map, path, "missing required key \"%s\"", f->key);
            first = first ? first : rc;
        }
    return first;
}

int cfg_addr_or_off(struct cfg_doc *d, yaml_node_t *n, const char *path, int default_port,
                    void *addr, bool *enabled)
{
    const struct cfg_field f = {"address", CFG_ADDR, 0, .default_port = default_port};
    const char *s = cfg_scalar(n);
    *enabled = !(s && (strcmp(s, "off") == 0 || strcmp(s, "") == 0));
    return *enabled ? cfg_field_apply(d, n, path, &f, addr) : 0;
}

int cfg_load(const struct cfg_loader *ld, const char *path, const char *text, void *cfg, char *err,
             size_t errsize)
{
    struct cfg_doc d;
    ld->set_defaults(cfg);
    int rc = text ? cfg_doc_load_string(&d, path, text) : cfg_doc_load(&d, path);
    if (rc == 0)
        rc = cfg_map_apply(&d, cfg_doc_root(&d), "", ld->top, cfg);
    if (rc == 0 && ld->validate)
        rc = ld->validate(&d, cfg);
    if (rc != 0)
        cfg_errors(&d, err, errsize);
    cfg_doc_free(&d);
    return rc;
}

void cfg_loader_describe(const struct cfg_loader *ld, void *defaults, FILE *out, bool roff)
{
    ld->set_defaults(defaults);
    cfg_describe(out, ld->top, defaults, "", roff);
}
