/* parse.c -- durations and socket addresses (see parse.h). */
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_duration_ms(const char *s, uint64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    const char *p = s;
    uint64_t whole = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (whole > UINT64_MAX / 10 - 10)
            return -EINVAL;
        whole = whole * 10 + (uint64_t)(*p - '0');
        p++;
        digits++;
    }
    uint64_t frac = 0, frac_div = 1;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (frac_div < 1000000) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_div *= 10;
            }
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return -EINVAL;
    uint64_t unit_us;
    if (*p == '\0')
        unit_us = (whole == 0 && frac == 0) ? 1000 : 0; /* a bare number is only ok for 0 */
    else if (strcmp(p, "us") == 0)
        unit_us = 1;
    else if (strcmp(p, "ms") == 0)
        unit_us = 1000;
    else if (strcmp(p, "s") == 0)
        unit_us = 1000000;
    else if (strcmp(p, "m") == 0)
        unit_us = 60000000;
    else if (strcmp(p, "h") == 0)
        unit_us = 3600000000ULL;
    else
        return -EINVAL;
    if (unit_us == 0)
        return -EINVAL;
    if (whole > (UINT64_MAX / unit_us) / 2)
        return -EINVAL;
    uint64_t us = whole * unit_us + (frac * unit_us) / frac_div;
    *out_ms = (us + 999) / 1000;
    return 0;
}

int parse_ip(const char *s, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, s, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return 0;
    }
    return -EINVAL;
}

static int sockaddr_parse(const char *s, int default_port, bool resolve,
                          struct sockaddr_storage *out)
{
    char host[256];
    const char *port_s = NULL;
    if (s == NULL || *s == '\0')
        return -EINVAL;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || (size_t)(end - s - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        if (end[1] == ':')
            port_s = end + 2;
        else if (end[1] != '\0')
            return -EINVAL;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            colon = NULL; /* bare IPv6 without brackets: no port */
        size_t hl = colon ? (size_t)(colon - s) : strlen(s);
        if (hl >= sizeof(host))
            return -EINVAL;
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (colon)
            port_s = colon + 1;
    }
    long port = default_port;
    if (port_s) {
        char *end;
        if (*port_s == '\0')
            return -EINVAL;
        errno = 0;
        port = strtol(port_s, &end, 10);
        if (*end != '\0' || errno)
            return -EINVAL;
    }
    if (port < 1 || port > 65535)
        return -ERANGE;
    if (host[0] == '\0')
        return -EINVAL;
    if (strcmp(host, "*") == 0)
        snprintf(host, sizeof(host), "0.0.0.0");
    if (parse_ip(host, out) != 0) {
        if (!resolve)
            return -ENOENT;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        for (const char *p = host; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
                return -EINVAL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
            return -ENOENT;
        memset(out, 0, sizeof(*out));
        memcpy(out, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
    }
    if (out->ss_family == AF_INET)
        ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
    return 0;
}

int parse_sockaddr(const char *s, int default_port, struct sockaddr_storage *out)
{
    return sockaddr_parse(s, default_port, true, out);
}

int parse_sockaddr_numeric(const char *s, int default_port, struct sockaddr_storage *out)
{
    return sockaddr_parse(s, default_port, false, out);
}

const char *format_ip(const struct sockaddr *sa, char *buf, size_t size)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)size);
    else
        snprintf(buf, size, "-");
    return buf;
}

const char *format_ip4(uint32_t ip, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
    return buf;
}

const char *format_sockaddr(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    format_ip(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET6)
        snprintf(buf, size, "[%s]:%d", ip, sockaddr_port(sa));
    else if (sa->sa_family == AF_INET)
        snprintf(buf, size, "%s:%d", ip, sockaddr_port(sa));
    else
        snprintf(buf, size, "-");
    return buf;
}

int sockaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

socklen_t sockaddr_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int sockaddr_ip_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return 0;
}

int sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    return sockaddr_ip_equal(a, b) && sockaddr_port(a) == sockaddr_port(b);
}
