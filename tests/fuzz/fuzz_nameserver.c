/* fuzz_nameserver.c: the nameserver parser of custom resolvers (net/dns.c),
 * the only bytes of the DNS path parsed here: c-ares parses every DNS
 * message itself. Whatever it accepts must print back as an IP and port
 * that parse to the same address. */
#include <stdint.h>
#include <string.h>

#include "dns.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  net_sockaddr sa, again;
  const char *why = NULL;
  if (!net__dns_parse_server((const char *)data, size, &sa, &why)) {
    check(why != NULL);
    return 0;
  }
  check(net__sa_port(&sa) >= 1);
  char text[NET_IP_MAX + 10];
  net__sa_str(&sa, text, sizeof text, true);   /* "1.2.3.4:53" / "[::1]:53" */
  check(net__dns_parse_server(text, strlen(text), &again, &why));
  check(memcmp(&sa, &again, sizeof sa) == 0);
  return 0;
}
