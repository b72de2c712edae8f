/* wake.c: host wake-ups. The I/O thread (and resolver helpers) nudge the
 * host's frame loop after publishing, once per burst. The I/O thread nudges
 * again, at a bounded rate, while the host stays quiet with news it has not
 * read (an editor that drops an event it was not ready for, or reads part of
 * a buffer and sleeps, gets another), and for about a second after a nudge
 * it has not answered with nothing unread behind it.
 *
 * SDL is bound at run time to whichever SDL the host has (SDL3 or SDL2, each
 * with its own event layout), never by name at link time: a plugin that
 * imported SDL_* would bind half to the host's SDL and half to another. */
#include <stdbool.h>
#include <string.h>

#include "alloc.h"
#include "net.h"
#include "os.h"
#include "wake.h"

#define REWAKE_MS 20          /* at most 50 repeated nudges a second... */
#define REWAKE_SLOW_MS 1000   /* ...then one a second, for a host that ignores them */
#define REWAKE_FAST 50        /* quiet nudges before slowing down (about a second) */
#define SDL_INIT_EVENTS 0x4000u   /* the same value in SDL2 and SDL3 */

/* One published configuration: immutable once visible, never freed (a
 * publisher may still hold an older one), shared by identical settings. */
typedef struct wake_cfg {
  struct wake_cfg *next;      /* every configuration made, for reuse */
  net_wake_mode mode;
  void (*fn)(void *);
  void *ud;
  int sdl;                    /* 2 or 3 */
  void *push;                 /* that SDL's SDL_PushEvent */
  uint32_t type;
} wake_cfg;

static _Atomic(const wake_cfg *) current;
static atomic_int host_woken;               /* a nudge is out and the host has not polled */
static atomic_int nudging;                  /* publishers inside nudge(): net__wake_stop waits them out */
static atomic_uint_fast64_t last_nudge;     /* ms, for the repeats */
static atomic_long unread;                  /* objects with news their owners have not read */
static atomic_uint polls;                   /* owner calls so far: a change means the host is awake */
static unsigned polls_seen;                 /* I/O thread: polls at its last look */
static atomic_uint wake_calls;              /* net__wake_host calls so far, from any thread */
static unsigned calls_nudged;               /* I/O thread: wake_calls before its last repeat */
static int quiet_nudges;                    /* I/O thread: nudges since the host last called */
static wake_cfg *made;                      /* under cfg_mx */
static net_mutex *cfg_mx;
static atomic_int cfg_once;

/* ---- SDL, found at run time ----------------------------------------------- */

typedef struct sdl_api {
  int version;
  void *push, *reg, *was_init;
} sdl_api;

/* The functions of one SDL, taken from the library that defines `marker`
 * (SDL3: SDL_GetTicksNS; SDL2: SDL_GetRevisionNumber, in every SDL2 since
 * 2.0.0 and dropped by SDL3). */
static bool sdl_find(int version, sdl_api *api) {
#ifdef _WIN32
  static const char *const libs3[] = {"SDL3.dll", NULL};
  static const char *const libs2[] = {"SDL2.dll", NULL};
#else
  static const char *const libs3[] = {"libSDL3.so.0", "libSDL3.so", NULL};
  static const char *const libs2[] = {"libSDL2-2.0.so.0", "libSDL2.so", NULL};
#endif
  const char *marker = version == 3 ? "SDL_GetTicksNS" : "SDL_GetRevisionNumber";
  void *m = net__os_symbol(marker, version == 3 ? libs3 : libs2);
  if (!m) return false;
  *api = (sdl_api){version, net__os_symbol_near(m, "SDL_PushEvent"),
                   net__os_symbol_near(m, "SDL_RegisterEvents"), net__os_symbol_near(m, "SDL_WasInit")};
  return api->push && api->reg;
}

static bool sdl_events_on(const sdl_api *api) {
  return api->was_init && ((uint32_t(*)(uint32_t))api->was_init)(SDL_INIT_EVENTS) != 0;
}

/* The SDL the host runs: the one whose event system is up, SDL3 first. */
static const char *sdl_pick(sdl_api *api) {
  sdl_api a3, a2;
  bool has3 = sdl_find(3, &a3), has2 = sdl_find(2, &a2);
  if (!has3 && !has2)
    return "no SDL in this process (the host links none, or links it statically "
           "without exporting it): poll from the frame loop instead";
  if (has3 && (!has2 || sdl_events_on(&a3) || !sdl_events_on(&a2))) *api = a3;
  else *api = a2;
  /* every push would fail until then (an SDL too old to say is taken as up) */
  if (api->was_init && !sdl_events_on(api))
    return api->version == 3 ? "the host's SDL3 has not initialised its events (SDL_INIT_EVENTS) yet"
                             : "the host's SDL2 has not initialised its events (SDL_INIT_EVENTS) yet";
  return NULL;
}

static uint32_t sdl_register(const sdl_api *api) {
  static uint32_t types[4];   /* per SDL version: one type per process (under cfg_mx) */
  net__mutex_lock(cfg_mx);
  uint32_t t = types[api->version];
  if (!t) {
    t = ((uint32_t(*)(int))api->reg)(1);
    bool ok = api->version == 3 ? t != 0 : t != (uint32_t)-1;
    t = types[api->version] = ok ? t : 0;
  }
  net__mutex_unlock(cfg_mx);
  return t;
}

/* SDL2: {u32 type, u32 timestamp, u32 windowID, i32 code, data1, data2}
 * in a 56-byte union; SDL3: {u32 type, u32 reserved, u64 timestamp,
 * u32 windowID, i32 code, data1, data2} in a 128-byte union. */
static bool sdl_push(const wake_cfg *w) {
  _Alignas(8) unsigned char ev[128];
  int32_t code = 1;
  memset(ev, 0, sizeof ev);
  memcpy(ev, &w->type, 4);
  memcpy(ev + (w->sdl == 3 ? 20 : 12), &code, 4);
  if (w->sdl == 3) return ((bool (*)(void *))w->push)(ev);
  return ((int (*)(void *))w->push)(ev) == 1;
}

/* ---- nudging ---------------------------------------------------------------- */

static void push_or_call(const wake_cfg *w) {
  atomic_store_explicit(&last_nudge, net__now_ms(), memory_order_relaxed);
  if (w->mode == NET_WAKE_CALLBACK) w->fn(w->ud);
  else if (!sdl_push(w)) atomic_store(&host_woken, 0);   /* queue full or filtered: try next time */
}

static _Thread_local bool in_nudge;   /* a callback setting wake-ups must not wait for itself */

/* Announces itself, then reads the configuration again (both seq_cst):
 * either net__wake_stop sees this nudge in flight and waits for it, or this
 * nudge sees wake-ups off and calls nothing into a host that is shutting down. */
static void nudge(void) {
  atomic_fetch_add(&nudging, 1);
  const wake_cfg *w = atomic_load(&current);
  in_nudge = true;
  if (w && w->mode != NET_WAKE_OFF) push_or_call(w);
  in_nudge = false;
  atomic_fetch_sub(&nudging, 1);
}

/* Until no nudge is inside the host's SDL or callback (one takes microseconds). */
static void wait_nudges(void) {
  /* in a forked child, a nudge counted in flight was our parent's I/O thread's */
  while (atomic_load(&nudging) && !in_nudge && !net__os_forked()) net__yield();
}

void net__wake_host(void) {
  /* acquire: pairs with the release in net_set_wakeup; the record is complete */
  const wake_cfg *w = atomic_load_explicit(&current, memory_order_acquire);
  if (!w || w->mode == NET_WAKE_OFF) return;
  atomic_fetch_add(&wake_calls, 1);   /* seq_cst: before the exchange; see net__wake_tick */
  /* seq_cst fence: pairs with the one in net__host_polled. The caller
   * published (release stores) before calling us; either the host's read
   * after its clear sees that, or our exchange sees its clear and nudges. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_exchange(&host_woken, 1)) return;
  nudge();
}

void net__host_polled(void) {
  if (net__thread_is_io()) return;   /* a protocol on the I/O thread, not the host */
  /* a plain increment: racing owners may lose one, but never leave it unchanged */
  atomic_store_explicit(&polls, atomic_load_explicit(&polls, memory_order_relaxed) + 1, memory_order_relaxed);
  if (!atomic_load_explicit(&host_woken, memory_order_relaxed)) return;
  atomic_exchange(&host_woken, 0);
  atomic_thread_fence(memory_order_seq_cst);   /* pairs with net__wake_host: see there */
}

void net__wake_unread(int delta) { atomic_fetch_add_explicit(&unread, delta, memory_order_relaxed); }

uint64_t net__wake_tick(uint64_t now) {
  const wake_cfg *w = atomic_load_explicit(&current, memory_order_acquire);
  if (!w || w->mode == NET_WAKE_OFF) return 0;
  bool news = atomic_load_explicit(&unread, memory_order_relaxed) > 0;
  if (!atomic_load(&host_woken) && !news) {
    quiet_nudges = 0;
    return 0;
  }
  unsigned p = atomic_load_explicit(&polls, memory_order_relaxed);
  if (p != polls_seen) {   /* the host called since the last look: it is awake */
    polls_seen = p;
    quiet_nudges = 0;
    return now + REWAKE_MS;
  }
  uint64_t every = quiet_nudges < REWAKE_FAST ? REWAKE_MS : REWAKE_SLOW_MS;
  uint64_t due = atomic_load_explicit(&last_nudge, memory_order_relaxed) + every;
  if (now < due) return due;
  /* a nudge with nothing unread behind it (room to write, an address that
   * resolved) is repeated for about a second, in case the host dropped it;
   * past that it is let go, so a host with nothing left to poll sleeps */
  if (!news && quiet_nudges >= REWAKE_FAST) {
    atomic_store(&host_woken, 0);   /* the next news nudges afresh */
    quiet_nudges = 0;
    /* a wake-up since the last repeat may have found host_woken still set and
     * left the nudge to us: its count went up before its exchange (seq_cst) */
    if (atomic_load(&wake_calls) == calls_nudged) return 0;
    if (atomic_exchange(&host_woken, 1)) return now + REWAKE_MS;
  }
  quiet_nudges++;
  calls_nudged = atomic_load(&wake_calls);
  nudge();
  return now + every;
}

/* ---- configuration (owner threads) ----------------------------------------- */

static bool cfg_init(void *unused) {
  (void)unused;
  return (cfg_mx = net__mutex_new()) != NULL;
}

/* Records stay for the process (a nudge may still hold one): one per
 * distinct setting, at most CFG_MAX of them. */
#define CFG_MAX 64
static const wake_cfg *intern(const wake_cfg *want, const char **why) {
  wake_cfg *w;
  int n = 0;
  net__mutex_lock(cfg_mx);
  for (w = made; w; w = w->next, n++)
    if (w->mode == want->mode && w->fn == want->fn && w->ud == want->ud && w->push == want->push &&
        w->type == want->type)
      break;
  if (!w) {
    if (n >= CFG_MAX) *why = "too many different wake-up settings (64)";
    else if (!(w = net__malloc(sizeof *w))) *why = "out of memory";
    else {
      *w = *want;
      w->next = made;
      made = w;
    }
  }
  net__mutex_unlock(cfg_mx);
  return w;
}

int net_set_wakeup(net_wake_mode mode, void (*fn)(void *ud), void *ud, const char **why) {
  static const char *ignored;
  if (!why) why = &ignored;
  wake_cfg want = {.mode = mode};
  if (!net__once(&cfg_once, cfg_init, NULL)) return *why = "out of memory", -1;
  if (mode == NET_WAKE_CALLBACK) {
    if (!fn) return *why = "a callback wake-up needs a function", -1;
    want.fn = fn;
    want.ud = ud;
  } else if (mode == NET_WAKE_SDL) {
    sdl_api api;
    if ((*why = sdl_pick(&api))) return -1;
    want.sdl = api.version;
    want.push = api.push;
    if (!(want.type = sdl_register(&api))) return *why = "SDL_RegisterEvents failed", -1;
  } else if (mode != NET_WAKE_OFF) {
    return *why = "unknown wake-up mode", -1;
  }
  const wake_cfg *w = intern(&want, why);
  if (!w) return -1;
  atomic_store(&host_woken, 0);
  /* seq_cst (release at least: pairs with the acquire in net__wake_host; one
   * pointer carries the mode, the function and its argument together), and
   * with nudge's: a nudge that read the old setting is counted in nudging */
  const wake_cfg *old = atomic_exchange(&current, w);
  /* the old callback may be running on another thread: once this returns
   * the host may free what it gave, or unload the code */
  if (old && old != w && old->mode == NET_WAKE_CALLBACK) wait_nudges();
  return 0;
}

/* The last user of the engine is gone (an editor's lua_close, before its
 * SDL_Quit): no nudge may reach the host from here on, and none is left
 * inside its SDL or callback when this returns. A push takes microseconds. */
void net__wake_stop(void) {
  atomic_store(&current, NULL);
  wait_nudges();
  atomic_store(&host_woken, 0);
}

uint32_t net_wakeup_event_type(void) {
  const wake_cfg *w = atomic_load_explicit(&current, memory_order_acquire);
  return w && w->mode == NET_WAKE_SDL ? w->type : 0;
}

int net_wakeup_sdl_version(void) {
  const wake_cfg *w = atomic_load_explicit(&current, memory_order_acquire);
  return w && w->mode == NET_WAKE_SDL ? w->sdl : 0;
}
