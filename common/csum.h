/* csum.h -- the Internet checksum (RFC 1071), for the packets vrrpd builds and checks
 * (VRRP adverts, neighbor advertisements). Pure; big-endian 16-bit words. */
#ifndef PGVIP_CSUM_H
#define PGVIP_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* Add len bytes to a running one's-complement sum (an odd last byte padded with zero). */
static inline uint32_t csum_add(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

/* Fold the carries and complement: the checksum to put in the packet. Over a packet
 * that carries its right checksum, the result is 0. */
static inline uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

#endif
