/* tap.h: the TAP output every C unit test prints: a test function returns
 * true, or false through CHECK/fail with why it failed; report() numbers it;
 * tap_done() prints the plan and gives the exit status. */
#ifndef SLUICE_TAP_H
#define SLUICE_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int n_run, n_failed;
static char why[512];

static inline bool fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return false;
}

#define CHECK(cond, ...) do { if (!(cond)) return fail(__VA_ARGS__); } while (0)

static inline void report(const char *name, bool ok) {
  n_run++;
  if (ok) {
    printf("ok %d - %s\n", n_run, name);
  } else {
    n_failed++;
    printf("not ok %d - %s: %s\n", n_run, name, why);
  }
  fflush(stdout);
}

static inline int tap_done(void) {
  printf("1..%d\n# %d passed, %d failed\n", n_run, n_run - n_failed, n_failed);
  return n_failed ? 1 : 0;
}

#endif
