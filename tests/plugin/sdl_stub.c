/* sdl_stub.c: what an editor's shared SDL looks like to the plugin, as a
 * stub: SDL3's (SDL_STUB_MAJOR=3) or SDL2's (=2) names, ABI and event layout
 * for the four functions the plugin's wake-ups look for, plus hooks for the
 * test host (xl_host, XL_HOST_PRELOAD) to wait for and inspect the events.
 * Runs on whatever thread calls it (the plugin's I/O thread pushes). */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#ifndef SDL_STUB_MAJOR
#error "build with -DSDL_STUB_MAJOR=2 or 3"
#endif

#define EXPORT __attribute__((visibility("default")))
#define FIRST_USER_EVENT 0x8000u
#define EVENT_SIZE (SDL_STUB_MAJOR == 3 ? 128 : 56)

static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint32_t next_type = FIRST_USER_EVENT;
static long pushed, valid, invalid, pending;
static uint32_t last_type;
static int32_t last_code;

/* The version's marker (the plugin tells SDL3 from SDL2 by it). */
#if SDL_STUB_MAJOR == 3
EXPORT uint64_t SDL_GetTicksNS(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#else
EXPORT int SDL_GetRevisionNumber(void) { return 0; }   /* every SDL2 has it (GetTicks64 came with 2.0.18) */
#endif

EXPORT uint32_t SDL_WasInit(uint32_t flags) { return flags & 0x4000u; }   /* events are up */

/* SDL3 returns 0 on failure, SDL2 (Uint32)-1; both hand out types from 0x8000. */
EXPORT uint32_t SDL_RegisterEvents(int n) {
  pthread_mutex_lock(&mx);
  uint32_t t = next_type;
  next_type += (uint32_t)n;
  pthread_mutex_unlock(&mx);
  return t;
}

/* Checks the event is laid out as this SDL reads it: the registered type
 * first, code 1 at the version's offset, everything else zero. */
static bool well_formed(const unsigned char *ev, uint32_t *type, int32_t *code) {
  int code_at = SDL_STUB_MAJOR == 3 ? 20 : 12;
  memcpy(type, ev, 4);
  memcpy(code, ev + code_at, 4);
  for (int i = 4; i < EVENT_SIZE; i++)
    if ((i < code_at || i >= code_at + 4) && ev[i] != 0) return false;
  return *type >= FIRST_USER_EVENT && *type < next_type && *code == 1;
}

static int push(const void *event) {
  unsigned char ev[EVENT_SIZE];
  memcpy(ev, event, sizeof ev);   /* reads the whole union, as SDL does */
  uint32_t type;
  int32_t code;
  pthread_mutex_lock(&mx);
  bool ok = well_formed(ev, &type, &code);
  pushed++;
  if (ok) valid++;
  else invalid++;
  last_type = type;
  last_code = code;
  pending++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mx);
  return 1;
}

#if SDL_STUB_MAJOR == 3
EXPORT bool SDL_PushEvent(void *event) { return push(event) == 1; }
#else
EXPORT int SDL_PushEvent(void *event) { return push(event); }
#endif

/* ---- for the test host ---- */

/* Waits at most ms (< 0: for ever) for an event; 1 if one came (and takes
 * every pending one), 0 on timeout. SDL_WaitEventTimeout, for the fake editor. */
EXPORT int sdlstub_wait(int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&mx);
  while (pending == 0) {
    if (ms < 0) pthread_cond_wait(&cv, &mx);
    else if (pthread_cond_timedwait(&cv, &mx, &ts) != 0) break;
  }
  int got = pending > 0;
  pending = 0;
  pthread_mutex_unlock(&mx);
  return got;
}

EXPORT void sdlstub_stats(long out[6]) {
  pthread_mutex_lock(&mx);
  out[0] = SDL_STUB_MAJOR;
  out[1] = pushed;
  out[2] = valid;
  out[3] = invalid;
  out[4] = last_type;
  out[5] = last_code;
  pthread_mutex_unlock(&mx);
}
