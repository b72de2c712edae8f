/* bench_server: the TLS servers of the side-by-side benchmarks (tests/bench/peers/), and
 * a DNS server that never answers. Plain TCP workloads use tests/tools/peer.c.
 *
 * Usage:
 *   bench_server tls CERT KEY MODE [N]   one thread per client, blocking OpenSSL, TLS 1.2
 *   bench_server udp-silent              a UDP socket that reads and never replies
 *   bench_server echo                    plain TCP echo, one epoll loop (for many clients:
 *                                        its cost does not grow with the idle ones)
 * Binds 127.0.0.1 on an ephemeral port, prints the port alone on the first stdout line
 * (flushed), then serves until killed.
 * TLS modes:
 *   source N   send N bytes (K/M/G suffix) of zeros after the handshake, then close
 *   echo       echo every byte back until the client closes
 *   sink       read and discard until the client closes
 *   close      complete the handshake, then close
 * A thread per client lets a burst of handshakes (RSA 4096: milliseconds each) run on
 * every core, so the server side never sets the figure on its own.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum mode { M_SOURCE, M_ECHO, M_SINK, M_CLOSE };

static SSL_CTX *ctx;
static enum mode mode;
static uint64_t source_bytes;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static uint64_t parse_size(const char *s)
{
    char *end;
    uint64_t n = strtoull(s, &end, 10);
    switch (*end) {
    case 'K': case 'k': return n << 10;
    case 'M': case 'm': return n << 20;
    case 'G': case 'g': return n << 30;
    default: return n;
    }
}

static int bind_loopback(int type)
{
    int fd = socket(AF_INET, type, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) die("getsockname");
    printf("%u\n", (unsigned)ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

static void serve(SSL *ssl)
{
    static const char zeros[64 * 1024];
    char buf[64 * 1024];
    int n;
    switch (mode) {
    case M_SOURCE:
        for (uint64_t left = source_bytes; left > 0;) {
            int chunk = left < sizeof zeros ? (int)left : (int)sizeof zeros;
            if ((n = SSL_write(ssl, zeros, chunk)) <= 0) return;
            left -= (uint64_t)n;
        }
        break;
    case M_ECHO:
        while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
            if (SSL_write(ssl, buf, n) <= 0) return;
        break;
    case M_SINK:
        while (SSL_read(ssl, buf, sizeof buf) > 0) {}
        break;
    case M_CLOSE:
        break;
    }
    SSL_shutdown(ssl);
}

static void *client_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    SSL *ssl = SSL_new(ctx);
    if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) serve(ssl);
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static int run_tls(const char *cert, const char *key, const char *m, const char *arg)
{
    if (strcmp(m, "source") == 0 && arg) mode = M_SOURCE, source_bytes = parse_size(arg);
    else if (strcmp(m, "echo") == 0) mode = M_ECHO;
    else if (strcmp(m, "sink") == 0) mode = M_SINK;
    else if (strcmp(m, "close") == 0) mode = M_CLOSE;
    else return fprintf(stderr, "bench_server: unknown TLS mode %s\n", m), 2;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) die("SSL_CTX_new");
    /* TLS 1.2 for every client alike: the mbedTLS build may not speak 1.3 */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    int lfd = bind_loopback(SOCK_STREAM);
    if (listen(lfd, 4096) < 0) die("listen");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        pthread_t t;
        if (pthread_create(&t, &attr, client_thread, (void *)(intptr_t)fd) != 0) close(fd);
    }
}

static _Noreturn void run_udp_silent(void)
{
    int fd = bind_loopback(SOCK_DGRAM);
    char buf[4096];
    for (;;) (void)recv(fd, buf, sizeof buf, 0);
}

/* Echo what arrived on fd; closes it at EOF or error. */
static void echo_ready(int fd)
{
    char buf[16 * 1024];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            close(fd);
            return;
        }
        /* the echoes are small: a full send buffer only stalls this client */
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), 0);
            if (w < 0 && errno != EAGAIN) { close(fd); return; }
            if (w > 0) off += w;
        }
    }
}

static _Noreturn void run_echo(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = bind_loopback(SOCK_STREAM);
    if (listen(lfd, 4096) < 0) die("listen");
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd != lfd) {
                echo_ready(fd);   /* a closed fd leaves the epoll set by itself */
                continue;
            }
            int c;
            while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct epoll_event cev = { .events = EPOLLIN, .data.fd = c };
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
            }
        }
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 5 && strcmp(argv[1], "tls") == 0)
        return run_tls(argv[2], argv[3], argv[4], argc > 5 ? argv[5] : NULL);
    if (argc == 2 && strcmp(argv[1], "udp-silent") == 0) run_udp_silent();
    if (argc == 2 && strcmp(argv[1], "echo") == 0) run_echo();
    fprintf(stderr, "usage: bench_server tls CERT KEY source N|echo|sink|close\n"
                    "       bench_server udp-silent | echo\n");
    return 2;
}
