/* raw_recv: the baseline for tests/bench/tcp_throughput.lua — the fastest plain C can
 * take a loopback stream: one blocking socket, recv() into a 64 KiB buffer until EOF.
 *
 * Usage: raw_recv HOST PORT     (HOST: a numeric address or a name getaddrinfo knows)
 * Prints one line: "raw_recv BYTES SECONDS MBps" (MB = 10^6 bytes; the clock is
 * CLOCK_MONOTONIC, started before connect() and stopped at EOF).
 */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "raw_recv: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    if (fd < 0) fprintf(stderr, "raw_recv: connect %s:%s: %s\n", host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    static char buf[64 * 1024];
    if (argc != 3) {
        fprintf(stderr, "usage: raw_recv HOST PORT\n");
        return 2;
    }
    double start = now();
    int fd = connect_to(argv[1], argv[2]);
    if (fd < 0) return 1;
    uint64_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0) total += (uint64_t)n;
        else if (n == 0) break;
        else if (errno != EINTR) {
            fprintf(stderr, "raw_recv: recv: %s\n", strerror(errno));
            close(fd);
            return 1;
        }
    }
    double secs = now() - start;
    close(fd);
    printf("raw_recv %llu %.6f %.1f\n", (unsigned long long)total, secs,
           secs > 0 ? (double)total / secs / 1e6 : 0.0);
    return 0;
}
