/* fuzz_input.h: what the fuzz targets that read their input as a script
 * share: a failed check traps (the fuzzer keeps the input), and numbers are
 * taken from the front of the input, zeros once it runs out. */
#ifndef SLUICE_FUZZ_INPUT_H
#define SLUICE_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

static void check(int ok) {
  if (!ok) __builtin_trap();
}

typedef struct input {
  const uint8_t *p;
  size_t n;
} input;

/* The next `bytes` bytes, big-endian. */
static unsigned take(input *in, int bytes) {
  unsigned v = 0;
  for (int i = 0; i < bytes; i++) {
    v = v << 8 | (in->n ? *in->p : 0);
    if (in->n) in->p++, in->n--;
  }
  return v;
}

#endif
