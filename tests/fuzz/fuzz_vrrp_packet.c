/* fuzz_vrrp_packet.c -- anything on the segment, as the raw socket hands it to vrrpd
 * (vrrpd/vrrp_packet.c). An accepted packet must re-encode to the same message. */
#include "vrrp_packet.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vrrp_adv a;
    uint32_t src, dst;
    char why[128];
    if (vrrp_packet_parse(data, size, &a, &src, &dst, why, sizeof(why)) != VRRP_OK)
        return 0;
    uint8_t again[VRRP_HDR_LEN + 4 * VRRP_MAX_ADDRS];
    size_t n = vrrp_packet_build(again, sizeof(again), &a, src, dst);
    size_t ihl = (size_t)(data[0] & 0x0f) * 4;
    /* The reserved bits are not kept; compare everything else. */
    if (n == 0 || ihl + n > size || memcmp(again, data + ihl, 4) != 0 ||
        memcmp(again + 8, data + ihl + 8, n - 8) != 0)
        abort();
    return 0;
}
