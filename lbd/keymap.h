/* keymap.h -- BackendKeyData (pid, secret key) -> session, for routing CancelRequests.
 *
 * Intrusive chained hash: the entry lives in the session, so adding and removing
 * allocate nothing but the bucket array when it grows. Pure code. */
#ifndef LBD_KEYMAP_H
#define LBD_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

struct keymap_entry {
    uint32_t pid, key;
    struct keymap_entry *next;
    int linked;
};

struct keymap {
    struct keymap_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

int keymap_init(struct keymap *m);
void keymap_free(struct keymap *m);
/* Returns 0 or -ENOMEM (then the entry stays unlinked: cancels for it fall back). */
int keymap_add(struct keymap *m, struct keymap_entry *e, uint32_t pid, uint32_t key);
void keymap_remove(struct keymap *m, struct keymap_entry *e);
struct keymap_entry *keymap_find(const struct keymap *m, uint32_t pid, uint32_t key);

#endif
