/* wakeup_race.c: a stress of the host wake-up under contention (TAP).
 *   wakeup_race [SECONDS]   (default 3)
 *
 * A sender thread fires datagrams at a UDP socket of the engine; the main
 * thread is the host: it drains what arrived, then sleeps until a wake-up
 * callback posts its semaphore. A third thread keeps switching the callback
 * between two (function, argument) pairs. Checked:
 *  - every callback gets its own argument (the pair is published as one
 *    pointer; two separate atomics let a new function see an old argument);
 *  - no wake-up is lost: the host never sleeps a full second while data it
 *    has not read is waiting (the host's clear of the "woken" flag is ordered
 *    before its reads, pairing with the I/O thread's fence before it tests
 *    the flag).
 *  - turning a callback off returns only once no call of it is running (a
 *    host frees its argument then).
 * The races it guards against are windows of nanoseconds: the stress makes
 * them likely, not certain, which is why the pairing arguments live in
 * comments next to the code (net/wake.c). */
#include <arpa/inet.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

typedef struct pair {
  int id;
  atomic_long calls;
} pair;

static pair pa = {1, 0}, pb = {2, 0};
static sem_t woke;
static atomic_long mismatched;
static atomic_int stop;

static void wake_a(void *ud) {
  if (ud != &pa) atomic_fetch_add(&mismatched, 1);
  atomic_fetch_add(&pa.calls, 1);
  sem_post(&woke);
}

static void wake_b(void *ud) {
  if (ud != &pb) atomic_fetch_add(&mismatched, 1);
  atomic_fetch_add(&pb.calls, 1);
  sem_post(&woke);
}

static void *switcher(void *unused) {
  (void)unused;
  for (long i = 0; !atomic_load(&stop); i++)
    net_set_wakeup(NET_WAKE_CALLBACK, i & 1 ? wake_b : wake_a, i & 1 ? (void *)&pb : (void *)&pa, NULL);
  return NULL;
}

static atomic_int slow_inside, slow_entered;

static void wake_slow(void *ud) {
  (void)ud;
  atomic_fetch_add(&slow_inside, 1);
  atomic_store(&slow_entered, 1);
  nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);   /* a callback that takes a while */
  atomic_fetch_sub(&slow_inside, 1);
}

/* Starts wake_slow with a datagram, turns it off while it runs: how many
 * calls of it were still running when that returned. */
static int slow_callback_off(net_udp *u, int port) {
  char buf[16];
  while (net_udp_next_size(u) >= 0) net_udp_take(u, buf, sizeof buf, -1, NULL);   /* the host polled */
  net_set_wakeup(NET_WAKE_CALLBACK, wake_slow, NULL, NULL);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
  close(s);
  for (int i = 0; i < 5000 && !atomic_load(&slow_entered); i++) nanosleep(&(struct timespec){0, 1000000L}, NULL);
  if (!atomic_load(&slow_entered)) return -1;
  net_set_wakeup(NET_WAKE_OFF, NULL, NULL, NULL);
  return atomic_load(&slow_inside);
}

static void *sender(void *arg) {
  int port = *(int *)arg, s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  unsigned seed = 7;
  while (!atomic_load(&stop)) {
    sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
    nanosleep(&(struct timespec){0, (long)(rand_r(&seed) % 200) * 1000L}, NULL);
  }
  close(s);
  return NULL;
}

static int wait_woken(int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  return sem_timedwait(&woke, &ts) == 0;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 3;
  const char *err;
  net_err code;
  sem_init(&woke, 0, 0);
  net_udp *u = net_udp_open(NULL, 0, NULL, &err, &code);
  if (!u) return printf("not ok 1 - open: %s\n1..1\n", err), 1;
  int port = net_udp_port(u);
  pthread_t ts, tw;
  pthread_create(&tw, NULL, switcher, NULL);
  pthread_create(&ts, NULL, sender, &port);
  long received = 0, sleeps = 0, lost = 0;
  char buf[16];
  double end = net_clock() + seconds;
  while (net_clock() < end) {
    long n;
    while ((n = net_udp_next_size(u)) >= 0) received += net_udp_take(u, buf, sizeof buf, -1, NULL) >= 0;
    sleeps++;
    if (!wait_woken(1000) && net_udp_next_size(u) >= 0) lost++;   /* data waited a whole second */
  }
  atomic_store(&stop, 1);
  pthread_join(ts, NULL);
  pthread_join(tw, NULL);
  net_set_wakeup(NET_WAKE_OFF, NULL, NULL, NULL);
  int still = slow_callback_off(u, port);
  net_udp_close(u);
  int ok1 = atomic_load(&mismatched) == 0, ok2 = lost == 0 && received > 0;
  printf("%sok 1 - every wake-up callback got its own argument (%ld + %ld calls, %ld mismatched)\n",
         ok1 ? "" : "not ", atomic_load(&pa.calls), atomic_load(&pb.calls), atomic_load(&mismatched));
  printf("%sok 2 - no wake-up lost (%ld datagrams, %ld sleeps, %ld a second long with data waiting)\n",
         ok2 ? "" : "not ", received, sleeps, lost);
  printf("%sok 3 - a callback turned off is not running when the call returns (%d still running)\n",
         still == 0 ? "" : "not ", still);
  printf("1..3\n");
  return !(ok1 && ok2 && still == 0);
}
