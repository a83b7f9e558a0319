/* garp.c -- gratuitous ARP announcements (see garp.h). */
#include "garp.h"

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
    struct sockaddr_ll to = {.sll_family = AF_PACKET,
                             .sll_protocol = htons(ETH_P_ARP),
                             .sll_ifindex = g->ifindex,
                             .sll_halen = 6};
    memset(to.sll_addr, 0xff, 6);
    if (sendto(g->fd, frame, sizeof(frame), 0, (struct sockaddr *)&to, sizeof(to)) >= 0)
        return 0;
    /* A packet socket that receives keeps ENETDOWN from the last time the link went
     * down and returns it on the next send, even when the link is up again: that send
     * was lost, and with it the first announcement of a takeover (clients waited for
     * the repeat, 100 ms later). This one does not receive; should a kernel still
     * report a stale error, it is consumed now: try once more. */
    if (errno == ENETDOWN &&
        sendto(g->fd, frame, sizeof(frame), 0, (struct sockaddr *)&to, sizeof(to)) >= 0)
        return 0;
    return -errno;
}
