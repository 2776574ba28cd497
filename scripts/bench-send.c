/* bench-send: the traffic of scripts/bench, from raw sockets (IPv4 IP_HDRINCL, IPv6 IPPROTO_RAW)
 * with sendmmsg.
 *
 *   bench-send noise  SRC DST COUNT [SRC6 DST6 P1 P2 P3]
 *                                              non-candidates, as fast as it can: UDP to other
 *                                              ports, TCP ACKs, SYNs to unrelated ports; with the
 *                                              optional arguments also ACKs, RSTs and SYN+ACKs to
 *                                              the sequence ports P1..P3, SYNs to them at an
 *                                              address that is not DST's (sent to DST's MAC), and
 *                                              a quarter of it all over IPv6 (SRC6 -> DST6)
 *   bench-send flood  DST PORT COUNT RATE [FROM]  SYNs to PORT from distinct sources in
 *                                              198.18.0.0/15 (starting with the FROMth), RATE
 *                                              packets/s (0: no pacing)
 *   bench-send knocks DST N GAP_MS P1 P2 ...   N full knocks (SYNs to P1 P2 ...), each from its
 *                                              own source 192.0.2.(10+i); prints "SRC NS" with
 *                                              CLOCK_REALTIME just after the last knock left
 *   bench-send stamp  FILE IP                  appends "IP NS" to FILE (the start command)
 *
 * Sources are restricted to 192.0.2.0/24 and 198.18.0.0/15; run it only inside the bench's
 * namespaces. Prints what it sent and the rate on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT 64

static uint64_t now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static uint16_t csum(const void *p, size_t n, uint32_t s) {
    const uint8_t *b = p;
    for (size_t i = 0; i + 1 < n; i += 2) s += (b[i] << 8) | b[i + 1];
    if (n & 1) s += b[n - 1] << 8;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return ~s & 0xffff;
}

static int allowed(uint32_t src) { /* host order */
    return (src >> 8) == 0xc00002 || (src >> 17) == (0xc6120000u >> 17);
}

/* Builds an IPv4 TCP (flags) or UDP (flags < 0) packet; returns its length. */
static int build(uint8_t *b, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, int flags,
                 uint16_t id) {
    int tcp = flags >= 0, l4 = tcp ? 20 : 9, n = 20 + l4;
    memset(b, 0, n);
    b[0] = 0x45;
    b[2] = n >> 8, b[3] = n;
    b[4] = id >> 8, b[5] = id;
    b[8] = 64;
    b[9] = tcp ? 6 : 17;
    uint32_t s = htonl(src), d = htonl(dst);
    memcpy(b + 12, &s, 4);
    memcpy(b + 16, &d, 4);
    uint16_t c = csum(b, 20, 0);
    b[10] = c >> 8, b[11] = c;
    uint8_t *t = b + 20;
    t[0] = sport >> 8, t[1] = sport, t[2] = dport >> 8, t[3] = dport;
    uint32_t ps = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + b[9] + l4;
    if (tcp) {
        t[7] = 1; /* seq 1 */
        t[12] = 5 << 4;
        t[13] = flags;
        t[14] = 4; /* window 1024 */
        c = csum(t, l4, ps);
        t[16] = c >> 8, t[17] = c;
    } else {
        t[5] = l4;
        c = csum(t, l4, ps);
        if (!c) c = 0xffff;
        t[6] = c >> 8, t[7] = c;
    }
    return n;
}

/* Builds an IPv6 TCP (flags) or UDP (flags < 0) packet; returns its length. */
static int build6(uint8_t *b, const uint8_t *src, const uint8_t *dst, uint16_t sport,
                  uint16_t dport, int flags) {
    int tcp = flags >= 0, l4 = tcp ? 20 : 9, n = 40 + l4;
    memset(b, 0, n);
    b[0] = 0x60;
    b[4] = l4 >> 8, b[5] = l4;
    b[6] = tcp ? 6 : 17;
    b[7] = 64;
    memcpy(b + 8, src, 16);
    memcpy(b + 24, dst, 16);
    uint32_t ps = l4 + b[6];
    for (int i = 8; i < 40; i += 2) ps += (b[i] << 8) | b[i + 1];
    uint8_t *t = b + 40;
    t[0] = sport >> 8, t[1] = sport, t[2] = dport >> 8, t[3] = dport;
    uint16_t c;
    if (tcp) {
        t[7] = 1;
        t[12] = 5 << 4;
        t[13] = flags;
        t[14] = 4;
        c = csum(t, l4, ps);
        t[16] = c >> 8, t[17] = c;
    } else {
        t[5] = l4;
        c = csum(t, l4, ps);
        if (!c) c = 0xffff;
        t[6] = c >> 8, t[7] = c;
    }
    return n;
}

static int sock6(void) {
    int s = socket(AF_INET6, SOCK_RAW, IPPROTO_RAW); /* IPPROTO_RAW: the header is ours */
    if (s < 0) {
        perror("bench-send: raw IPv6 socket");
        exit(1);
    }
    int sndbuf = 4 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    return s;
}

static int sock(void) {
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW), one = 1;
    if (s < 0 || setsockopt(s, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) < 0) {
        perror("bench-send: raw socket");
        exit(1);
    }
    int sndbuf = 4 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    return s;
}

static uint32_t ip(const char *s) {
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1) {
        fprintf(stderr, "bench-send: bad address %s\n", s);
        exit(2);
    }
    return ntohl(a.s_addr);
}

static uint8_t bufs[BATCH][PKT];
static struct iovec iov[BATCH];
static struct mmsghdr msgs[BATCH];
static struct sockaddr_in to;

/* Sends count packets made by make(i, buf) in batches; paced to rate packets/s if rate > 0. */
static void run(int s, long count, long rate, int (*make)(long, uint8_t *), const char *what) {
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    long sent = 0;
    while (sent < count) {
        int n = count - sent < BATCH ? count - sent : BATCH;
        for (int j = 0; j < n; j++) {
            iov[j].iov_base = bufs[j];
            iov[j].iov_len = make(sent + j, bufs[j]);
            msgs[j].msg_hdr = (struct msghdr){.msg_name = &to, .msg_namelen = sizeof to,
                                              .msg_iov = &iov[j], .msg_iovlen = 1};
        }
        int r = sendmmsg(s, msgs, n, 0);
        if (r < 0) {
            perror("bench-send: sendmmsg");
            exit(1);
        }
        sent += r;
        if (rate > 0) {
            uint64_t due = t0 + (uint64_t)(sent * 1e9 / rate), t = now_ns(CLOCK_MONOTONIC);
            if (due > t) {
                struct timespec d = {(due - t) / 1000000000u, (due - t) % 1000000000u};
                nanosleep(&d, NULL);
            }
        }
    }
    double secs = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    fprintf(stderr, "bench-send: %ld %s packets in %.3f s (%.0f/s)\n", sent, what, secs,
            sent / secs);
}

static uint32_t g_src, g_dst;
static uint16_t g_port;
static long g_from;
static int g_seq; /* sequence ports given: the full noise mix */
static uint16_t g_ports[3];
static uint8_t g_src6[16], g_dst6[16], g_other6[16];

static int noise(long i, uint8_t *b) {
    uint16_t p = i % 4000, q = g_ports[(i / 8) % 3];
    switch (i % (g_seq ? 8 : 3)) {
    case 0: return build(b, g_src, g_dst, 5353, 20000 + p, -1, i);          /* UDP elsewhere */
    case 1: return build(b, g_src, g_dst, 22, 40000 + p, 0x10, i);          /* ACK */
    case 2: return build(b, g_src, g_dst, 41000 + p, 20000 + p, 0x02, i); /* SYN elsewhere */
    case 3: return build(b, g_src, g_dst, 22, q, 0x10, i);                  /* ACK to a seq port */
    case 4: return build(b, g_src, g_dst, 22, q, 0x04, i);                  /* RST to a seq port */
    case 5: return build(b, g_src, g_dst, 22, q, 0x12, i);                  /* SYN+ACK to one */
    default: /* a knock to an address that is not the interface's (routed through it) */
        return build(b, g_src, g_dst + 98, 41000 + p, q, 0x02, i);
    }
}

static int noise6(long i, uint8_t *b) {
    uint16_t p = i % 4000, q = g_ports[(i / 8) % 3];
    switch (i % 4) {
    case 0: return build6(b, g_src6, g_dst6, 5353, 20000 + p, -1);  /* UDP elsewhere */
    case 1: return build6(b, g_src6, g_dst6, 22, q, 0x10);          /* ACK to a seq port */
    case 2: return build6(b, g_src6, g_dst6, 22, q, 0x12);          /* SYN+ACK to one */
    default: return build6(b, g_src6, g_other6, 41000 + p, q, 0x02); /* another address */
    }
}

static void addr6(const char *s, uint8_t *out) {
    if (inet_pton(AF_INET6, s, out) != 1 || memcmp(out, "\x20\x01\x0d\xb8", 4)) {
        fprintf(stderr, "bench-send: bad or foreign IPv6 address %s\n", s);
        exit(2);
    }
}

/* The full noise mix: batches of IPv4 (mix of 8) and, one batch in four, IPv6 (mix of 4). */
static void noise_mixed(long count) {
    int s4 = sock(), s6 = sock6();
    struct sockaddr_in6 to6 = {.sin6_family = AF_INET6};
    memcpy(&to6.sin6_addr, g_dst6, 16);
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    long sent = 0;
    for (long batch = 0; sent < count; batch++) {
        int v6 = batch % 4 == 3, n = count - sent < BATCH ? count - sent : BATCH;
        for (int j = 0; j < n; j++) {
            iov[j].iov_base = bufs[j];
            iov[j].iov_len = v6 ? noise6(sent + j, bufs[j]) : noise(sent + j, bufs[j]);
            msgs[j].msg_hdr = (struct msghdr){.msg_name = v6 ? (void *)&to6 : (void *)&to,
                                              .msg_namelen = v6 ? sizeof to6 : sizeof to,
                                              .msg_iov = &iov[j], .msg_iovlen = 1};
        }
        int r = sendmmsg(v6 ? s6 : s4, msgs, n, 0);
        if (r < 0) {
            perror("bench-send: sendmmsg");
            exit(1);
        }
        sent += r;
    }
    double secs = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    fprintf(stderr, "bench-send: %ld non-candidate packets in %.3f s (%.0f/s)\n", sent, secs,
            sent / secs);
}

static int flood(long i, uint8_t *b) {
    uint32_t src = 0xc6120000u + 1 + (uint32_t)((g_from + i) % 0x1fffe);
    return build(b, src, g_dst, 40000 + i % 20000, g_port, 0x02, i);
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "stamp")) {
        char line[80];
        int n = snprintf(line, sizeof line, "%s %llu\n", argv[3],
                         (unsigned long long)now_ns(CLOCK_REALTIME));
        int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
        return fd < 0 || write(fd, line, n) != n;
    }
    to.sin_family = AF_INET;
    if ((argc == 5 || argc == 10) && !strcmp(argv[1], "noise")) {
        g_src = ip(argv[2]), g_dst = ip(argv[3]);
        if (!allowed(g_src) || !allowed(g_dst + 98)) return 2;
        to.sin_addr.s_addr = htonl(g_dst);
        if (argc == 10) {
            g_seq = 1;
            addr6(argv[5], g_src6);
            addr6(argv[6], g_dst6);
            memcpy(g_other6, g_dst6, 16);
            g_other6[15] ^= 0x62;
            for (int k = 0; k < 3; k++) g_ports[k] = atoi(argv[7 + k]);
            noise_mixed(atol(argv[4]));
        } else {
            run(sock(), atol(argv[4]), 0, noise, "non-candidate");
        }
    } else if ((argc == 6 || argc == 7) && !strcmp(argv[1], "flood")) {
        g_dst = ip(argv[2]), g_port = atoi(argv[3]);
        g_from = argc == 7 ? atol(argv[6]) : 0;
        to.sin_addr.s_addr = htonl(g_dst);
        run(sock(), atol(argv[4]), atol(argv[5]), flood, "first-knock");
    } else if (argc >= 6 && !strcmp(argv[1], "knocks")) {
        int s = sock(), n = atoi(argv[3]), gap = atoi(argv[4]), np = argc - 5;
        g_dst = ip(argv[2]);
        to.sin_addr.s_addr = htonl(g_dst);
        if (n < 1 || n > 200) return 2;
        for (int i = 0; i < n; i++) {
            uint32_t src = 0xc0000200u + 10 + i;
            for (int k = 0; k < np; k++) {
                int len = build(bufs[0], src, g_dst, 40000 + k, atoi(argv[5 + k]), 0x02, i);
                if (sendto(s, bufs[0], len, 0, (struct sockaddr *)&to, sizeof to) != len) {
                    perror("bench-send: sendto");
                    return 1;
                }
            }
            uint64_t t = now_ns(CLOCK_REALTIME);
            printf("192.0.2.%d %llu\n", 10 + i, (unsigned long long)t);
            fflush(stdout);
            usleep(gap * 1000);
        }
    } else {
        fprintf(stderr, "usage: see the comment at the top of scripts/bench-send.c\n");
        return 2;
    }
    return 0;
}
