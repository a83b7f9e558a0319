/* pgcancel_peer.c -- open a session through one address, start a long query, send its
 * CancelRequest through another address, and report whether the query was cancelled.
 *
 * libpq always sends a cancel to the address it is connected to, so this speaks the
 * protocol itself (trust authentication only): it is the client of an active-active
 * pair whose cancel connection lands on the other instance.
 *
 * usage: pgcancel_peer HOST PORT CANCEL_HOST CANCEL_PORT USER [KEY_OFFSET]
 * exit 0: the query ended with SQLSTATE 57014 (query_canceled) within 5 s. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int dial(const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    return fd;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read one whole message; returns its type, body in buf (size in *len), or -1. */
static int read_msg(int fd, uint8_t *buf, size_t cap, uint32_t *len, int timeout_ms)
{
    uint8_t hdr[5];
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got < 5) {
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t n = read(fd, hdr + got, 5 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    uint32_t l = get32(hdr + 1) - 4;
    if (l > cap)
        return -1;
    for (got = 0; got < l;) {
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t n = read(fd, buf + got, l - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    *len = l;
    return hdr[0];
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST PORT CANCEL_HOST CANCEL_PORT USER [KEY_OFFSET]\n", argv[0]);
        return 2;
    }
    uint32_t key_offset = argc > 6 ? (uint32_t)strtoul(argv[6], NULL, 10) : 0;
    int fd = dial(argv[1], atoi(argv[2]));
    if (fd < 0) {
        perror("connect");
        return 1;
    }
    uint8_t buf[8192], m[4096];
    size_t n = 8;
    put32(buf + 4, 3u << 16);
    n += (size_t)sprintf((char *)buf + n, "user") + 1;
    n += (size_t)sprintf((char *)buf + n, "%s", argv[5]) + 1;
    buf[n++] = 0;
    put32(buf, (uint32_t)n);
    if (write(fd, buf, n) != (ssize_t)n)
        return 1;
    uint32_t pid = 0, key = 0, len;
    int t;
    while ((t = read_msg(fd, m, sizeof(m), &len, 5000)) != 'Z') {
        if (t < 0 || t == 'E') {
            fprintf(stderr, "startup failed (%c)\n", t);
            return 1;
        }
        if (t == 'K') {
            pid = get32(m);
            key = get32(m + 4);
        }
    }
    const char *q = "select pg_sleep(20)";
    buf[0] = 'Q';
    put32(buf + 1, (uint32_t)(4 + strlen(q) + 1));
    memcpy(buf + 5, q, strlen(q) + 1);
    if (write(fd, buf, 5 + strlen(q) + 1) < 0)
        return 1;
    usleep(300 * 1000);
    int cfd = dial(argv[3], atoi(argv[4]));
    if (cfd < 0) {
        perror("connect for cancel");
        return 1;
    }
    put32(buf, 16);
    put32(buf + 4, 80877102);
    put32(buf + 8, pid);
    put32(buf + 12, key + key_offset);
    if (write(cfd, buf, 16) != 16)
        return 1;
    close(cfd);
    printf("pid=%u cancel sent via %s:%s\n", pid, argv[3], argv[4]);
    while ((t = read_msg(fd, m, sizeof(m), &len, 5000)) > 0) {
        if (t == 'E') {
            for (uint32_t i = 0; i < len && m[i];) {
                char code = (char)m[i++];
                const char *v = (const char *)m + i;
                if (code == 'C') {
                    printf("error sqlstate=%s\n", v);
                    return strcmp(v, "57014") == 0 ? 0 : 1;
                }
                i += (uint32_t)strlen(v) + 1;
            }
        }
        if (t == 'Z') {
            printf("query finished without being cancelled\n");
            return 1;
        }
    }
    printf("no answer within 5 s: the query was not cancelled\n");
    return 1;
}
