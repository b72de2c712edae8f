/* stats.c: net_get_stats, the counters every part of the engine keeps.
 * Any thread. */
#include "addr.h"
#include "alloc.h"
#include "engine.h"
#include "os.h"
#include "ring.h"

net_stats net_get_stats(void) {
  net_chunk_stats cs = net_chunk_get_stats();
  cs.live += net__run_bytes() / NET_CHUNK_SIZE;   /* a ring's run holds its chunks side by side */
  return (net_stats){
      .heap_bytes = net__engine_heap_bytes(),
      .module_bytes = net__mem_used(),
      .connections = atomic_load(&net__live_conns),
      .servers = atomic_load(&net__live_servers),
      .udp = atomic_load(&net__live_udp),
      .addresses = atomic_load(&net__live_addrs),
      .http = atomic_load(&net__live_http),
      .websockets = atomic_load(&net__live_ws),
      .buffer_bytes = cs.live * NET_CHUNK_SIZE,
      .chunks = cs.live,
  };
}
