/* vrrp_packet.c -- VRRPv3 IPv4 advertisement codec (see vrrp_packet.h).
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
 *  |(rsvd) |     Max Adver Int     |          Checksum             |
 *  |                      IPvX Address(es)                         |
 *                                               RFC 5798 section 5.1 */
#include "vrrp_packet.h"

#include "csum.h"

#include <stdio.h>
#include <string.h>

const char *const vrrp_parse_result_names[] = {
    "ok",   "truncated", "not_vrrp", "ttl",      "version",
    "type", "length",    "count",    "interval", "checksum",
};

uint16_t vrrp_checksum(uint32_t src, uint32_t dst, const uint8_t *msg, size_t len)
{
    /* The IPv4 pseudo-header (RFC 5798 5.2.8), four bytes a line as RFC 768 draws it. */
    /* clang-format off */
    uint8_t pseudo[12] = {
        (uint8_t)(src >> 24), (uint8_t)(src >> 16), (uint8_t)(src >> 8), (uint8_t)src,
        (uint8_t)(dst >> 24), (uint8_t)(dst >> 16), (uint8_t)(dst >> 8), (uint8_t)dst,
        0, VRRP_PROTO, (uint8_t)(len >> 8), (uint8_t)len,
    };
    /* clang-format on */
    return csum_fold(csum_add(msg, len, csum_add(pseudo, sizeof(pseudo), 0)));
}

size_t vrrp_packet_build(uint8_t *buf, size_t size, const struct vrrp_adv *adv, uint32_t src,
                         uint32_t dst)
{
    size_t len = VRRP_HDR_LEN + 4u * adv->naddrs;
    if (len > size || adv->naddrs == 0 || adv->naddrs > VRRP_MAX_ADDRS || adv->max_adv_cs > 0x0fff)
        return 0;
    buf[0] = (VRRP_VERSION << 4) | VRRP_TYPE_ADVERT;
    buf[1] = adv->vrid;
    buf[2] = adv->priority;
    buf[3] = adv->naddrs;
    buf[4] = (uint8_t)((adv->max_adv_cs >> 8) & 0x0f); /* rsvd bits are zero */
    buf[5] = (uint8_t)adv->max_adv_cs;
    buf[6] = buf[7] = 0;
    for (uint8_t i = 0; i < adv->naddrs; i++) {
        uint8_t *p = buf + VRRP_HDR_LEN + 4 * i;
        p[0] = (uint8_t)(adv->addrs[i] >> 24);
        p[1] = (uint8_t)(adv->addrs[i] >> 16);
        p[2] = (uint8_t)(adv->addrs[i] >> 8);
        p[3] = (uint8_t)adv->addrs[i];
    }
    uint16_t ck = vrrp_checksum(src, dst, buf, len);
    buf[6] = (uint8_t)(ck >> 8);
    buf[7] = (uint8_t)ck;
    return len;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#include <stdarg.h>

__attribute__((format(printf, 4, 5))) static enum vrrp_parse_result
reject(enum vrrp_parse_result r, char *errmsg, size_t size, const char *fmt, ...)
{
    if (errmsg && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, size, fmt, ap);
        va_end(ap);
    }
    return r;
}

enum vrrp_parse_result vrrp_packet_parse(const uint8_t *pkt, size_t len, struct vrrp_adv *out,
                                         uint32_t *src, uint32_t *dst, char *errmsg, size_t errsize)
{
    memset(out, 0, sizeof(*out));
    if (len < 20 || (pkt[0] >> 4) != 4)
        return reject(VRRP_ERR_TRUNCATED, errmsg, errsize, "not an IPv4 datagram (%u bytes)",
                      (unsigned)len);
    size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
    size_t total = (size_t)pkt[2] << 8 | pkt[3];
    if (ihl < 20 || ihl > len)
        return reject(VRRP_ERR_TRUNCATED, errmsg, errsize, "bad IP header length %u",
                      (unsigned)ihl);
    if (total > len || total < ihl)
        total = len; /* raw sockets may report the length in host order on old kernels */
    if (pkt[9] != VRRP_PROTO)
        return reject(VRRP_ERR_NOT_VRRP, errmsg, errsize, "IP protocol %u, not 112", pkt[9]);
    *src = get32(pkt + 12);
    *dst = get32(pkt + 16);
    /* 7.1: the TTL must be 255, proving the sender is on this segment. */
    if (pkt[8] != 255)
        return reject(VRRP_ERR_TTL, errmsg, errsize, "TTL %u, not 255", pkt[8]);
    const uint8_t *m = pkt + ihl;
    size_t mlen = total - ihl;
    if (mlen < VRRP_HDR_LEN)
        return reject(VRRP_ERR_TRUNCATED, errmsg, errsize, "VRRP message of %u bytes",
                      (unsigned)mlen);
    if ((m[0] >> 4) != VRRP_VERSION)
        return reject(VRRP_ERR_VERSION, errmsg, errsize, "version %u, not 3", m[0] >> 4);
    if ((m[0] & 0x0f) != VRRP_TYPE_ADVERT)
        return reject(VRRP_ERR_TYPE, errmsg, errsize, "type %u, not 1 (advertisement)",
                      m[0] & 0x0f);
    unsigned count = m[3];
    if (count == 0 || count > VRRP_MAX_ADDRS)
        return reject(VRRP_ERR_COUNT, errmsg, errsize, "address count %u (1 to %u accepted)", count,
                      VRRP_MAX_ADDRS);
    if (mlen != VRRP_HDR_LEN + 4 * count)
        return reject(VRRP_ERR_LENGTH, errmsg, errsize, "%u bytes do not match %u IPv4 addresses",
                      (unsigned)mlen, count);
    if (vrrp_checksum(*src, *dst, m, mlen) != 0)
        return reject(VRRP_ERR_CHECKSUM, errmsg, errsize, "checksum 0x%04x does not add up",
                      (unsigned)m[6] << 8 | m[7]);
    out->vrid = m[1];
    out->priority = m[2];
    out->naddrs = (uint8_t)count;
    out->max_adv_cs = (uint16_t)((m[4] & 0x0f) << 8 | m[5]);
    if (out->max_adv_cs == 0)
        return reject(VRRP_ERR_INTERVAL, errmsg, errsize, "Max Adver Int of 0");
    for (unsigned i = 0; i < count; i++)
        out->addrs[i] = get32(m + VRRP_HDR_LEN + 4 * i);
    if (errmsg && errsize)
        errmsg[0] = '\0';
    return VRRP_OK;
}
