/* hosts.h: answers from hosts-format files. A regular file is indexed once
 * per version of it (device, inode, size and modification time), so that a
 * long one (an ad-blocking list of 100,000 lines) costs a lookup a stat
 * rather than a read through it. Helper threads only: it reads files. */
#ifndef SLUICE_HOSTS_H
#define SLUICE_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

/* Adds the addresses the file at path gives a->host, in file order. Test
 * files (SLUICE_HOSTS_FILE) may give a word other than an address ("hang",
 * "delay=MS:IP") and name "*.domain" for every name under it: with slow,
 * the first such entry for a->host goes there. cached: use (and keep) the
 * index, which one thread at a time may do; the others read the file
 * through. Returns false, errno set, when the file cannot be read. */
bool net__hosts_lookup(net_addr *a, const char *path, bool cached, char *slow, size_t slow_len);

/* The name's length without one trailing dot: "localhost." is localhost. */
size_t net__hosts_name_len(const char *host);

#endif
