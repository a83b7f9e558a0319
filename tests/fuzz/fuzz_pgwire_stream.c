/* fuzz_pgwire_stream.c -- the relay's framing of a node's message stream, fed in chunks
 * whose sizes come from the input: the same bytes in any chunking give the same events
 * (lbd/pgwire.c). */
#include "pgwire.h"

#include <stdlib.h>
#include <string.h>

struct tally {
    unsigned keys, ready;
    uint32_t pid, key;
};

static void on_event(void *ctx, const struct pgwire_event *ev)
{
    struct tally *t = ctx;
    if (ev->kind == PGWIRE_EV_BACKEND_KEY) {
        t->keys++;
        t->pid ^= ev->pid;
        t->key ^= ev->key;
    } else {
        t->ready++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    struct pgwire_stream whole = {0}, parts = {0};
    struct tally a = {0}, b = {0};
    int ra = pgwire_stream_feed(&whole, data, size, on_event, &a);
    int rb = 0;
    for (size_t i = 0; i < size && rb == 0; i += step)
        rb = pgwire_stream_feed(&parts, data + i, size - i < step ? size - i : step, on_event, &b);
    if (ra != rb || (ra == 0 && (a.keys != b.keys || a.ready != b.ready || a.pid != b.pid ||
                                 a.key != b.key || whole.messages != parts.messages)))
        abort();
    return 0;
}
