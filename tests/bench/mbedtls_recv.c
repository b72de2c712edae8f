/* mbedtls_recv: the baseline for tests/bench/tls_throughput.lua — the fastest mbedTLS
 * itself takes a TLS stream over loopback: one blocking socket, a verifying client
 * (mbedtls_net_connect, the CA from argv, hostname check on), mbedtls_ssl_read() into a
 * 64 KiB buffer until the peer's close_notify (or EOF).
 *
 * Usage: mbedtls_recv HOST PORT CAFILE SERVERNAME
 * Prints one line: "mbedtls_recv BYTES SECONDS MBps CPU" (MB = 10^6 bytes; CPU: seconds
 * of user and system time over the same span as the clock; the clock is
 * CLOCK_MONOTONIC, started before the connect and stopped at the end of the stream, so
 * the handshake is included, as it is for the Lua loop). Also prints the version and
 * cipher suite on stderr. Exits non-zero on any error (a stream that ends without
 * close_notify is reported on stderr but still counts as the end).
 * Written for mbedTLS 2.28; also builds with 3.x.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <sys/resource.h>

#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

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
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void fail(const char *what, int rc)
{
    char msg[200];
    mbedtls_strerror(rc, msg, sizeof msg);
    fprintf(stderr, "mbedtls_recv: %s: -0x%04x %s\n", what, (unsigned)-rc, msg);
}

int main(int argc, char **argv)
{
    static unsigned char buf[64 * 1024];
    if (argc != 5) {
        fprintf(stderr, "usage: mbedtls_recv HOST PORT CAFILE SERVERNAME\n");
        return 2;
    }
    const char *host = argv[1], *port = argv[2], *cafile = argv[3], *name = argv[4];
    int status = 1, rc;

    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_net_init(&net);
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&ca);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);

    if ((rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                    (const unsigned char *)"mbedtls_recv", 12)) != 0) {
        fail("ctr_drbg_seed", rc);
        goto out;
    }
    if ((rc = mbedtls_x509_crt_parse_file(&ca, cafile)) != 0) {
        fail(cafile, rc);
        goto out;
    }
    if ((rc = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        fail("ssl_config_defaults", rc);
        goto out;
    }
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    if ((rc = mbedtls_ssl_setup(&ssl, &conf)) != 0) {
        fail("ssl_setup", rc);
        goto out;
    }
    if ((rc = mbedtls_ssl_set_hostname(&ssl, name)) != 0) {
        fail("ssl_set_hostname", rc);
        goto out;
    }

    double start = now(), cpu_start = cpu_seconds();   /* set-up (RNG, CA parsing) excluded, as the clock */
    if ((rc = mbedtls_net_connect(&net, host, port, MBEDTLS_NET_PROTO_TCP)) != 0) {
        fail("connect", rc);
        goto out;
    }
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
    while ((rc = mbedtls_ssl_handshake(&ssl)) != 0) {
        if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
            fail("handshake", rc);
            uint32_t flags = mbedtls_ssl_get_verify_result(&ssl);
            if (flags != 0 && flags != (uint32_t)-1) {
                char info[512];
                mbedtls_x509_crt_verify_info(info, sizeof info, "  ", flags);
                fprintf(stderr, "%s", info);
            }
            goto out;
        }
    }
    fprintf(stderr, "mbedtls_recv: %s %s\n", mbedtls_ssl_get_version(&ssl),
            mbedtls_ssl_get_ciphersuite(&ssl));

    uint64_t total = 0;
    for (;;) {
        rc = mbedtls_ssl_read(&ssl, buf, sizeof buf);
        if (rc > 0) {
            total += (uint64_t)rc;
            continue;
        }
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
        if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue;
#endif
        if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) break;
        if (rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == MBEDTLS_ERR_NET_CONN_RESET) {
            fprintf(stderr, "mbedtls_recv: the stream ended without close_notify\n");
            break;
        }
        fail("read", rc);
        goto out;
    }
    double secs = now() - start;
    mbedtls_ssl_close_notify(&ssl);
    printf("mbedtls_recv %llu %.6f %.1f %.6f\n", (unsigned long long)total, secs,
           secs > 0 ? (double)total / secs / 1e6 : 0.0, cpu_seconds() - cpu_start);
    status = 0;

out:
    mbedtls_net_free(&net);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return status;
}
