/* bench_client: the raw C blocking baseline of the side-by-side benchmarks
 * (tests/bench/peers/): one blocking socket at a time, OpenSSL for TLS.
 *
 * Usage: bench_client [--tls CA NAME [--resume]] WORKLOAD PORT [ARGS]      (server on 127.0.0.1)
 *   bulk                    recv() 64 KiB at a time until EOF
 *   pingpong COUNT          64-byte messages, one round trip at a time
 *   connrate COUNT          connect (and handshake), then close; COUNT times in a row
 *   idle N ACTIVE FRAMES    N idle connections; then FRAMES frames that each write
 *                           64 bytes to every one of ACTIVE connections, then read every
 *                           echo back; then one byte each way on every idle one
 * Prints one line of key=value figures (times in seconds, memory in bytes).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static SSL_CTX *ctx;
static const char *tls_name;
static int resume;             /* --resume: offer the last connection's session */
static SSL_SESSION *last_session;
static int port;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_client: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static int dial(int nodelay)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    if (nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
    return fd;
}

/* A connection: plain, or TLS with the chain and name verified. */
struct conn { int fd; SSL *ssl; };

static struct conn open_conn(int nodelay)
{
    struct conn c = { dial(nodelay), NULL };
    if (!ctx) return c;
    c.ssl = SSL_new(ctx);
    if (!c.ssl) die("SSL_new");
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_tlsext_host_name(c.ssl, tls_name);
    SSL_set1_host(c.ssl, tls_name);
    if (resume && last_session) SSL_set_session(c.ssl, last_session);
    if (SSL_connect(c.ssl) != 1) die("SSL_connect");
    if (resume) {
        SSL_SESSION_free(last_session);
        last_session = SSL_get1_session(c.ssl);
    }
    return c;
}

static void close_conn(struct conn c)
{
    /* close_notify first, as sluice sends: a session freed without it is no longer resumable */
    if (c.ssl) SSL_shutdown(c.ssl), SSL_free(c.ssl);
    close(c.fd);
}

static long conn_recv(struct conn c, char *buf, size_t len)
{
    return c.ssl ? SSL_read(c.ssl, buf, (int)len) : recv(c.fd, buf, len, 0);
}

static long conn_send(struct conn c, const char *buf, size_t len)
{
    return c.ssl ? SSL_write(c.ssl, buf, (int)len) : send(c.fd, buf, len, 0);
}

static int bulk(void)
{
    static char buf[64 * 1024];
    double t0 = now(), c0 = cpu_seconds();
    struct conn c = open_conn(0);
    uint64_t total = 0;
    long n;
    while ((n = conn_recv(c, buf, sizeof buf)) > 0) total += (uint64_t)n;
    double secs = now() - t0, cpu = cpu_seconds() - c0;
    close_conn(c);
    printf("bytes=%llu secs=%.6f cpu=%.6f\n", (unsigned long long)total, secs, cpu);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int pingpong(int count)
{
    char msg[64], buf[64];
    memset(msg, 'p', sizeof msg);
    double *rtt = malloc(sizeof *rtt * (size_t)count), sum = 0;
    if (!rtt) die("malloc");
    struct conn c = open_conn(1);
    for (int i = 0; i < count; i++) {
        double t0 = now();
        if (conn_send(c, msg, sizeof msg) != (long)sizeof msg) die("send");
        for (size_t got = 0; got < sizeof buf;) {
            long n = conn_recv(c, buf + got, sizeof buf - got);
            if (n <= 0) die("recv");
            got += (size_t)n;
        }
        rtt[i] = now() - t0;
        sum += rtt[i];
    }
    close_conn(c);
    qsort(rtt, (size_t)count, sizeof *rtt, cmp_double);
    printf("count=%d mean=%.9f p99=%.9f max=%.9f\n", count, sum / count,
           rtt[(size_t)((count - 1) * 0.99)], rtt[count - 1]);
    free(rtt);
    return 0;
}

static int connrate(int count)
{
    double t0 = now(), c0 = cpu_seconds();
    for (int i = 0; i < count; i++) close_conn(open_conn(0));
    printf("count=%d secs=%.6f cpu=%.6f\n", count, now() - t0, cpu_seconds() - c0);
    return 0;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

static int idle(int n, int active, int frames)
{
    char msg[64], buf[4096];
    memset(msg, 'm', sizeof msg);
    struct conn *act = calloc((size_t)active, sizeof *act);
    int *fds = calloc((size_t)n, sizeof *fds);
    double *cost = calloc((size_t)frames, sizeof *cost);
    if (!act || !fds || !cost) die("calloc");
    for (int i = 0; i < active; i++) act[i] = open_conn(1);
    long rss0 = rss_bytes();
    for (int i = 0; i < n; i++) fds[i] = dial(0);
    long rss1 = rss_bytes();
    for (int f = 0; f < frames; f++) {
        double t0 = now();
        for (int i = 0; i < active; i++)
            if (conn_send(act[i], msg, sizeof msg) != (long)sizeof msg) die("send");
        for (int i = 0; i < active; i++) {
            for (size_t got = 0; got < sizeof msg;) {
                long r = conn_recv(act[i], buf, sizeof msg - got);
                if (r <= 0) die("recv");
                got += (size_t)r;
            }
        }
        cost[f] = now() - t0;
        usleep(1000);
    }
    /* then one byte each way on every idle connection */
    for (int i = 0; i < n; i++)
        if (send(fds[i], "x", 1, 0) != 1 || recv(fds[i], buf, 1, MSG_WAITALL) != 1) die("echo");
    usleep(1500000); /* the settling time the Lua peers wait too (W.SETTLE) */
    long rss2 = rss_bytes();
    qsort(cost, (size_t)frames, sizeof *cost, cmp_double);
    printf("idle=%d rss_per_conn=%.1f rss_used_per_conn=%.1f frame_median=%.9f frame_p99=%.9f\n",
           n, (double)(rss1 - rss0) / n, (double)(rss2 - rss0) / n, cost[frames / 2],
           cost[(size_t)((frames - 1) * 0.99)]);
    return 0;
}

int main(int argc, char **argv)
{
    int a = 1;
    if (argc > 3 && strcmp(argv[1], "--tls") == 0) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1) die("CA");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        tls_name = argv[3];
        a = 4;
        if (argc > a && strcmp(argv[a], "--resume") == 0) resume = 1, a++;
    }
    if (argc - a < 2) {
        fprintf(stderr, "usage: bench_client [--tls CA NAME [--resume]] bulk|pingpong|connrate|idle PORT [ARGS]\n");
        return 2;
    }
    const char *w = argv[a];
    port = atoi(argv[a + 1]);
    int x = argc > a + 2 ? atoi(argv[a + 2]) : 0;
    if (strcmp(w, "bulk") == 0) return bulk();
    if (strcmp(w, "pingpong") == 0 && x > 0) return pingpong(x);
    if (strcmp(w, "connrate") == 0 && x > 0) return connrate(x);
    if (strcmp(w, "idle") == 0 && argc > a + 4)
        return idle(x, atoi(argv[a + 3]), atoi(argv[a + 4]));
    fprintf(stderr, "bench_client: bad arguments\n");
    return 2;
}
