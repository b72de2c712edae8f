/* test_url.c: unit tests for net/url.c (parsing, formatting, reference
 * resolution, origins), table-driven; prints TAP. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "url.h"
#include "tap.h"


static net_url u, v;

/* ---- good URLs ------------------------------------------------------------------- */

static const struct good {
  const char *in, *scheme, *user, *pass, *host, *path;
  int family, port;
} goods[] = {
    {"http://example.test", "http", "", "", "example.test", "/", 0, 80},
    {"HTTPS://Example.TEST:8443/a/b?x=1#frag", "https", "", "", "example.test", "/a/b?x=1", 0, 8443},
    {"ws://127.0.0.1:9000?q", "ws", "", "", "127.0.0.1", "/?q", 4, 9000},
    {"wss://[::1]/chat", "wss", "", "", "::1", "/chat", 6, 443},
    {"http://[FE80::1%25eth0]:81/", "http", "", "", "fe80::1%eth0", "/", 6, 81},
    {"socks5h://us%40er:p%3Ass@proxy.test", "socks5h", "us@er", "p:ss", "proxy.test", "/", 0, 1080},
    {"socks5://u:@h", "socks5", "u", "", "h", "/", 0, 1080},
    {"http://h:/p", "http", "", "", "h", "/p", 0, 80},
    {"http://h:00080/", "http", "", "", "h", "/", 0, 80},
    {"http://a_b-c.d./%7Efoo", "http", "", "", "a_b-c.d.", "/%7Efoo", 0, 80},
    {"http://h/a:b@c!$&'()*+,;=", "http", "", "", "h", "/a:b@c!$&'()*+,;=", 0, 80},
};

static bool test_good(void) {
  for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
    const struct good *g = &goods[i];
    char w[NET_URL_WHY_MAX];
    CHECK(net__url_parse(g->in, strlen(g->in), &u, w, sizeof w), "%s: %s", g->in, w);
    CHECK(strcmp(u.scheme, g->scheme) == 0, "%s: scheme %s", g->in, u.scheme);
    CHECK(strcmp(u.user, g->user) == 0 && strcmp(u.pass, g->pass) == 0, "%s: userinfo %s/%s", g->in, u.user, u.pass);
    CHECK(strcmp(u.host, g->host) == 0, "%s: host %s", g->in, u.host);
    CHECK(strcmp(u.path, g->path) == 0, "%s: path %s", g->in, u.path);
    CHECK(u.host_family == g->family && u.port == g->port, "%s: family %d port %u", g->in, u.host_family, u.port);
  }
  return true;
}

/* ---- bad URLs, and the word the message must hold ----------------------------------- */

static const struct bad {
  const char *in, *says;
} bads[] = {
    {"", "no scheme"},
    {"example.test/x", "no scheme"},
    {"ftp://h/", "unsupported scheme 'ftp'"},
    {"http:/h", "no \"//\""},
    {"http://", "empty host"},
    {"http://:80/", "empty host"},
    {"http://u@", "empty host"},
    {"http://h p/", "space"},
    {"http://h/\x01", "control character"},
    {"http://h/\x7f", "control character"},
    {"http://h/\xc3\xa9", "non-ASCII"},
    {"http://h/a<b", "must be percent-encoded"},
    {"http://h/%4", "percent-escape"},
    {"http://h/%zz", "percent-escape"},
    {"http://u%0a@h/", "control character"},
    {"http://u%g0@h/", "percent-escape"},
    {"http://h:0/", "1..65535"},
    {"http://h:65536/", "1..65535"},
    {"http://h:123456/", "1..65535"},
    {"http://h:8x/", "not a number"},
    {"http://a@b@h/", "more than one '@'"},
    {"http://[::1/", "closing ']'"},
    {"http://[::1]x/", "after the IPv6"},
    {"http://[::g]/", "bad IPv6"},
    {"http://[fe80::1%eth0]/", "%25"},
    {"http://[v1.x]/", "bad IPv6"},
    {"http://1.2.3.256/", "bad IPv4"},
    {"http://1.2.3/", "bad IPv4"},
    {"http://a..b/", "empty label"},
    {"http://.a/", "empty label"},
    {"http://h%41/", "percent-escape in the host"},
    {"http://h!/", "character '!' in the host"},
    {"http://h/[x]", "'[' or ']'"},
};

static bool test_bad(void) {
  for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
    char w[NET_URL_WHY_MAX] = "";
    CHECK(!net__url_parse(bads[i].in, strlen(bads[i].in), &u, w, sizeof w), "%s parsed", bads[i].in);
    CHECK(strstr(w, bads[i].says), "%s: \"%s\" lacks \"%s\"", bads[i].in, w, bads[i].says);
  }
  return true;
}

static bool test_limits(void) {
  static char big[NET_URL_MAX + 64];
  char w[NET_URL_WHY_MAX];
  size_t n = (size_t)snprintf(big, sizeof big, "http://h/");
  memset(big + n, 'a', NET_URL_MAX - n);
  CHECK(net__url_parse(big, NET_URL_MAX, &u, w, sizeof w), "8192 bytes: %s", w);
  big[NET_URL_MAX] = 'a';
  CHECK(!net__url_parse(big, NET_URL_MAX + 1, &u, w, sizeof w) && strstr(w, "longer"), "8193 bytes: %s", w);
  memset(big, 0, sizeof big);
  n = (size_t)snprintf(big, sizeof big, "http://");
  memset(big + n, 'a', 63);
  big[n + 63] = '.';
  memset(big + n + 64, 'b', 64);
  CHECK(!net__url_parse(big, strlen(big), &u, w, sizeof w) && strstr(w, "63"), "long label: %s", w);
  char user[300] = "http://";
  memset(user + 7, 'u', 256);
  strcpy(user + 263, "@h/");
  CHECK(!net__url_parse(user, strlen(user), &u, w, sizeof w) && strstr(w, "user name"), "long user: %s", w);
  CHECK(!net__url_parse("http://h/\0x", 11, &u, w, sizeof w) && strstr(w, "control"), "a NUL: %s", w);
  return true;
}

/* ---- formatting ------------------------------------------------------------------ */

static bool test_format(void) {
  static const char *const cases[][2] = {
      {"HTTP://Example.test:80/a?b#c", "http://example.test/a?b"},
      {"https://u%20x:p%40@h:444", "https://u%20x:p%40@h:444/"},
      {"http://[fe80::1%25en0]:8080/x", "http://[fe80::1%25en0]:8080/x"},
      {"http://[0:0::1]/", "http://[::1]/"},
      {"socks5h://a:b:c@h", "socks5h://a:b:c@h/"},
  };
  char out[256], w[NET_URL_WHY_MAX];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK(net__url_parse(cases[i][0], strlen(cases[i][0]), &u, w, sizeof w), "%s: %s", cases[i][0], w);
    size_t n = net__url_format(&u, out, sizeof out);
    CHECK(n == strlen(out) && strcmp(out, cases[i][1]) == 0, "%s -> %s", cases[i][0], out);
    CHECK(net__url_parse(out, n, &v, w, sizeof w) && strcmp(u.user, v.user) == 0 && strcmp(u.pass, v.pass) == 0 &&
              net__url_same_origin(&u, &v) && strcmp(u.path, v.path) == 0,
          "%s does not parse back the same", out);
  }
  CHECK(net__url_format(&u, out, 4) > 4 && strlen(out) == 3, "a short buffer is cut, NUL-terminated");
  return true;
}

/* ---- RFC 3986 section 5.4's examples ------------------------------------------------ */

static bool test_resolve(void) {
  static const char *const cases[][2] = {
      {"g:h", NULL},   /* an unsupported scheme */
      {"g", "http://a/b/c/g"},          {"./g", "http://a/b/c/g"},      {"g/", "http://a/b/c/g/"},
      {"/g", "http://a/g"},             {"//g", "http://g/"},            {"?y", "http://a/b/c/d;p?y"},
      {"g?y", "http://a/b/c/g?y"},      {"#s", "http://a/b/c/d;p?q"},    {"g#s", "http://a/b/c/g"},
      {";x", "http://a/b/c/;x"},        {"", "http://a/b/c/d;p?q"},      {".", "http://a/b/c/"},
      {"./", "http://a/b/c/"},          {"..", "http://a/b/"},           {"../", "http://a/b/"},
      {"../g", "http://a/b/g"},         {"../..", "http://a/"},          {"../../g", "http://a/g"},
      {"../../../g", "http://a/g"},     {"/./g", "http://a/g"},          {"/../g", "http://a/g"},
      {"g.", "http://a/b/c/g."},        {".g", "http://a/b/c/.g"},       {"g..", "http://a/b/c/g.."},
      {"./../g", "http://a/b/g"},       {"./g/.", "http://a/b/c/g/"},    {"g/./h", "http://a/b/c/g/h"},
      {"g/../h", "http://a/b/c/h"},     {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
      {"g;x=1/../y", "http://a/b/c/y"}, {"g?y/./x", "http://a/b/c/g?y/./x"},
      {"https://x:1/y", "https://x:1/y"},
  };
  char out[256], w[NET_URL_WHY_MAX];
  net_url base;
  CHECK(net__url_parse("http://a/b/c/d;p?q", 18, &base, w, sizeof w), "base: %s", w);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool ok = net__url_resolve(&base, cases[i][0], strlen(cases[i][0]), &u, w, sizeof w);
    if (!cases[i][1]) {
      CHECK(!ok, "%s resolved", cases[i][0]);
      continue;
    }
    CHECK(ok, "%s: %s", cases[i][0], w);
    net__url_format(&u, out, sizeof out);
    CHECK(strcmp(out, cases[i][1]) == 0, "%s -> %s, not %s", cases[i][0], out, cases[i][1]);
  }
  CHECK(!net__url_resolve(&base, "a b", 3, &u, w, sizeof w) && strstr(w, "space"), "a bad reference: %s", w);
  return true;
}

/* A Location as servers send it: what a URL cannot hold is escaped, the rest kept. */
static bool test_escape(void) {
  static const struct { const char *in, *out; } cases[] = {
      {"/a b/\xc3\xa9", "/a%20b/%C3%A9"},
      {"/x?q={a}|\"b\"^<c>`\\", "/x?q=%7Ba%7D%7C%22b%22%5E%3Cc%3E%60%5C"},
      {"/%41%zz%4", "/%41%25zz%254"},
      {"http://[::1]:80/a:b@c!$&'()*+,;=#f", "http://[::1]:80/a:b@c!$&'()*+,;=#f"},
      {"/\x01\x7f", "/%01%7F"},
  };
  char out[64];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = net__url_escape(cases[i].in, strlen(cases[i].in), out, sizeof out);
    CHECK(n == strlen(cases[i].out) && !strcmp(out, cases[i].out), "%s -> %s, not %s", cases[i].in, out, cases[i].out);
  }
  CHECK(net__url_escape("a b", 3, out, 5) == 5 && !strcmp(out, "a%20"), "cut short: %s", out);
  CHECK(net__url_escape("a b", 3, out, 6) == 5 && !strcmp(out, "a%20b"), "just fits: %s", out);
  return true;
}

static bool test_origin(void) {
  char w[NET_URL_WHY_MAX];
  CHECK(net__url_parse("http://H:80/x", 13, &u, w, sizeof w) && net__url_parse("http://h/y", 10, &v, w, sizeof w),
        "parse: %s", w);
  CHECK(net__url_same_origin(&u, &v), "default port and case: same origin");
  CHECK(net__url_parse("https://h/y", 11, &v, w, sizeof w) && !net__url_same_origin(&u, &v), "scheme differs");
  CHECK(net__url_parse("http://h:81/", 12, &v, w, sizeof w) && !net__url_same_origin(&u, &v), "port differs");
  CHECK(net__url_default_port("wss") == 443 && net__url_default_port("socks5h") == 1080 &&
            net__url_default_port("ftp") == 0,
        "default ports");
  return true;
}

/* ---- host names alone (a proxy's target) ------------------------------------------ */

static bool test_check_host(void) {
  static const char *const ok[] = {"example.test", "A_b-C.d.", "127.0.0.1", "h"};
  static const struct { const char *in, *says; } bad[] = {
      {"a.test\r\nX: 1", "0x0d"}, {"a b", "' '"}, {"a:443", "':'"}, {"[::1]", "'['"},
      {"a..b", "empty label"}, {"1.2.3", "bad IPv4"}, {"", "empty host"}, {"h%41", "percent"},
  };
  char w[NET_URL_WHY_MAX];
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    CHECK(net__url_check_host(ok[i], strlen(ok[i]), w, sizeof w), "%s refused: %s", ok[i], w);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    w[0] = '\0';
    CHECK(!net__url_check_host(bad[i].in, strlen(bad[i].in), w, sizeof w), "%s taken", bad[i].in);
    CHECK(strstr(w, bad[i].says), "%s: \"%s\" lacks \"%s\"", bad[i].in, w, bad[i].says);
  }
  CHECK(!net__url_check_host("a\0b", 3, w, sizeof w) && strstr(w, "0x00"), "a NUL: %s", w);
  return true;
}

/* ---- the Host field -------------------------------------------------------------- */

static bool test_host_field(void) {
  static const struct { const char *url, *field; } cases[] = {
      {"http://a.test/", "a.test"},
      {"http://a.test:8080/", "a.test:8080"},
      {"https://[::1]/", "[::1]"},
      {"http://[::1]:81/", "[::1]:81"},
      {"http://[fe80::1%25eth0]:81/", "[fe80::1]:81"},   /* the zone stays here (RFC 6874) */
      {"https://[fe80::1%25lo]/", "[fe80::1]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    net_url u;
    char w[NET_URL_WHY_MAX], field[NET_URL_HOST_MAX + 16];
    CHECK(net__url_parse(cases[i].url, strlen(cases[i].url), &u, w, sizeof w), "%s: %s", cases[i].url, w);
    net__url_host_field(&u, field, sizeof field);
    CHECK(!strcmp(field, cases[i].field), "%s gives Host %s, not %s", cases[i].url, field, cases[i].field);
  }
  return true;
}

int main(void) {
  report("good URLs parse into their parts", test_good());
  report("bad URLs are refused, saying why", test_bad());
  report("length limits", test_limits());
  report("format, and parse back", test_format());
  report("reference resolution (RFC 3986 5.4)", test_resolve());
  report("escaping a Location", test_escape());
  report("origins", test_origin());
  report("host names alone", test_check_host());
  report("the Host field", test_host_field());
  return tap_done();
}
