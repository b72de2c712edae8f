/* test_signals.c: the engine's threads leave the host's signals to the host.
 * A host that blocks a signal in its own thread and reads it from a
 * signalfd (or sigtimedwait) once the engine runs must get it: a thread of
 * ours that took it would run its default action and end the process. TAP. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "net.h"
#include "loopback.h"
#include "tap.h"

/* The I/O thread and a resolver lane's helper, started before the host blocks. */
static net_conn *start_threads(uint16_t port) {
  const char *err;
  net_err code;
  net_conn *c = net_tcp_open_host(NULL, "localhost", 9, port, NULL, &err, &code);
  if (c) net_conn_wait_connected(c, 5000);
  return c;
}

static bool signal_reaches_host(void) {
  uint16_t port;
  int l = listen_loopback(&port);
  CHECK(l >= 0, "no loopback listener");
  net_conn *c = start_threads(port);
  CHECK(c, "open failed");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  CHECK(sfd >= 0, "signalfd");
  kill(getpid(), SIGUSR1);   /* to the process: any thread that does not block it takes it */
  struct pollfd p = {sfd, POLLIN, 0};
  CHECK(poll(&p, 1, 5000) == 1, "the signal never reached the host's signalfd");
  struct signalfd_siginfo si;
  CHECK(read(sfd, &si, sizeof si) == (ssize_t)sizeof si && si.ssi_signo == SIGUSR1, "not SIGUSR1");
  net_conn_close(c);
  close(sfd);
  close(l);
  return true;
}

int main(void) {
  if (net_init() != 0) return 1;
  report("a signal the host blocks after the engine started reaches the host", signal_reaches_host());
  net_quit();
  return tap_done();
}
