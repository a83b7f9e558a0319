/* garp.c -- gratuitous ARP and unsolicited neighbor advertisements (see garp.h). */
#include "garp.h"

#include "bytes.h"
#include "csum.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int garp_open(struct garp *g, int ifindex, const char *ifname)
{
    g->ifindex = ifindex;
    /* Protocol 0: a send-only socket. With ETH_P_ARP it also queued every ARP frame of
     * the segment (never read) and was told of every link down (see garp_send). */
    g->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (g->fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, ifname, IF_NAMESIZE - 1);
    if (ioctl(g->fd, SIOCGIFHWADDR, &ifr) != 0) {
        int e = errno;
        close(g->fd);
        g->fd = -1;
        return -e;
    }
    memcpy(g->mac, ifr.ifr_hwaddr.sa_data, 6);
    /* Bound to the interface (sendto names it too); a failure here means the interface
     * went away since its index was looked up, which the caller reports. */
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = ifindex};
    if (bind(g->fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) {
        int e = errno;
        close(g->fd);
        g->fd = -1;
        return -e;
    }
    return 0;
}

void garp_close(struct garp *g)
{
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
}

/* Send a whole Ethernet frame of protocol proto on the interface. */
static int send_frame(struct garp *g, const uint8_t *frame, size_t len, uint16_t proto)
{
    struct sockaddr_ll to = {.sll_family = AF_PACKET,
                             .sll_protocol = htons(proto),
                             .sll_ifindex = g->ifindex,
                             .sll_halen = 6};
    memcpy(to.sll_addr, frame, 6);
    if (sendto(g->fd, frame, len, 0, (struct sockaddr *)&to, sizeof(to)) >= 0)
        return 0;
    /* A packet socket that receives keeps ENETDOWN from the last time the link went
     * down and returns it on the next send, even when the link is up again: that send
     * was lost, and with it the first announcement of a takeover (clients waited for
     * the repeat, 100 ms later). This one does not receive; should a kernel still
     * report a stale error, it is consumed now: try once more. */
    if (errno == ENETDOWN && sendto(g->fd, frame, len, 0, (struct sockaddr *)&to, sizeof(to)) >= 0)
        return 0;
    return -errno;
}

int garp_send(struct garp *g, uint32_t ip)
{
    uint8_t frame[ETH_HLEN + sizeof(struct ether_arp)];
    struct ether_header *eh = (struct ether_header *)frame;
    struct ether_arp *arp = (struct ether_arp *)(frame + ETH_HLEN);
    uint32_t be = htonl(ip);
    memset(eh->ether_dhost, 0xff, 6);
    memcpy(eh->ether_shost, g->mac, 6);
    eh->ether_type = htons(ETHERTYPE_ARP);
    arp->arp_hrd = htons(ARPHRD_ETHER);
    arp->arp_pro = htons(ETHERTYPE_IP);
    arp->arp_hln = 6;
    arp->arp_pln = 4;
    arp->arp_op = htons(ARPOP_REQUEST);
    memcpy(arp->arp_sha, g->mac, 6);
    memcpy(arp->arp_spa, &be, 4);
    memset(arp->arp_tha, 0, 6);
    memcpy(arp->arp_tpa, &be, 4);
    return send_frame(g, frame, sizeof(frame), ETH_P_ARP);
}

size_t garp_na_build(uint8_t *frame, size_t size, const uint8_t mac[6], const uint8_t ip6[16])
{
    if (size < GARP_NA_LEN)
        return 0;
    static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 0x01}; /* ff02::1 */
    uint8_t *ip = frame + ETH_HLEN, *icmp = ip + 40;
    const uint16_t plen = 32; /* NA 24 bytes + one 8-byte option */
    memset(frame, 0, GARP_NA_LEN);
    /* Ethernet: to 33:33:00:00:00:01, the all-nodes group's MAC (RFC 2464 7) */
    frame[0] = frame[1] = 0x33;
    frame[5] = 0x01;
    memcpy(frame + 6, mac, 6);
    frame[12] = 0x86; /* ETH_P_IPV6 */
    frame[13] = 0xdd;
    /* IPv6: from the VIP to ff02::1, hop limit 255 (RFC 4861 7.1.2) */
    ip[0] = 0x60;
    be16_put(ip + 4, plen);
    ip[6] = 58; /* ICMPv6 */
    ip[7] = 255;
    memcpy(ip + 8, ip6, 16);
    memcpy(ip + 24, all_nodes, 16);
    /* ICMPv6 Neighbor Advertisement (RFC 4861 4.4): Override set, Router and Solicited
     * not (7.2.6: unsolicited), the VIP as target, our MAC as its link-layer address. */
    icmp[0] = 136;
    icmp[4] = 0x20;
    memcpy(icmp + 8, ip6, 16);
    icmp[24] = 2; /* Target Link-Layer Address option, 1 x 8 bytes */
    icmp[25] = 1;
    memcpy(icmp + 26, mac, 6);
    /* Checksum over the pseudo-header (RFC 8200 8.1) and the message. */
    uint16_t ck = csum_fold(csum_add(icmp, plen, csum_add(ip + 8, 32, 0) + plen + 58));
    be16_put(icmp + 2, ck);
    return GARP_NA_LEN;
}

int garp_send6(struct garp *g, const struct in6_addr *ip)
{
    uint8_t frame[GARP_NA_LEN];
    size_t len = garp_na_build(frame, sizeof(frame), g->mac, ip->s6_addr);
    return send_frame(g, frame, len, ETH_P_IPV6);
}
