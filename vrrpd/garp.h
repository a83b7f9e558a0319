/* garp.h -- gratuitous ARP and, for IPv6 VIPs, unsolicited neighbor advertisements:
 * announce that a VIP now lives at this interface's MAC, so switches and neighbours
 * update at once instead of after their ARP or neighbor cache expires. */
#ifndef VRRPD_GARP_H
#define VRRPD_GARP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define GARP_NA_LEN (14 + 40 + 32) /* Ethernet, IPv6, NA with its link-layer option */

struct garp {
    int fd;
    int ifindex;
    uint8_t mac[6];
};

/* Open an AF_PACKET socket on the interface and read its MAC. 0 or -errno. */
int garp_open(struct garp *g, int ifindex, const char *ifname);
void garp_close(struct garp *g);
/* Broadcast one ARP announcement (RFC 5227 2.3: request, sender = target = ip). */
int garp_send(struct garp *g, uint32_t ip);
/* Send one unsolicited Neighbor Advertisement for ip to all nodes (RFC 4861 7.2.6:
 * Override set, our MAC as the target's link-layer address). 0 or -errno. */
int garp_send6(struct garp *g, const struct in6_addr *ip);
/* Build that frame (pure, for tests): the frame's length, 0 when size is too small. */
size_t garp_na_build(uint8_t *frame, size_t size, const uint8_t mac[6], const uint8_t ip6[16]);

#endif
