/* keymap.c -- cancel-key lookup (see keymap.h). */
#include "keymap.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot(const struct keymap *m, uint32_t pid, uint32_t key)
{
    uint64_t h = ((uint64_t)pid << 32 | key) * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 32) & (m->nbuckets - 1);
}

int keymap_init(struct keymap *m)
{
    m->nbuckets = 256;
    m->count = 0;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    return m->buckets ? 0 : -ENOMEM;
}

void keymap_free(struct keymap *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}

static void grow(struct keymap *m)
{
    size_t nb = m->nbuckets * 2;
    struct keymap_entry **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return; /* keep the old table: longer chains, still correct */
    struct keymap old = *m;
    m->buckets = b;
    m->nbuckets = nb;
    for (size_t i = 0; i < old.nbuckets; i++) {
        struct keymap_entry *e = old.buckets[i];
        while (e) {
            struct keymap_entry *next = e->next;
            size_t s = slot(m, e->pid, e->key);
            e->next = m->buckets[s];
            m->buckets[s] = e;
            e = next;
        }
    }
    free(old.buckets);
}

int keymap_add(struct keymap *m, struct keymap_entry *e, uint32_t pid, uint32_t key)
{
    if (m->buckets == NULL)
        return -ENOMEM;
    if (e->linked)
        keymap_remove(m, e);
    if (m->count >= m->nbuckets)
        grow(m);
    e->pid = pid;
    e->key = key;
    size_t s = slot(m, pid, key);
    e->next = m->buckets[s];
    m->buckets[s] = e;
    e->linked = 1;
    m->count++;
    return 0;
}

void keymap_remove(struct keymap *m, struct keymap_entry *e)
{
    if (!e->linked)
        return;
    struct keymap_entry **pp = &m->buckets[slot(m, e->pid, e->key)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    e->linked = 0;
    e->next = NULL;
    m->count--;
}

struct keymap_entry *keymap_find(const struct keymap *m, uint32_t pid, uint32_t key)
{
    if (m->buckets == NULL)
        return NULL;
    for (struct keymap_entry *e = m->buckets[slot(m, pid, key)]; e; e = e->next)
        if (e->pid == pid && e->key == key)
            return e;
    return NULL;
}
