/* vrrp_packet.h -- VRRP version 3 advertisements for IPv4 (RFC 5798 section 5).
 *
 * Pure code: build and parse only. The parser applies the receive checks of RFC 5798
 * section 7.1 that need nothing but the packet (version, type, TTL, checksum, length,
 * address count) and says why a packet was dropped; the daemon checks VRID and the
 * addresses against its configuration. */
#ifndef VRRPD_VRRP_PACKET_H
#define VRRPD_VRRP_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define VRRP_PROTO 112           /* IP protocol number */
#define VRRP_MCAST_V4 0xE0000012 /* 224.0.0.18, host order */
#define VRRP_VERSION 3
#define VRRP_TYPE_ADVERT 1
#define VRRP_MAX_ADDRS 32
#define VRRP_HDR_LEN 8

struct vrrp_adv {
    uint8_t vrid;
    uint8_t priority;
    uint16_t max_adv_cs; /* Max Adver Int, centiseconds (12 bits) */
    uint8_t naddrs;
    uint32_t addrs[VRRP_MAX_ADDRS]; /* IPv4, host order */
};

enum vrrp_parse_result {
    VRRP_OK = 0,
    VRRP_ERR_TRUNCATED, /* shorter than its IP header or the VRRP header */
    VRRP_ERR_NOT_VRRP,  /* IP protocol is not 112 */
    VRRP_ERR_TTL,       /* TTL is not 255: sent from off the segment */
    VRRP_ERR_VERSION,   /* not version 3 */
    VRRP_ERR_TYPE,      /* not an ADVERTISEMENT */
    VRRP_ERR_LENGTH,    /* length does not match the address count */
    VRRP_ERR_COUNT,     /* no addresses, or more than we accept */
    VRRP_ERR_INTERVAL,  /* Max Adver Int of 0 */
    VRRP_ERR_CHECKSUM,  /* checksum with the pseudo-header does not add up */
    VRRP_ERR__COUNT
};
extern const char *const vrrp_parse_result_names[]; /* for metrics labels and logs */

/* Internet checksum over an IPv4 pseudo-header (src, dst, 0, 112, length) and the VRRP
 * message, as RFC 5798 section 5.2.8 asks; addresses in host order. */
uint16_t vrrp_checksum(uint32_t src, uint32_t dst, const uint8_t *msg, size_t len);

/* Build the VRRP message (no IP header) into buf. Returns its length or 0. */
size_t vrrp_packet_build(uint8_t *buf, size_t size, const struct vrrp_adv *adv, uint32_t src,
                         uint32_t dst);

/* Parse a whole IPv4 datagram as a raw socket returns it (IP header included).
 * src/dst are taken from the IP header. On error, errmsg says why in words. */
enum vrrp_parse_result vrrp_packet_parse(const uint8_t *pkt, size_t len, struct vrrp_adv *out,
                                         uint32_t *src, uint32_t *dst, char *errmsg,
                                         size_t errsize);

#endif
