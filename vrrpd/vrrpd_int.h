/* vrrpd_int.h -- what vrrpd's own files share (vrrpd.h has the daemon context). */
#ifndef VRRPD_INT_H
#define VRRPD_INT_H

#include "vrrpd.h"

#include <stdbool.h>
#include <stdint.h>

/* vrrpd.c */
/* Lines that could come many times a second (counters keep the rest): true at most once
 * a second per *last_ms. */
bool vrrpd_once_a_second(uint64_t *last_ms);

/* vrrpd_io.c */
int vrrpd_open_sockets(struct vrrpd *d);
void vrrpd_send_adv(struct vrrpd_group *g, uint8_t priority);
/* Read and handle what has arrived (64 packets at most). */
void vrrpd_rx_drain(struct vrrpd *d);

/* vrrpd_vips.c */
void vrrpd_vips_set(struct vrrpd_group *g, bool add);
/* Gratuitous ARP / unsolicited NA for the group's VIPs, vrrp.garp_repeat rounds. */
void vrrpd_garp_start(struct vrrpd_group *g);
/* The interface's first IPv4 address that is not one of our VIPs; *stale: a VIP of ours
 * is on the interface (an earlier run left it). */
uint32_t vrrpd_find_primary(struct vrrpd *d, bool *stale);

/* vrrpd_notify.c */
void vrrpd_transitions_open(struct vrrpd *d);
void vrrpd_log_transition(struct vrrpd_group *g, const struct vrrp_out *o, unsigned actions,
                          bool held_before);
void vrrpd_log_wait(struct vrrpd_group *g, const struct vrrp_out *o);

/* vrrpd_control.c: a line from the tracked lbd that is not a ping's answer ("quiet ADDR
 * ...": the logins under way on a VIP being resigned are done). */
void vrrpd_lbd_line(void *arg, const char *line);

/* vrrpd_tracking.c */
void vrrpd_on_link(void *arg, bool up);
void vrrpd_on_lbd(void *arg, bool ok, const char *why);

#endif
