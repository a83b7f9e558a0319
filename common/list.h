/* list.h -- intrusive doubly linked lists reached from a head pointer (NULL: empty),
 * newest first, over any struct with `prev` and `next` members of its own type: the
 * insert and the unlink every such list in both daemons needs, written once. head and
 * e are evaluated more than once: pass plain lvalues. Iterate as usual:
 *   for (struct x *e = head, *next; e; e = next) { next = e->next; ... } */
#ifndef PGVIP_LIST_H
#define PGVIP_LIST_H

#define LIST_PUSH(head, e)                                                                         \
    do {                                                                                           \
        (e)->prev = NULL;                                                                          \
        (e)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (e);                                                                    \
        (head) = (e);                                                                              \
    } while (0)

#define LIST_UNLINK(head, e)                                                                       \
    do {                                                                                           \
        if ((e)->prev)                                                                             \
            (e)->prev->next = (e)->next;                                                           \
        else                                                                                       \
            (head) = (e)->next;                                                                    \
        if ((e)->next)                                                                             \
            (e)->next->prev = (e)->prev;                                                           \
        (e)->prev = (e)->next = NULL;                                                              \
    } while (0)

#endif
