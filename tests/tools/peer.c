/* peer: the loopback test peer the Lua integration tests and benchmarks talk to.
 * One process, one thread, one ppoll() loop over the listener and every client.
 *
 * Usage: peer [-4|-6] [-a 127.X.Y.Z] [-p PORT] MODE [ARG]
 *   Binds 127.0.0.1 (or ::1 with -6, or another IPv4 loopback address with -a) on an
 *   ephemeral port (or PORT with -p), prints the port number alone on the first stdout
 *   line (flushed), then serves until SIGTERM or SIGINT. -p lets a test put several
 *   peers on the same port, one per address.
 * Modes:
 *   echo      echo every byte back; at the client's EOF flush what is left, then close.
 *   source N  send each client N bytes of the pattern below, then close (N takes a
 *             K/M/G suffix, powers of 1024).
 *   http N    an HTTP/1.1 server of one response per connection: once a request
 *             head has arrived, "200 OK" with Content-Length N and N bytes of the
 *             pattern as the body, then close (the demo's local download).
 *   sink      read and discard; at the client's EOF print one line
 *             "sink BYTES HASH" (HASH: 64-bit FNV-1a of every byte, 16 hex digits), flushed,
 *             then close. A stream that ends in an error (a reset) prints
 *             "sink-error BYTES REASON" instead.
 *   close     accept and close at once.
 *   blackhole listen with a backlog of 1 and never accept; before printing the port,
 *             fill the accept queue by connecting to itself a few times, so that Linux
 *             drops every further SYN and a client's connect hangs (no answer at all,
 *             not a refusal) until its own timeout.
 *
 * The source pattern (tests/lua/helpers.lua checks it the same way):
 *   byte i = T[i mod 1000003],  T[j] = ((j * 2654435761) mod 2^32) >> 24
 * The period is a prime, so no power-of-two sized loss, duplication or reordering of
 * chunks leaves the stream unchanged, and a checker can compare whole slices against
 * one precomputed period instead of computing every byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PATTERN_PERIOD 1000003u
#define IO_CHUNK (256 * 1024)   /* largest single send/recv */
#define ECHO_BUF (64 * 1024)    /* per-connection echo buffer */

enum mode { MODE_ECHO, MODE_SOURCE, MODE_SINK, MODE_CLOSE, MODE_BLACKHOLE, MODE_HTTP };

struct conn {
    int fd;
    int peer_eof;        /* the client sent FIN */
    int shut_wr;         /* we sent FIN (source mode: drain until the client closes) */
    uint64_t count;      /* source: bytes sent; sink: bytes received */
    uint64_t hash;       /* sink: FNV-1a so far */
    unsigned char *buf;  /* echo: bytes read, not yet written back */
    size_t head, tail;   /* echo: pending bytes are buf[head..tail) */
    int matched;         /* http: bytes of "\r\n\r\n" matched so far (4: the head ended) */
    size_t head_sent;    /* http: bytes of the response head sent */
};

static volatile sig_atomic_t stop_requested;
static enum mode mode;
static uint64_t source_len;
static unsigned char *pattern;   /* PATTERN_PERIOD + IO_CHUNK bytes, so any slice is contiguous */
static unsigned char scratch[IO_CHUNK];

static struct pollfd *pfds;      /* pfds[0] is the listener; pfds[i] belongs to conns[i] */
static struct conn *conns;
static size_t nconns = 1, cap_conns;

static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static void die(const char *what)
{
    fprintf(stderr, "peer: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end) return -1;
    *out = v;
    return 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);   /* best effort: fewer clients if it fails */
    }
}

static void make_pattern(void)
{
    pattern = malloc(PATTERN_PERIOD + IO_CHUNK);
    if (!pattern) die("malloc");
    for (uint32_t j = 0; j < PATTERN_PERIOD + IO_CHUNK; j++)
        pattern[j] = (unsigned char)((uint32_t)((j % PATTERN_PERIOD) * 2654435761u) >> 24);
}

static struct in_addr bind4;   /* -a; 127.0.0.1 by default */

static int listen_on(int ipv6, unsigned bind_port, int backlog)
{
    int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (ipv6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons((uint16_t)bind_port);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr = bind4;
        a->sin_port = htons((uint16_t)bind_port);
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) die("bind");
    if (listen(fd, backlog) < 0) die("listen");
    return fd;
}

static void print_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) die("getsockname");
    unsigned port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    printf("%u\n", port);
    fflush(stdout);
}

/* blackhole: fill the listener's accept queue (backlog 1 holds 2 connections on Linux)
 * with connections to itself that are never accepted. Once it is full the kernel drops
 * new SYNs, so other clients see no answer at all. The extra connects stay in SYN_SENT
 * and keep the queue full however it is counted. Then wait for the stop signal. */
#define BLACKHOLE_FILLERS 4

static void blackhole(int lfd, const sigset_t *unblocked)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0) die("getsockname");
    struct pollfd fill[BLACKHOLE_FILLERS];
    for (int i = 0; i < BLACKHOLE_FILLERS; i++) {
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) die("connect");
        fill[i].fd = fd;
        fill[i].events = POLLOUT;
        fill[i].revents = 0;
    }
    /* Wait (at most 2 s) until the first two are established: the queue is full. */
    int established = 0;
    for (int tries = 0; tries < 200 && established < 2; tries++) {
        poll(fill, BLACKHOLE_FILLERS, 10);
        established = 0;
        for (int i = 0; i < BLACKHOLE_FILLERS; i++) {
            int err = 0;
            socklen_t elen = sizeof err;
            if ((fill[i].revents & POLLOUT) &&
                getsockopt(fill[i].fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
                established++;
        }
    }
    if (established < 2) {
        fprintf(stderr, "peer: blackhole: only %d connections to itself established\n", established);
        exit(1);
    }
    print_port(lfd);
    while (!stop_requested) ppoll(NULL, 0, NULL, unblocked);
}

static void drop_conn(size_t i)
{
    close(conns[i].fd);
    free(conns[i].buf);
    /* Move the last connection into the hole; the caller revisits slot i. */
    nconns--;
    conns[i] = conns[nconns];
    pfds[i] = pfds[nconns];
}

static int add_conn(int fd)
{
    if (nconns == cap_conns) {
        size_t cap = cap_conns ? cap_conns * 2 : 1024;
        struct pollfd *p = realloc(pfds, cap * sizeof *p);
        if (!p) return -1;
        pfds = p;
        struct conn *c = realloc(conns, cap * sizeof *c);
        if (!c) return -1;
        conns = c;
        cap_conns = cap;
    }
    struct conn *c = &conns[nconns];
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->hash = 0xcbf29ce484222325ull;
    if (mode == MODE_ECHO && !(c->buf = malloc(ECHO_BUF))) return -1;
    pfds[nconns].fd = fd;
    pfds[nconns].events = 0;
    pfds[nconns].revents = 0;
    nconns++;
    return 0;
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;   /* EAGAIN, or EMFILE: the client waits in the backlog */
        if (mode == MODE_CLOSE) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (add_conn(fd) < 0) {
            close(fd);
            return;
        }
    }
}

static int would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

/* Each step returns 0 to keep the connection, -1 to drop it. */
static int step_echo(struct conn *c, short revents)
{
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c->peer_eof && c->tail < ECHO_BUF) {
        ssize_t n = recv(c->fd, c->buf + c->tail, ECHO_BUF - c->tail, 0);
        if (n > 0) c->tail += (size_t)n;
        else if (n == 0) c->peer_eof = 1;
        else if (!would_block()) return -1;
    }
    if (c->tail > c->head) {
        ssize_t n = send(c->fd, c->buf + c->head, c->tail - c->head, MSG_NOSIGNAL);
        if (n > 0) c->head += (size_t)n;
        else if (n < 0 && !would_block()) return -1;
        if (c->head == c->tail) c->head = c->tail = 0;
    }
    return (c->peer_eof && c->head == c->tail) ? -1 : 0;
}

static int step_source(struct conn *c, short revents)
{
    if (c->shut_wr) {
        /* Everything was sent and FIN is out. Read what the client may still send, so
         * the final close() never finds unread data (that would turn it into a reset). */
        if (!(revents & (POLLIN | POLLHUP | POLLERR))) return 0;
        ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
        return (n > 0 || (n < 0 && would_block())) ? 0 : -1;
    }
    while (c->count < source_len) {
        uint64_t left = source_len - c->count;
        size_t len = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
        ssize_t n = send(c->fd, pattern + c->count % PATTERN_PERIOD, len, MSG_NOSIGNAL);
        if (n < 0) return would_block() ? 0 : -1;
        c->count += (uint64_t)n;
    }
    shutdown(c->fd, SHUT_WR);
    c->shut_wr = 1;
    return 0;
}

static char http_head[160];
static size_t http_head_len;

/* http: the request head first (its end found across reads), then the response. */
static int step_http(struct conn *c, short revents)
{
    static const char end[] = "\r\n\r\n";
    while (c->matched < 4) {
        if (!(revents & (POLLIN | POLLHUP | POLLERR))) return 0;
        ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
        if (n <= 0) return (n < 0 && would_block()) ? 0 : -1;
        for (ssize_t i = 0; i < n && c->matched < 4; i++)
            c->matched = scratch[i] == end[c->matched] ? c->matched + 1 : scratch[i] == '\r';
    }
    while (c->head_sent < http_head_len) {
        ssize_t n = send(c->fd, http_head + c->head_sent, http_head_len - c->head_sent, MSG_NOSIGNAL);
        if (n < 0) return would_block() ? 0 : -1;
        c->head_sent += (size_t)n;
    }
    return step_source(c, revents);
}

static int step_sink(struct conn *c, short revents)
{
    if (!(revents & (POLLIN | POLLHUP | POLLERR))) return 0;
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n < 0) {
        if (would_block()) return 0;
        /* Not an orderly end: say so, for the test's failure message. */
        printf("sink-error %" PRIu64 " %s\n", c->count, strerror(errno));
        fflush(stdout);
        return -1;
    }
    if (n == 0) {
        printf("sink %" PRIu64 " %016" PRIx64 "\n", c->count, c->hash);
        fflush(stdout);
        return -1;
    }
    uint64_t h = c->hash;
    for (ssize_t i = 0; i < n; i++) {
        h ^= scratch[i];
        h *= 0x100000001b3ull;
    }
    c->hash = h;
    c->count += (uint64_t)n;
    return 0;
}

static short wanted_events(const struct conn *c)
{
    switch (mode) {
    case MODE_ECHO: {
        short ev = 0;
        if (!c->peer_eof && c->tail < ECHO_BUF) ev |= POLLIN;
        if (c->tail > c->head) ev |= POLLOUT;
        return ev;
    }
    case MODE_SOURCE: return c->shut_wr ? POLLIN : POLLOUT;
    case MODE_HTTP: return c->matched < 4 || c->shut_wr ? POLLIN : POLLOUT;
    default: return POLLIN;
    }
}

static void serve(int lfd, const sigset_t *unblocked)
{
    pfds[0].fd = lfd;
    pfds[0].events = POLLIN;
    while (!stop_requested) {
        for (size_t i = 1; i < nconns; i++) pfds[i].events = wanted_events(&conns[i]);
        /* ppoll: the stop signals are blocked except inside the wait, so one that
         * arrives between the check above and the wait still ends it. */
        int r = ppoll(pfds, nconns, NULL, unblocked);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("ppoll");
        }
        if (pfds[0].revents & POLLIN) accept_all(lfd);
        for (size_t i = 1; i < nconns;) {
            short rev = pfds[i].revents;
            int keep = 0;
            pfds[i].revents = 0;
            if (rev & POLLNVAL) keep = -1;
            else if (rev) {
                switch (mode) {
                case MODE_ECHO: keep = step_echo(&conns[i], rev); break;
                case MODE_SOURCE: keep = step_source(&conns[i], rev); break;
                case MODE_SINK: keep = step_sink(&conns[i], rev); break;
                case MODE_HTTP: keep = step_http(&conns[i], rev); break;
                default: keep = -1; break;
                }
            }
            if (keep < 0) drop_conn(i);   /* slot i now holds another connection */
            else i++;
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: peer [-4|-6] [-a 127.X.Y.Z] [-p PORT] echo | source N[K|M|G] | http N[K|M|G] | sink | close | blackhole\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ipv6 = 0, a = 1;
    unsigned bind_port = 0;
    bind4.s_addr = htonl(INADDR_LOOPBACK);
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (strcmp(argv[a], "-6") == 0) ipv6 = 1;
        else if (strcmp(argv[a], "-4") == 0) ipv6 = 0;
        else if (strcmp(argv[a], "-a") == 0 && a + 1 < argc) {
            /* loopback only: a test peer never listens where others could reach it */
            if (inet_pton(AF_INET, argv[++a], &bind4) != 1 || (ntohl(bind4.s_addr) >> 24) != 127) usage();
        }
        else if (strcmp(argv[a], "-p") == 0 && a + 1 < argc) {
            char *end;
            unsigned long p = strtoul(argv[++a], &end, 10);
            if (*end || p > 65535) usage();
            bind_port = (unsigned)p;
        } else usage();
    }
    if (a >= argc) usage();
    const char *m = argv[a++];
    if (strcmp(m, "echo") == 0) mode = MODE_ECHO;
    else if (strcmp(m, "sink") == 0) mode = MODE_SINK;
    else if (strcmp(m, "close") == 0) mode = MODE_CLOSE;
    else if (strcmp(m, "blackhole") == 0) mode = MODE_BLACKHOLE;
    else if (strcmp(m, "source") == 0) {
        mode = MODE_SOURCE;
        if (a >= argc || parse_size(argv[a++], &source_len) < 0) usage();
        make_pattern();
    } else if (strcmp(m, "http") == 0) {
        mode = MODE_HTTP;
        if (a >= argc || parse_size(argv[a++], &source_len) < 0) usage();
        make_pattern();
        http_head_len = (size_t)snprintf(http_head, sizeof http_head,
                                         "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                         "Content-Length: %" PRIu64 "\r\nConnection: close\r\n\r\n", source_len);
    } else usage();
    if (a != argc) usage();

    raise_nofile();
    signal(SIGPIPE, SIG_IGN);   /* a test tool, not a library: MSG_NOSIGNAL is the main guard */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;  /* no SA_RESTART: ppoll() must return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t stops, unblocked;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigprocmask(SIG_BLOCK, &stops, &unblocked);

    cap_conns = 1024;
    pfds = calloc(cap_conns, sizeof *pfds);
    conns = calloc(cap_conns, sizeof *conns);
    if (!pfds || !conns) die("calloc");
    if (mode == MODE_BLACKHOLE) {
        blackhole(listen_on(ipv6, bind_port, 1), &unblocked);
        return 0;
    }
    int lfd = listen_on(ipv6, bind_port, 4096);
    print_port(lfd);
    serve(lfd, &unblocked);
    return 0;
}
