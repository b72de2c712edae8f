/* fuzz_http_head.c: HTTP heads (net/http_parse.c), responses and requests. The first
 * input byte picks the kind, the limits and a seed for the split; the rest is the
 * stream. Parsing it in one piece and in random pieces must give the same outcome
 * (result, where the head ended, message, every field), and what a finished head
 * holds must obey the rules (lower-case token names, values without CR, LF or NUL);
 * every value read as a Content-Range gives a range in order or a refusal. */
#include <stdint.h>
#include <string.h>

#include "http_parse.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static const uint32_t MAX_HEAD[4] = { 0, 64, 300, 4096 };
static const uint32_t MAX_FIELDS[2] = { 0, 3 };

static http_result parse(http_head *h, const uint8_t *p, size_t n, uint32_t seed, size_t *end) {
  size_t off = 0, used;
  http_result r = HTTP_MORE;
  while (off < n) {
    size_t k = n - off;
    if (seed) {
      seed = seed * 1103515245u + 12345u;
      k = 1 + (seed >> 16) % (k < 40 ? k : 40);
    }
    r = http_head_feed(h, (const char *)p + off, k, &used);
    check(used <= k);
    check(r == HTTP_MORE ? used == k : 1);
    off += used;
    if (r != HTTP_MORE) break;
  }
  *end = off;
  return r;
}

static int is_token_lc(const char *s, size_t n) {
  if (n == 0 || s[n] != 0) return 0;
  for (size_t i = 0; i < n; i++)
    if ((s[i] >= 'A' && s[i] <= 'Z') || s[i] <= ' ' || s[i] == ':' || (unsigned char)s[i] >= 0x7f) return 0;
  return 1;
}

static void check_done(const http_head *h) {
  for (size_t i = 0; i < http_head_nfields(h); i++) {
    http_field f = http_head_field(h, i);
    check(is_token_lc(f.name, f.name_len));
    check(f.value[f.value_len] == 0 && strlen(f.value) == f.value_len);
    check(!memchr(f.value, '\r', f.value_len) && !memchr(f.value, '\n', f.value_len));
    check(f.value_len == 0 || (f.value[0] != ' ' && f.value[f.value_len - 1] != ' '));
    check(http_head_get(h, f.name, NULL) != NULL);
    uint64_t first, last, complete;
    int r = http_content_range(f.value, f.value_len, &first, &last, &complete);
    check(r < 0 || (first <= last && (r == 0 || last < complete)));
  }
  http_framing fr = http_head_framing(h, "GET");
  check(fr.kind >= HTTP_BODY_NONE && fr.kind <= HTTP_BODY_CLOSE);
  (void)http_head_framing(h, "HEAD");
  (void)http_head_keep_alive(h);
  (void)http_head_has_token(h, "connection", "close");
}

static void same(const http_head *a, const http_head *b) {
  check(http_head_status(a) == http_head_status(b));
  check(http_head_version(a) == http_head_version(b));
  check(strcmp(http_head_reason(a), http_head_reason(b)) == 0);
  check(strcmp(http_head_method(a), http_head_method(b)) == 0);
  check(strcmp(http_head_target(a), http_head_target(b)) == 0);
  check(http_head_nfields(a) == http_head_nfields(b));
  for (size_t i = 0; i < http_head_nfields(a); i++) {
    http_field x = http_head_field(a, i), y = http_head_field(b, i);
    check(x.name_len == y.name_len && x.value_len == y.value_len);
    check(!memcmp(x.name, y.name, x.name_len) && !memcmp(x.value, y.value, x.value_len));
  }
  http_framing fa = http_head_framing(a, "GET"), fb = http_head_framing(b, "GET");
  check(fa.kind == fb.kind && fa.length == fb.length);
  check(http_head_keep_alive(a) == http_head_keep_alive(b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0];
  http_head_kind kind = (sel & 3) == 3 ? HTTP_HEAD_TRAILER : (sel & 1) ? HTTP_HEAD_REQUEST : HTTP_HEAD_RESPONSE;
  uint32_t max_head = MAX_HEAD[(sel >> 2) & 3], max_fields = MAX_FIELDS[(sel >> 4) & 1];
  uint32_t seed = (uint32_t)(sel >> 5) * 2654435761u + (uint32_t)size;
  http_head a, b;
  size_t ea, eb;
  http_head_init(&a, kind, max_head, max_fields);
  http_head_init(&b, kind, max_head, max_fields);
  http_result ra = parse(&a, data + 1, size - 1, 0, &ea);
  http_result rb = parse(&b, data + 1, size - 1, seed | 1, &eb);
  check(ra == rb);   /* where it stopped counts only when it did not fail */
  if (ra == HTTP_ERROR) check(strcmp(a.err, b.err) == 0);
  else check(ea == eb);
  if (ra == HTTP_DONE) {
    check_done(&a);
    same(&a, &b);
    /* the same object parses the next message after a reset */
    http_head_reset(&a);
    parse(&a, data + 1 + ea, size - 1 - ea, 0, &ea);
  }
  http_head_free(&a);
  http_head_free(&b);
  return 0;
}
