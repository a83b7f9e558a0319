/* parse.h -- small value parsers shared by the config loader and the daemons:
 * durations ("250ms", "2s"), socket addresses ("host:port", "[v6]:port"), formatting. */
#ifndef COMMON_PARSE_H
#define COMMON_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "0", "250ms", "2s", "1m", "1h", "1500us" (rounded up to ms). Returns 0 or -EINVAL. */
int parse_duration_ms(const char *s, uint64_t *out_ms);

/* Numeric "ip:port", "[ip6]:port", "*:port" (any IPv4), or a host name resolved once.
 * A bare "ip" takes default_port when it is non-zero. Returns 0, -EINVAL (bad form),
 * -ERANGE (bad port) or -ENOENT (name does not resolve). */
int parse_sockaddr(const char *s, int default_port, struct sockaddr_storage *out);
/* The same without resolving a name (-ENOENT for one): for the event loop. */
int parse_sockaddr_numeric(const char *s, int default_port, struct sockaddr_storage *out);
/* Numeric IPv4/IPv6 address without a port. */
int parse_ip(const char *s, struct sockaddr_storage *out);

/* "1.2.3.4:5432" or "[::1]:5432" into buf; returns buf. */
const char *format_sockaddr(const struct sockaddr *sa, char *buf, size_t size);
/* Just the IP. */
const char *format_ip(const struct sockaddr *sa, char *buf, size_t size);
/* An IPv4 address held in host byte order, dotted ("10.0.0.1"); returns buf. */
const char *format_ip4(uint32_t ip, char *buf, size_t size);
int sockaddr_port(const struct sockaddr *sa);
socklen_t sockaddr_len(const struct sockaddr *sa);
/* Same family, address and port. */
int sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b);
int sockaddr_ip_equal(const struct sockaddr *a, const struct sockaddr *b);

#define SOCKADDR_STRLEN 64

#endif
