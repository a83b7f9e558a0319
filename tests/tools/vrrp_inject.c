/* vrrp_inject.c -- put crafted VRRP packets on a segment, to prove vrrpd drops what it
 * must. Builds the whole IPv4 datagram itself (IP_HDRINCL), so TTL, version, checksum
 * and length can be wrong on purpose.
 *
 * usage: vrrp_inject IFNAME SRC VRID PRIORITY VIP KIND [COUNT [DST]]
 * DST defaults to 224.0.0.18; a unicast DST tests vrrpd's unicast-peer mode.
 * KIND: good ttl checksum version type truncated count interval */
#include "vrrp_packet.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s IFNAME SRC VRID PRIORITY VIP KIND [COUNT [DST]]\n", argv[0]);
        return 2;
    }
    struct in_addr src, vip;
    if (inet_pton(AF_INET, argv[2], &src) != 1 || inet_pton(AF_INET, argv[5], &vip) != 1) {
        fprintf(stderr, "bad address\n");
        return 2;
    }
    const char *kind = argv[6];
    int count = argc > 7 ? atoi(argv[7]) : 1;
    struct in_addr dst_addr = {.s_addr = htonl(VRRP_MCAST_V4)};
    if (argc > 8 && inet_pton(AF_INET, argv[8], &dst_addr) != 1) {
        fprintf(stderr, "bad destination\n");
        return 2;
    }
    uint32_t dst_h = ntohl(dst_addr.s_addr);
    struct vrrp_adv a = {.vrid = (uint8_t)atoi(argv[3]),
                         .priority = (uint8_t)atoi(argv[4]),
                         .max_adv_cs = 10,
                         .naddrs = 1,
                         .addrs = {ntohl(vip.s_addr)}};
    uint8_t pkt[128] = {0};
    uint8_t *m = pkt + 20;
    size_t len = vrrp_packet_build(m, sizeof(pkt) - 20, &a, ntohl(src.s_addr), dst_h);
    uint8_t ttl = 255;
    if (strcmp(kind, "ttl") == 0)
        ttl = 64;
    else if (strcmp(kind, "checksum") == 0)
        m[7] ^= 0x55;
    else if (strcmp(kind, "version") == 0)
        m[0] = 0x21; /* version 2: its checksum no longer matters, the version is checked first */
    else if (strcmp(kind, "type") == 0)
        m[0] = 0x32;
    else if (strcmp(kind, "truncated") == 0)
        len = 6;
    else if (strcmp(kind, "count") == 0)
        m[3] = 3; /* says 3 addresses, carries 1 */
    else if (strcmp(kind, "interval") == 0) {
        a.max_adv_cs = 0;
        len = vrrp_packet_build(m, sizeof(pkt) - 20, &a, ntohl(src.s_addr), dst_h);
    } else if (strcmp(kind, "good") != 0) {
        fprintf(stderr, "unknown kind %s\n", kind);
        return 2;
    }
    pkt[0] = 0x45;
    pkt[2] = (uint8_t)((20 + len) >> 8);
    pkt[3] = (uint8_t)(20 + len);
    pkt[8] = ttl;
    pkt[9] = VRRP_PROTO;
    memcpy(pkt + 12, &src.s_addr, 4);
    uint32_t dst = dst_addr.s_addr;
    memcpy(pkt + 16, &dst, 4);
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* IPPROTO_RAW implies IP_HDRINCL */
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    struct ip_mreqn mif = {.imr_ifindex = (int)if_nametoindex(argv[1])};
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mif, sizeof(mif));
    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, argv[1], (socklen_t)strlen(argv[1]));
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = dst};
    for (int i = 0; i < count; i++)
        if (sendto(fd, pkt, 20 + len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
            perror("sendto");
            return 1;
        }
    close(fd);
    return 0;
}
