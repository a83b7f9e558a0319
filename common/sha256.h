/* sha256.h -- SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the pair's
 * authenticated peer link (lbd.peer.key_file): small, no library needed. */
#ifndef COMMON_SHA256_H
#define COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t used;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t n);
void sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN]);

/* HMAC-SHA256 over the concatenation of n_parts parts (part[i], len[i]). */
void hmac_sha256(const uint8_t *key, size_t key_len, const void *const *part, const size_t *len,
                 size_t n_parts, uint8_t out[SHA256_LEN]);

/* Compare n bytes in time that does not depend on where they differ: 0 when equal. */
int ct_memcmp(const void *a, const void *b, size_t n);

#endif
