/* test_proxy.c: unit tests for net/proxy.c (proxy URLs, the CONNECT request
 * and reply head, SOCKS5 messages and replies), table-driven; prints TAP. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "proxy.h"
#include "tap.h"


static bool test_urls(void) {
  net_proxy p;
  char host[NET_URL_HOST_MAX + 1], w[NET_PROXY_WHY_MAX];
  uint16_t port;
  CHECK(net__proxy_parse("http://u:p@127.0.0.1:3128", &p, host, &port, w, sizeof w), "http: %s", w);
  CHECK(p.kind == NET_PROXY_HTTP && p.auth && strcmp(p.user, "u") == 0 && strcmp(host, "127.0.0.1") == 0 &&
            port == 3128 && strcmp(p.where, "127.0.0.1:3128") == 0,
        "http parts");
  CHECK(net__proxy_parse("socks5h://[::1]", &p, host, &port, w, sizeof w), "socks5h: %s", w);
  CHECK(p.kind == NET_PROXY_SOCKS5H && !p.auth && port == 1080 && strcmp(p.where, "[::1]:1080") == 0, "socks5h parts");
  CHECK(net__proxy_parse("SOCKS5://h:1/", &p, host, &port, w, sizeof w) && p.kind == NET_PROXY_SOCKS5, "socks5: %s", w);
  static const char *const bad[][2] = {
      {"https://h:1", "unsupported proxy scheme 'https'"}, {"ws://h", "unsupported proxy scheme"},
      {"ftp://h", "unsupported scheme"},                    {"http://h/x", "no path"},
      {"http://h/?q", "no path"},                           {"socks5://u@h", "1..255"},
      {"socks5h://:p@h", "1..255"},                         {"http://a%3Ab:c@h", "':'"},
      {"http://", "empty host"},                            {"127.0.0.1:3128", "no scheme"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK(!net__proxy_parse(bad[i][0], &p, host, &port, w, sizeof w), "%s taken", bad[i][0]);
    CHECK(strstr(w, bad[i][1]), "%s: \"%s\" lacks \"%s\"", bad[i][0], w, bad[i][1]);
  }
  return true;
}

static bool test_connect_request(void) {
  char buf[NET_PROXY_REQ_MAX];
  size_t n = net__proxy_connect_request(buf, sizeof buf, "example.test", 443, NULL, NULL);
  const char *want = "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n";
  CHECK(n == strlen(want) && strcmp(buf, want) == 0, "plain: %s", buf);
  n = net__proxy_connect_request(buf, sizeof buf, "::1", 8443, "Aladdin", "open sesame");
  want = "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"
         "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n";
  CHECK(n == strlen(want) && strcmp(buf, want) == 0, "auth, IPv6: %s", buf);
  n = net__proxy_connect_request(buf, sizeof buf, "h", 1, "ab", "");
  CHECK(strstr(buf, "Basic YWI6\r\n"), "padding: %s", buf);
  CHECK(net__proxy_connect_request(buf, 20, "example.test", 443, NULL, NULL) == 0, "too small: 0");
  n = net__proxy_connect_request(buf, sizeof buf, "fe80::1%eth0", 443, NULL, NULL);
  CHECK(strstr(buf, "CONNECT [fe80::1]:443 ") && strstr(buf, "Host: [fe80::1]:443\r\n"), "zone: %s", buf);
  /* the longest name with the longest credentials fits */
  char name[254], user[256], pass[256];
  memset(name, 'n', 253), name[253] = '\0';
  memset(user, 'u', 255), user[255] = '\0';
  memset(pass, 'p', 255), pass[255] = '\0';
  CHECK(net__proxy_connect_request(buf, sizeof buf, name, 65535, user, pass) > 0, "the longest request does not fit");
  return true;
}

static bool test_connect_reply(void) {
  static const struct {
    const char *in;
    long want;   /* -1: fails, saying `says` */
    const char *says;
  } cases[] = {
      {"HTTP/1.1 200 Connection established\r\n\r\nTUNNEL", 39, NULL},
      /* a server that speaks first: its binary greeting may come in the same segment */
      {"HTTP/1.1 200 OK\r\n\r\n\x01\x02\x7f\xff", 19, NULL},
      {"HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\n", 35, NULL},
      {"HTTP/1.1 204\n\n", 14, NULL},
      {"HTTP/1.1 200 OK\r\n", 0, NULL},
      {"HTTP/1.1 20", 0, NULL},
      {"HTT", 0, NULL},
      {"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n", -1,
       "refused: 407 Proxy Authentication Required"},
      {"HTTP/1.1 403 Filtered\r\n\r\n", -1, "refused: 403 Filtered"},
      {"HTTP/1.1 502\r\n\r\n", -1, "refused: 502"},
      {"SSH-2.0-x\r\n", -1, "not an HTTP reply"},
      {"\x05\x00", -1, "not an HTTP reply"},
      {"HTTP/2 200\r\n\r\n", -1, "malformed status line"},
      {"HTTP/1.1 2000 OK\r\n\r\n", -1, "malformed status line"},
      {"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", -1, "malformed header"},
      {"HTTP/1.1 200 OK\r\n: v\r\n\r\n", -1, "malformed header"},
      {"HTTP/1.1 200 OK\r\nA\0: b\r\n\r\n", -1, "control byte"},
      /* interim heads come before the final one (RFC 9110 15.2) */
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nX", 44, NULL},
      {"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 86, NULL},
      {"HTTP/1.1 100 Continue\r\n\r\n", 0, NULL},
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2", 0, NULL},
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 407 Auth\r\n\r\n", -1, "refused: 407 Auth"},
      {"HTTP/1.1 100 Continue\r\n\r\nSSH-2.0\r\n", -1, "not an HTTP reply"},
      {"HTTP/1.1 101 Switching Protocols\r\n\r\n", -1, "refused: 101"},
  };
  char w[NET_PROXY_WHY_MAX];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *in = cases[i].in;
    size_t len = strlen(in) + (strstr(in, "A") == in + 17 ? 7 : 0);   /* the one with a NUL */
    w[0] = '\0';
    long r = net__proxy_connect_reply(in, len, w, sizeof w);
    CHECK(r == cases[i].want, "case %zu: %ld, not %ld (%s)", i, r, cases[i].want, w);
    if (cases[i].says) CHECK(strstr(w, cases[i].says), "case %zu: \"%s\" lacks \"%s\"", i, w, cases[i].says);
  }
  static char big[NET_PROXY_HEAD_MAX + 16];
  memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
  memset(big + 20, 'a', sizeof big - 20);
  CHECK(net__proxy_connect_reply(big, NET_PROXY_HEAD_MAX - 1, w, sizeof w) == 0, "under the cap: incomplete");
  CHECK(net__proxy_connect_reply(big, NET_PROXY_HEAD_MAX, w, sizeof w) < 0 && strstr(w, "over 8192"),
        "at the cap: %s", w);
  /* interim heads count toward the cap */
  size_t n = 0;
  while (n + 25 <= sizeof big) memcpy(big + n, "HTTP/1.1 100 Continue\r\n\r\n", 25), n += 25;
  CHECK(net__proxy_connect_reply(big, n, w, sizeof w) < 0 && strstr(w, "over 8192"), "interim heads: %s", w);
  return true;
}

static bool test_socks_messages(void) {
  uint8_t b[600];
  CHECK(net__socks_greeting(b, false) == 3 && memcmp(b, "\x05\x01\x00", 3) == 0, "greeting");
  CHECK(net__socks_greeting(b, true) == 4 && memcmp(b, "\x05\x02\x00\x02", 4) == 0, "greeting with auth");
  CHECK(net__socks_auth_request(b, sizeof b, "us", "pwd") == 8 && memcmp(b, "\x01\x02us\x03pwd", 8) == 0, "auth");
  char long_user[300];
  memset(long_user, 'u', 256);
  long_user[256] = '\0';
  CHECK(net__socks_auth_request(b, sizeof b, long_user, "p") == 0, "a 256-byte user is refused");
  CHECK(net__socks_auth_request(b, sizeof b, "", "p") == 0, "an empty user is refused");
  CHECK(net__socks_connect_name(b, sizeof b, "localhost", 0x1f90) == 16 &&
            memcmp(b, "\x05\x01\x00\x03\x09localhost\x1f\x90", 16) == 0,
        "connect by name");
  CHECK(net__socks_connect_ip(b, sizeof b, (const uint8_t *)"\x7f\x00\x00\x01", 4, 80) == 10 &&
            memcmp(b, "\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10) == 0,
        "connect IPv4");
  uint8_t v6[16] = {[15] = 1};
  CHECK(net__socks_connect_ip(b, sizeof b, v6, 6, 443) == 22 && b[3] == 4 && b[19] == 1 && b[20] == 1 && b[21] == 0xbb,
        "connect IPv6");
  return true;
}

static bool test_socks_replies(void) {
  char w[NET_PROXY_WHY_MAX];
  CHECK(net__socks_method_reply((const uint8_t *)"\x05\x00", 2, false, w, sizeof w) == 0, "method none");
  CHECK(net__socks_method_reply((const uint8_t *)"\x05\x02", 2, true, w, sizeof w) == 2, "method user/password");
  CHECK(net__socks_method_reply((const uint8_t *)"\x05\x02", 2, false, w, sizeof w) < 0 && strstr(w, "not offered"),
        "a method not offered: %s", w);
  CHECK(net__socks_method_reply((const uint8_t *)"\x05\xff", 2, false, w, sizeof w) < 0 && strstr(w, "none of"),
        "no acceptable method: %s", w);
  CHECK(net__socks_method_reply((const uint8_t *)"\x04\x00", 2, false, w, sizeof w) < 0 && strstr(w, "not a SOCKS5"),
        "SOCKS4: %s", w);
  CHECK(net__socks_auth_reply((const uint8_t *)"\x01\x00", 2, w, sizeof w) == 0, "auth ok");
  CHECK(net__socks_auth_reply((const uint8_t *)"\x01\x01", 2, w, sizeof w) < 0 && strstr(w, "rejected"), "auth no");
  CHECK(net__socks_auth_reply((const uint8_t *)"\x05\x00", 2, w, sizeof w) < 0 && strstr(w, "malformed"), "auth junk");
  static const struct {
    const char *in;
    size_t len;
    long want;
    size_t need;
    const char *says;
  } cases[] = {
      {"", 0, 0, 5, NULL},
      {"\x05\x00\x00\x01\x7f", 5, 0, 10, NULL},
      {"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50", 10, 10, 10, NULL},
      {"\x05\x00\x00\x04\x00", 5, 0, 22, NULL},
      {"\x05\x00\x00\x03\x03", 5, 0, 10, NULL},
      {"\x05\x00\x00\x03\x03" "abc" "\x00\x50", 10, 10, 10, NULL},
      {"\x05\x05", 2, -1, 5, "refused: connection refused (SOCKS5 reply 5)"},
      {"\x05\x04", 2, -1, 5, "host unreachable"},
      {"\x05\x02", 2, -1, 5, "not allowed by ruleset"},
      {"\x05\x09", 2, -1, 5, "unassigned"},
      {"\x04", 1, -1, 5, "not a SOCKS5 reply"},
      {"\x05\x00\x01", 3, -1, 5, "reserved byte"},
      {"\x05\x00\x00\x02\x00", 5, -1, 5, "address type 2"},
      {"\x05\x00\x00\x03\x00", 5, -1, 5, "address type 3"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t need = 0;
    w[0] = '\0';
    long r = net__socks_connect_reply((const uint8_t *)cases[i].in, cases[i].len, &need, w, sizeof w);
    CHECK(r == cases[i].want, "reply %zu: %ld, not %ld (%s)", i, r, cases[i].want, w);
    CHECK(r < 0 || need == cases[i].need, "reply %zu: need %zu, not %zu", i, need, cases[i].need);
    if (cases[i].says) CHECK(strstr(w, cases[i].says), "reply %zu: \"%s\" lacks \"%s\"", i, w, cases[i].says);
  }
  return true;
}

static bool test_no_proxy(void) {
  static const struct { const char *list, *host; bool exempt; } cases[] = {
      {"*", "a.test", true},
      {"example.test", "example.test", true},
      {"example.test", "www.example.test", true},
      {".example.test", "www.example.test", true},
      {"example.test", "badexample.test", false},
      {"example.test:8080", "example.test", true},
      {"EXAMPLE.test.", "example.TEST", true},
      {"localhost", "localhost.", true},
      {"0.0.1", "127.0.0.1", false},              /* an address is never matched by its tail */
      {"168.1.1", "192.168.1.1", false},
      {"127.0.0.1", "127.0.0.1", true},
      {".127.0.0.1", "127.0.0.1", true},
      {"127.0.0.1:80", "127.0.0.1", true},
      {"127.0.0.0/8", "127.9.9.9", true},
      {"127.0.0.0/8", "128.0.0.1", false},
      {"10.1.0.0/17", "10.1.127.1", true},
      {"10.1.0.0/17", "10.1.128.1", false},
      {"0.0.0.0/0", "8.8.8.8", true},
      {"127.0.0.0/33", "127.0.0.1", false},
      {"127.0.0.0/x", "127.0.0.1", false},
      {"::1", "::1", true},
      {"[::1]", "::1", true},
      {"[::1]:8080", "::1", true},
      {"fe80::/10", "fe80::1%eth0", true},
      {"fe80::/10", "fec0::1", false},
      {"127.0.0.1", "::ffff:127.0.0.1", false},
      {"a.test, b.test,c.test", "c.test", true},
      {"a.test, b.test", "d.test", false},
      {"", "a.test", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK(net__http_no_proxy(cases[i].list, cases[i].host) == cases[i].exempt, "NO_PROXY=%s for %s: %s",
          cases[i].list, cases[i].host, cases[i].exempt ? "not exempt" : "exempt");
  return true;
}

int main(void) {
  report("proxy URLs", test_urls());
  report("the CONNECT request", test_connect_request());
  report("the CONNECT reply head", test_connect_reply());
  report("SOCKS5 requests", test_socks_messages());
  report("SOCKS5 replies", test_socks_replies());
  report("NO_PROXY", test_no_proxy());
  return tap_done();
}
