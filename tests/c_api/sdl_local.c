/* sdl_local.c [NAME]: a host that loads SDL2 itself with RTLD_LOCAL (as an
 * editor that binds SDL at run time does), by its soname or by another name
 * of the file, still gets SDL wake-ups: the engine finds the library among
 * those loaded, by the path it was loaded from; before
 * SDL_Init they are refused, saying why. TAP. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "libSDL2-2.0.so.0";   /* or the file it links to */
  void *sdl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!sdl) return printf("ok - # SKIP no %s to load\n", name), 0;
  int (*init)(uint32_t) = (int (*)(uint32_t))dlsym(sdl, "SDL_Init");
  int (*wait)(void *, int) = (int (*)(void *, int))dlsym(sdl, "SDL_WaitEventTimeout");
  const char *why = "";
  if (!init || !wait || net_init() != 0) return printf("not ok - set-up\n"), 1;
  int r = net_set_wakeup(NET_WAKE_SDL, NULL, NULL, &why);   /* before SDL_Init: every push would fail */
  printf("%s - refused before SDL_Init: %s\n", r != 0 && strstr(why, "SDL_INIT_EVENTS") ? "ok" : "not ok", why);
  if (r == 0 || init(0x4000) != 0) return 1;
  r = net_set_wakeup(NET_WAKE_SDL, NULL, NULL, &why);
  uint32_t type = net_wakeup_event_type();
  printf("%s - SDL2 loaded RTLD_LOCAL as %s is found for wake-ups%s%s\n", r == 0 && type ? "ok" : "not ok",
         name, r ? ": " : "", r ? why : "");
  /* a name looked up wakes the loop through that SDL */
  const char *err;
  net_addr *a = net_resolve("localhost", 9, &err, NULL);   /* the hosts file, on a helper */
  _Alignas(8) unsigned char ev[128];
  int got = 0;
  for (int i = 0; i < 50 && !got; i++)
    if (wait(ev, 100) == 1 && *(uint32_t *)ev == type) got = 1;
  printf("%s - its event arrives\n", got ? "ok" : "not ok");
  if (a) net_addr_unref(a);
  net_set_wakeup(NET_WAKE_OFF, NULL, NULL, NULL);
  net_quit();
  return r == 0 && got ? 0 : 1;
}
