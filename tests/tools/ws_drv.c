/* ws_drv.c: a command-line face of the WebSocket protocol core, for checks
 * against other implementations (tests/tools/ws_crosscheck.py). One thread.
 *   ws_drv parse c|s RSV1OK < frames    one line per frame: F op fin rsv1 hex,
 *                                       then OK, or E code why
 *   ws_drv build < lines                "op fin rsv1 masked hex" -> frames
 *   ws_drv offer SMWB CMWB SNCT CNCT    the client's extension offer
 *   ws_drv select SMWB CMWB SNCT CNCT VALUE   the server's choice and answer
 *   ws_drv check SMWB CMWB SNCT CNCT VALUE    the client's check of an answer */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_ext.h"
#include "ws_frame.h"

#define BIG (1u << 24)

static void hex(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

static size_t unhex(const char *s, uint8_t *out) {
  size_t n = strlen(s) / 2;
  for (size_t i = 0; i < n; i++) sscanf(s + 2 * i, "%2hhx", &out[i]);
  return n;
}

static int parse(net_ws_role role, bool rsv1, uint8_t *buf, uint8_t *pay) {
  size_t n = fread(buf, 1, BIG, stdin), used, plen, np = 0;
  uint8_t *b = buf, *piece;
  net_ws_parser p;
  net__ws_parser_init(&p, role, rsv1, BIG);
  for (;;) {
    net_ws_event ev = net__ws_parse(&p, b, n, &used, &piece, &plen);
    b += used, n -= used;
    if (ev == NET_WS_MORE) return printf("OK\n"), 0;
    if (ev == NET_WS_ERROR) return printf("E %u %s\n", p.close_code, p.why), 0;
    if (ev == NET_WS_HEADER) np = 0;
    if (ev == NET_WS_PAYLOAD) memcpy(pay + np, piece, plen), np += plen;
    if (ev == NET_WS_END) {
      printf("F %u %d %d ", p.frame.opcode, p.frame.fin, p.frame.rsv1);
      hex(pay, np);
      printf("\n");
    }
  }
}

static int build(char *line, char *h, uint8_t *pay) {
  net_ws_rng r;
  unsigned op, fin, rsv1, masked;
  if (!net__ws_rng_init(&r)) return 1;
  while (fgets(line, BIG, stdin)) {
    h[0] = 0;
    if (sscanf(line, "%u %u %u %u %s", &op, &fin, &rsv1, &masked, h) < 4) continue;
    size_t n = unhex(h, pay);
    uint8_t key[4], hd[NET_WS_HEADER_MAX];
    if (!net__ws_rng_bytes(&r, key, 4)) return 1;
    size_t hl = net__ws_header(hd, op, fin, rsv1, n, masked ? key : NULL);
    if (masked) net__ws_mask(pay, n, key, 0);
    fwrite(hd, 1, hl, stdout);
    fwrite(pay, 1, n, stdout);
  }
  net__ws_rng_free(&r);
  return 0;
}

static void print_agreed(const net_ws_deflate *d) {
  printf(" %d %d %d %d", d->server_no_context_takeover, d->client_no_context_takeover,
         d->server_max_window_bits, d->client_max_window_bits);
}

static int negotiate(int argc, char **argv) {
  net_ws_deflate_conf c;
  net_ws_deflate d;
  char out[NET_WS_EXT_LINE];
  const char *why = "", *v = argc > 6 ? argv[6] : "";
  int r = -2;
  if (argc < 6) return 2;
  net__ws_deflate_conf_init(&c);
  c.server_max_window_bits = (uint8_t)atoi(argv[2]), c.client_max_window_bits = (uint8_t)atoi(argv[3]);
  c.server_no_context_takeover = atoi(argv[4]), c.client_no_context_takeover = atoi(argv[5]);
  if (!strcmp(argv[1], "offer")) return net__ws_deflate_offer(&c, out, sizeof out) ? printf("%s\n", out), 0 : 1;
  if (!strcmp(argv[1], "select")) r = net__ws_deflate_select(&c, v, strlen(v), &d, out, sizeof out, &why);
  if (!strcmp(argv[1], "check")) r = net__ws_deflate_check(&c, v, strlen(v), &d, &why);
  if (r == -2) return 2;
  printf("%d", r);
  if (r == 1) print_agreed(&d);
  if (r == 1 && argv[1][0] == 's') printf("\n%s", out);
  if (r < 0) printf(" %s", why);
  printf("\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  uint8_t *a = malloc(BIG), *b = malloc(BIG);
  int rc;
  if (!strcmp(argv[1], "parse") && argc > 3)
    rc = parse(argv[2][0] == 's' ? NET_WS_SERVER : NET_WS_CLIENT, atoi(argv[3]), a, b);
  else if (!strcmp(argv[1], "build"))
    rc = build((char *)a, malloc(BIG), b);
  else
    rc = negotiate(argc, argv);
  return rc;
}
