/* fuzz_ip.c: IP literals (net__ip_parse, net_ip_family): never a crash, and
 * whatever parses prints back to text that parses to the same address. */
#include <stdint.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  net_sockaddr sa, again;
  int mc;
  int fam = net_ip_family((const char *)data, size, &mc);
  if (!net__ip_parse((const char *)data, size, &sa)) {
    if (fam != 0) __builtin_trap();
    return 0;
  }
  if (fam != (sa.sa.sa_family == AF_INET ? 4 : 6)) __builtin_trap();
  char text[NET_IP_MAX];
  net__sa_str(&sa, text, sizeof text, false);
  if (!net__ip_parse(text, strlen(text), &again)) __builtin_trap();
  if (sa.sa.sa_family == AF_INET && memcmp(&sa.in4.sin_addr, &again.in4.sin_addr, 4) != 0) __builtin_trap();
  if (sa.sa.sa_family == AF_INET6 && memcmp(&sa.in6.sin6_addr, &again.in6.sin6_addr, 16) != 0) __builtin_trap();
  return 0;
}
