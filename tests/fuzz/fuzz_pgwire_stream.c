/* fuzz_pgwire_stream.c -- the relay's framing of a node's message stream, and of a
 * client's (the reuse tracker), fed in chunks whose sizes come from the input: the same
 * bytes in any chunking give the same events and counts, and the same messages as the
 * one framing reader (pgwire_frame) walking them whole; the buffered walkers built on
 * that reader (a startup answer, a reset's answer) stay inside the input (lbd/pgwire.c). */
#include "pgwire.h"

#include <stdlib.h>
#include <string.h>

struct tally {
    unsigned keys, ready, params;
    uint32_t pid, key;
};

static void on_event(void *ctx, const struct pgwire_event *ev)
{
    struct tally *t = ctx;
    if (ev->kind == PGWIRE_EV_BACKEND_KEY) {
        t->keys++;
        t->pid ^= ev->pid;
        t->key ^= ev->key;
    } else if (ev->kind == PGWIRE_EV_READY) {
        t->ready++;
    } else {
        t->params++;
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
    if (ra != rb ||
        (ra == 0 && (a.keys != b.keys || a.ready != b.ready || a.pid != b.pid || a.key != b.key ||
                     a.params != b.params || whole.messages != parts.messages)))
        abort();
    /* The reader's own walk: whole messages up to the first that is not. */
    uint64_t n = 0;
    size_t at = 0;
    struct pgwire_msg m;
    enum pgwire_frame f;
    while ((f = pgwire_frame(data + at, size - at, &m)) == PGWIRE_FRAME_WHOLE) {
        if (m.size < 5 || m.size > size - at || m.body != data + at + 5)
            abort();
        at += m.size;
        n++;
    }
    if ((f == PGWIRE_FRAME_BAD) != (ra != 0) || (ra == 0 && whole.messages != n))
        abort();
    struct pgwire_reply r;
    if (pgwire_reply_parse(data, size, &r) == PGWIRE_REPLY_TRUSTED &&
        (r.len > size || r.key_off + 13 > r.len || pgwire_reply_params(data, &r, NULL) > r.len))
        abort();
    int reset = pgwire_reset_answer(data, size);
    if (reset < -1 || reset > 1)
        abort();
    struct pgwire_front fw = {0}, fp = {0};
    int fa = pgwire_front_feed(&fw, data, size), fb = 0;
    for (size_t i = 0; i < size && fb == 0; i += step)
        fb = pgwire_front_feed(&fp, data + i, size - i < step ? size - i : step);
    if (fa != fb || (fa == 0 && (fw.syncs != fp.syncs || fw.open_batch != fp.open_batch ||
                                 fw.terminated != fp.terminated || fw.hdr_len != fp.hdr_len)))
        abort();
    return 0;
}
