/* os_common.c: the parts of the OS layer (os.h) that C11 alone can do, for
 * every platform. Any thread. */
#include "os.h"

static _Thread_local bool is_io_thread;
void net__thread_mark_io(void) { is_io_thread = true; }
bool net__thread_is_io(void) { return is_io_thread; }

bool net__once(atomic_int *state, bool (*init)(void *), void *arg) {
  for (;;) {
    int s = atomic_load_explicit(state, memory_order_acquire);   /* pairs with the release below */
    if (s == 2) return true;
    int zero = 0;
    if (s == 0 && atomic_compare_exchange_strong(state, &zero, 1)) {
      bool ok = init(arg);
      atomic_store_explicit(state, ok ? 2 : 0, memory_order_release);
      return ok;
    }
    net__yield();   /* another thread is inside init: it is quick */
  }
}
