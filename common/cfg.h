/* cfg.h -- YAML configuration loading into typed structs.
 *
 * A file is parsed into a libyaml document; each section is a table of fields
 * (struct cfg_field) applied to a struct by cfg_map_apply(). Every error names
 * file:line:column, the key path (lbd.pool.health.interval) and what was expected;
 * unknown keys are errors that list the valid ones. */
#ifndef COMMON_CFG_H
#define COMMON_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yaml.h>

struct cfg_doc {
    yaml_document_t doc;
    int loaded;
    char file[256];
    char err[1024];  /* the first error, ready to print */
    char more[3072]; /* the errors after it, one a line (a file's every mistake at once) */
    unsigned n_errs;
};

enum cfg_type {
    CFG_STR,      /* char[size] */
    CFG_UINT,     /* uint32_t within [min, max] */
    CFG_BOOL,     /* bool */
    CFG_DURATION, /* uint64_t milliseconds within [min, max] */
    CFG_ENUM,     /* int index into choices */
    CFG_ADDR,     /* struct sockaddr_storage, "host:port" (default_port if none) */
    CFG_CUSTOM,   /* custom(d, node, path, base) */
    CFG_IGNORE,   /* accepted and skipped (a section another daemon reads) */
    CFG_SECTION,  /* a mapping whose keys are the table sub, applied to the same base */
};

struct cfg_doc;
struct cfg_field {
    const char *key;
    enum cfg_type type;
    size_t off;
    size_t size;
    uint64_t min, max;
    const char *const *choices; /* NULL-terminated, for CFG_ENUM */
    int default_port;
    int (*custom)(struct cfg_doc *d, yaml_node_t *node, const char *path, void *base);
    bool required;
    /* Documentation: --help and the man pages are printed from these tables (cfg_describe),
     * so they list exactly the keys the loader accepts (one without doc is marked
     * "(undocumented)", which a test rejects). */
    const char *doc;             /* what it means */
    const char *type_doc;        /* CFG_CUSTOM: the value's form ("address or list of addresses") */
    const char *def_doc;         /* the default in words, where the defaults struct cannot say */
    const struct cfg_field *sub; /* CFG_SECTION's keys; or a list's item keys (with list) */
    bool list;                   /* a list of mappings with the keys sub, each item ... */
    const void *sub_defaults;    /* ... starting from this struct */
};

/* Load and parse a file (or a string, for tests). Returns 0 or -errno with d->err set. */
int cfg_doc_load(struct cfg_doc *d, const char *path);
int cfg_doc_load_string(struct cfg_doc *d, const char *name, const char *text);
void cfg_doc_free(struct cfg_doc *d);
/* Every error recorded, one a line, the first first. */
const char *cfg_errors(const struct cfg_doc *d, char *buf, size_t size);
yaml_node_t *cfg_doc_root(struct cfg_doc *d);

/* Record an error at node (line and column from its start mark); returns -EINVAL.
 * The first is kept in err, the next ones (up to CFG_MAX_ERRORS in all) in more: the
 * loaders go on past a key in error, so one run names every mistake of a file. */
#define CFG_MAX_ERRORS 20
int cfg_error(struct cfg_doc *d, const yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Apply a mapping node to base through the field table (terminated by key == NULL). */
int cfg_map_apply(struct cfg_doc *d, yaml_node_t *map, const char *path,
                  const struct cfg_field *fields, void *base);
/* Apply one scalar field (used by custom handlers). */
int cfg_field_apply(struct cfg_doc *d, yaml_node_t *node, const char *path,
                    const struct cfg_field *f, void *base);

/* A list of mappings (the nodes, the groups): n must be a sequence of min to max items
 * (else "expected MIN to MAX WHAT", or "needs at least one ..." when min is 1 and it is
 * empty); item i starts as a copy of defaults at items + i * item_size, gets fields,
 * then check (NULL: none) judges it against the ones before (sub: "path[i]"). Returns 0
 * or the first item's error; *count: the items applied. */
struct cfg_list {
    size_t min, max;
    const char *what, *one; /* plural and singular names: "nodes", "node" */
    const struct cfg_field *fields;
    void *items;
    size_t item_size;
    const void *defaults;
    int (*check)(struct cfg_doc *d, yaml_node_t *item, const char *sub, size_t i, void *ctx);
    void *ctx;
};
int cfg_list_apply(struct cfg_doc *d, yaml_node_t *n, const char *path, const struct cfg_list *l,
                   size_t *count);

/* An address (host:port, default_port when none) or "off" / "": sets *enabled. */
int cfg_addr_or_off(struct cfg_doc *d, yaml_node_t *n, const char *path, int default_port,
                    void *addr, bool *enabled);

/* Helpers for custom handlers. */
const char *cfg_scalar(const yaml_node_t *n); /* NULL when n is not a scalar */
size_t cfg_seq_len(const yaml_node_t *seq);
yaml_node_t *cfg_seq_item(struct cfg_doc *d, const yaml_node_t *seq, size_t i);
yaml_node_t *cfg_map_get(struct cfg_doc *d, const yaml_node_t *map, const char *key);
int cfg_expect(struct cfg_doc *d, const yaml_node_t *n, const char *path, yaml_node_type_t type);

/* Print every documented key of fields (and of its sections and lists) with its type,
 * default and meaning. defaults: a struct with the loader's defaults, read at each
 * field's offset, so the printed defaults are the real ones. roff: man page markup. */
/* A daemon's configuration file, loaded the one way both daemons do: defaults, then the
 * file's fields (every mistake recorded with file:line:column), then the daemon's own
 * checks across fields. */
struct cfg_loader {
    const struct cfg_field *top; /* the file's top-level fields */
    void (*set_defaults)(void *cfg);
    /* After the fields applied without error: 0, or nonzero after cfg_error(). NULL: none. */
    int (*validate)(struct cfg_doc *d, void *cfg);
};
/* Load path (text NULL) or text named path (tests) into cfg: 0, or nonzero with every
 * error in err, one a line. */
int cfg_load(const struct cfg_loader *ld, const char *path, const char *text, void *cfg, char *err,
             size_t errsize);
/* The reference (--help-config, the man page) from the loader's own fields and defaults;
 * defaults: scratch space of the configuration's size. */
void cfg_loader_describe(const struct cfg_loader *ld, void *defaults, FILE *out, bool roff);

void cfg_describe(FILE *out, const struct cfg_field *fields, const void *defaults,
                  const char *prefix, bool roff);

#endif
