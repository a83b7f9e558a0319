/* opstate.h -- what operators changed on lbd's nodes with pgvipctl (admin states and
 * weights), as lbd.control.state_file keeps it across a restart: rendered to and parsed
 * from a small YAML file. Pure: control.c takes it from the pool and gives it back. */
#ifndef LBD_OPSTATE_H
#define LBD_OPSTATE_H

#include "pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct opstate_node {
    char name[64];
    enum node_admin admin;
    bool weight_set;      /* an operator's weight ... */
    uint32_t weight;      /* ... this one, */
    uint32_t file_weight; /* set while the configuration said this (kept only while it does) */
};

struct opstate {
    size_t n;
    struct opstate_node nodes[POOL_MAX_NODES];
};

/* The file's text (NUL-terminated) into buf: its length, or >= size when it did not fit. */
size_t opstate_render(const struct opstate *s, char *buf, size_t size);
/* Parse a file's text (name: for errors): 0, or nonzero with every error in err, one a
 * line, each with name:line:column. */
int opstate_parse(const char *name, const char *text, struct opstate *s, char *err, size_t errsize);
/* The entry for a node, or NULL. */
const struct opstate_node *opstate_find(const struct opstate *s, const char *name);

#endif
