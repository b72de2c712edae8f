/* test_fork.c: a process that forks after the engine started. The child has
 * no I/O thread: what it opens fails at once instead of waiting for ever,
 * and its exit does not wait for closes only its parent can finish. The
 * parent goes on as before. TAP (the children answer by exit status). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net.h"
#include "os.h"
#include "loopback.h"
#include "tap.h"

#define CHILD_MAX_MS 5000   /* a child that takes longer hangs (the exit wait was 60 s) */

static int listener;
static uint16_t port;
static bool in_child;

/* LeakSanitizer (asan builds) asks this at exit: a child's memory is its
 * parent's objects, held by threads the child does not have. The parent's
 * own exit is checked. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) { return in_child; }

/* Resets every connection the listener holds: the parent's closes end. */
static void reset_peers(void) {
  fcntl(listener, F_SETFL, O_NONBLOCK);
  for (int peer; (peer = accept(listener, NULL, NULL)) >= 0;) {
    struct linger l = {1, 0};
    setsockopt(peer, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(peer);
  }
}

static net_conn *open_local(const char **err) {
  net_err code;
  return net_tcp_open_host(NULL, "127.0.0.1", 9, port, NULL, err, &code);
}

/* Child: 0 when an open fails at once and a bounded wait returns. */
static int child_open(void) {
  const char *err;
  uint64_t t0 = net__now_ms();
  net_conn *c = open_local(&err);
  if (c) return net_conn_wait_connected(c, 2000).status == NET_SUCCESS ? 2 : 1;
  if (!strstr(err, "forked child")) return 4;   /* the message says why */
  net_wait_activity(50);
  return net__now_ms() - t0 < 1000 ? 0 : 3;
}

/* Forks; the child runs fn and leaves through exit() (its atexit handlers
 * run). Returns its exit status, -1 when it had to be killed. */
static int run_child(int (*fn)(void), uint64_t *took_ms) {
  fflush(stdout);
  uint64_t t0 = net__now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    in_child = true;
    exit(fn());
  }
  if (pid < 0) return -2;
  int st;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (net__now_ms() - t0 > CHILD_MAX_MS) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    net__sleep_ms(10);
  }
  *took_ms = net__now_ms() - t0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -3;
}

static bool child_refuses_work(void) {
  uint64_t took;
  int r = run_child(child_open, &took);
  CHECK(r != 1, "the child's connection was left waiting");
  CHECK(r != 2, "the child's connection connected (to what I/O thread?)");
  CHECK(r != 4, "the child's open failed without saying it is a forked child");
  CHECK(r == 0, "the child ended with %d (-1: killed after %d ms)", r, CHILD_MAX_MS);
  return true;
}

static int child_exit(void) { return 0; }

/* The parent has a close still sending to a peer that never reads. */
static bool child_exit_is_prompt(void) {
  const char *err;
  net_conn *c = open_local(&err);
  CHECK(c, "open: %s", err);
  CHECK(net_conn_wait_connected(c, 5000).status == NET_SUCCESS, "no connection");
  static char buf[1 << 16];
  memset(buf, 'x', sizeof buf);
  for (int idle = 0; idle < 20;) {   /* fill the send buffer and the kernel's */
    if (net_conn_write(c, buf, sizeof buf) > 0) idle = 0;
    else idle++, net__sleep_ms(5);
  }
  net_conn_close(c);
  uint64_t took;
  int r = run_child(child_exit, &took);
  reset_peers();
  CHECK(r == 0, "the child's exit %s", r == -1 ? "hung waiting for the parent's close" : "failed");
  CHECK(took < 2000, "the child took %llu ms to exit", (unsigned long long)took);
  return true;
}

/* Parent objects the children below touch (a child's memory is a copy). */
static net_server *srv_tcp, *srv_unix;
static net_conn *shared_conn;
static char unix_path[108];

/* Child: an inherited server's accept fails and says why; closing the
 * servers (as its exit's collector would) must leave its parent's sockets
 * listening and the socket file in place. */
static int child_close_servers(void) {
  net_result why;
  if (net_server_accept(srv_tcp, &why) || why.status != NET_FAILURE || !strstr(why.msg, "forked child")) return 5;
  net_server_close(srv_tcp);
  net_server_close(srv_unix);
  return 0;
}

/* Child: a write on an inherited connection is refused, and the connection
 * says why, rather than take bytes that nothing would ever send. */
static int child_write(void) {
  if (net_conn_write(shared_conn, "lost?", 5) != -1) return 1;
  net_result w = net_conn_write_status(shared_conn);
  if (w.status != NET_FAILURE || !strstr(w.msg, "forked child")) return 2;
  net_result st = net_conn_status(shared_conn);
  if (st.status != NET_FAILURE || !strstr(st.msg, "forked child")) return 3;
  return 0;
}

/* Connects to the server at port (0: unix_path) and waits until it accepts. */
static bool server_accepts(net_server *s, uint16_t p) {
  const char *err;
  net_err code;
  net_conn *c = p ? net_tcp_open_host(NULL, "127.0.0.1", 9, p, NULL, &err, &code)
                  : net_unix_open(unix_path, NULL, &err, &code);
  if (!c) return false;
  net_conn *got = NULL;
  for (int i = 0; i < 500 && !got; i++) {
    net_result why;
    if (!(got = net_server_accept(s, &why)) && why.status == NET_FAILURE) break;
    net__sleep_ms(10);
  }
  bool ok = got && net_conn_wait_connected(c, 5000).status == NET_SUCCESS;
  if (got) net_conn_close(got);
  net_conn_close(c);
  return ok;
}

static bool child_close_spares_parent(void) {
  const char *err;
  net_err code;
  net_addr *lo = net_resolve("127.0.0.1", 9, &err, &code);
  CHECK(lo, "resolve: %s", err);
  snprintf(unix_path, sizeof unix_path, "/tmp/sluice-fork-%d.sock", (int)getpid());
  net_server_opts uo = {.unix_path = unix_path};
  srv_tcp = net_server_open(lo, 0, NULL, &err, &code);
  srv_unix = srv_tcp ? net_server_open(NULL, 0, &uo, &err, &code) : NULL;
  net_addr_unref(lo);
  CHECK(srv_tcp && srv_unix, "server: %s", err);
  net_endpoint ep;
  net_server_local(srv_tcp, &ep);
  uint64_t took;
  int r = run_child(child_close_servers, &took);
  struct stat st;
  bool file = stat(unix_path, &st) == 0;
  bool tcp_ok = server_accepts(srv_tcp, ep.port), unix_ok = file && server_accepts(srv_unix, 0);
  net_server_close(srv_tcp);
  net_server_close(srv_unix);
  CHECK(r != 5, "the child's accept on an inherited server did not say it is a forked child");
  CHECK(r == 0, "the child ended with %d", r);
  CHECK(file, "the child's close removed the parent's socket file");
  CHECK(tcp_ok, "the parent's TCP server stopped accepting after the child closed its copy");
  CHECK(unix_ok, "the parent's Unix server stopped accepting after the child closed its copy");
  return true;
}

static bool child_write_refused(void) {
  const char *err;
  shared_conn = open_local(&err);
  CHECK(shared_conn, "open: %s", err);
  CHECK(net_conn_wait_connected(shared_conn, 5000).status == NET_SUCCESS, "no connection");
  uint64_t took;
  int r = run_child(child_write, &took);
  bool parent_ok = net_conn_write(shared_conn, "x", 1) == 1;
  net_conn_close(shared_conn);
  reset_peers();
  CHECK(r != 1, "the child's write was accepted (and would never be sent)");
  CHECK(r != 2, "the child's write status does not say it is a forked child");
  CHECK(r != 3, "the child's connection status does not say it is a forked child");
  CHECK(r == 0, "the child ended with %d", r);
  CHECK(parent_ok, "the parent's write was refused after the fork");
  return true;
}

static bool parent_goes_on(void) {
  const char *err;
  net_conn *c = open_local(&err);
  CHECK(c, "open: %s", err);
  net_result r = net_conn_wait_connected(c, 5000);
  net_conn_close(c);
  CHECK(r.status == NET_SUCCESS, "the parent's connection: %s", r.status == NET_FAILURE ? r.msg : "waiting");
  return true;
}

int main(void) {
  const char *err;
  listener = listen_loopback(&port);
  if (listener < 0 || net_init() != 0) {
    printf("not ok 1 - set-up failed\n1..1\n");
    return 1;
  }
  net_conn *c = open_local(&err);   /* the engine starts */
  bool up = c && net_conn_wait_connected(c, 5000).status == NET_SUCCESS;
  if (c) net_conn_close(c);
  if (!up) {
    printf("not ok 1 - the engine did not start\n1..1\n");
    return 1;
  }
  report("a forked child's open fails at once", child_refuses_work());
  report("a forked child's exit does not wait for its parent's closes", child_exit_is_prompt());
  report("a forked child's close of inherited servers spares its parent's", child_close_spares_parent());
  report("a forked child's write on an inherited connection is refused", child_write_refused());
  report("the parent goes on after the fork", parent_goes_on());
  reset_peers();
  return tap_done();
}
