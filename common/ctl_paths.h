/* ctl_paths.h -- where the daemons' control sockets are by default (lbd.control.socket,
 * vrrp.control.socket), for the daemons and for pgvipctl. */
#ifndef COMMON_CTL_PATHS_H
#define COMMON_CTL_PATHS_H

#define LBD_CONTROL_SOCKET "/run/pgvip/lbd-control.sock"
#define VRRPD_CONTROL_SOCKET "/run/pgvip/vrrpd-control.sock"

#endif
