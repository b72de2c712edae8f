/* test_http_opts.c: the engine refuses, for C callers too, request headers
 * that would let a server read another request than the one meant: a
 * Transfer-Encoding, a Content-Length other than the body's, Host or
 * Content-Length twice. Nothing is sent (the URL's port is closed). TAP. */
#include <stdio.h>
#include <string.h>

#include "net.h"
#include "tap.h"

/* Opens a request with these headers: NULL when refused (*err why). */
static net_http *open_with(const char *const *headers, const char **err) {
  net_http_opts o = {.url = "http://127.0.0.1:9/", .method = "POST", .body = "hello", .body_len = 5,
                     .headers = headers, .proxy = ""};
  net_err code;
  net_http *h = net_http_request(&o, err, &code);
  if (!h && code != NET_E_INVALID) *err = "refused, but not as invalid";
  return h;
}

static bool refused(const char *const *headers, const char *says) {
  const char *err = "";
  net_http *h = open_with(headers, &err);
  if (h) net_http_close(h);
  CHECK(!h, "taken: %s: %s", headers[0], headers[1]);
  CHECK(strstr(err, says), "refused with '%s', not '%s'", err, says);
  return true;
}

static bool framing(void) {
  const char *te[] = {"Transfer-Encoding", "chunked", NULL};
  const char *cl[] = {"Content-Length", "1", NULL};
  return refused(te, "Transfer-Encoding is not taken") && refused(cl, "the body's length");
}

static bool twice(void) {
  const char *host[] = {"Host", "a.test", "host", "b.test", NULL};
  const char *cl[] = {"Content-Length", "5", "content-length", "5", NULL};
  return refused(host, "taken once") && refused(cl, "taken once");
}

static bool others_repeat(void) {
  const char *accept[] = {"Accept", "text/html", "Accept", "*/*", "Content-Length", "5", NULL};
  const char *err = "";
  net_http *h = open_with(accept, &err);
  CHECK(h, "a list field given twice was refused: %s", err);
  net_http_close(h);
  return true;
}

int main(void) {
  if (net_init() != 0) {
    printf("not ok 1 - net_init failed\n1..1\n");
    return 1;
  }
  report("refuses a Transfer-Encoding, or a Content-Length not the body's", framing());
  report("refuses Host or Content-Length twice, in any case", twice());
  report("takes other fields more than once (lists)", others_repeat());
  net_quit();
  return tap_done();
}
