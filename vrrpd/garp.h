/* garp.h -- gratuitous ARP: announce that a VIP now lives at this interface's MAC, so
 * switches and neighbours update at once instead of after their ARP cache expires. */
#ifndef VRRPD_GARP_H
#define VRRPD_GARP_H

#include <stdint.h>

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

#endif
