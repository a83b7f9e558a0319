/* vrrp_packet.c -- VRRPv3 IPv4 advertisement codec (see vrrp_packet.h).
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
 *  |(rsvd) |     Max Adver Int     |          Checksum             |
 *  |                      IPvX Address(es)                         |
 *                                               RFC 5798 section 5.1 */
#include "vrrp_packet.h"

#include "bytes.h"
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
    uint8_t pseudo[12];
    be32_put(pseudo, src);
    be32_put(pseudo + 4, dst);
    pseudo[8] = 0;
    pseudo[9] = VRRP_PROTO;
    be16_put(pseudo + 10, (uint16_t)len);
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
        be32_put(buf + VRRP_HDR_LEN + 4 * i, adv->addrs[i]);
    }
    be16_put(buf + 6, vrrp_checksum(src, dst, buf, len));
    return len;
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
    size_t total = be16_get(pkt + 2);
    if (ihl < 20 || ihl > len)
        return reject(VRRP_ERR_TRUNCATED, errmsg, errsize, "bad IP header length %u",
                      (unsigned)ihl);
    if (total > len || total < ihl)
        total = len; /* raw sockets may report the length in host order on old kernels */
    if (pkt[9] != VRRP_PROTO)
        return reject(VRRP_ERR_NOT_VRRP, errmsg, errsize, "IP protocol %u, not 112", pkt[9]);
    *src = be32_get(pkt + 12);
    *dst = be32_get(pkt + 16);
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
                      (unsigned)be16_get(m + 6));
    out->vrid = m[1];
    out->priority = m[2];
    out->naddrs = (uint8_t)count;
    out->max_adv_cs = (uint16_t)((m[4] & 0x0f) << 8 | m[5]);
    if (out->max_adv_cs == 0)
        return reject(VRRP_ERR_INTERVAL, errmsg, errsize, "Max Adver Int of 0");
    for (unsigned i = 0; i < count; i++)
        out->addrs[i] = be32_get(m + VRRP_HDR_LEN + 4 * i);
    if (errmsg && errsize)
        errmsg[0] = '\0';
    return VRRP_OK;
}
