/* ws.h: a WebSocket, shared by
 *   ws.c      the owner API (net_ws_*): rings and atomics only;
 *   ws_io.c   the I/O thread: the connection, the opening handshakes (client
 *             and server), timers, the closing handshake, the object's end;
 *   ws_rx.c   the I/O thread: frames in, whole messages out to the owner;
 *   ws_tx.c   the I/O thread: the owner's messages out as frames (masked,
 *             compressed, fragmented), and control frames;
 *   ws_opts.c any thread: the copy of the caller's options.
 * Calls go down that list only. */
#ifndef SLUICE_WS_H
#define SLUICE_WS_H

#include "conn.h"
#include "http_parse.h"
#include "inflate.h"
#include "ring.h"
#include "url.h"
#include "ws_ext.h"
#include "ws_frame.h"
#include "ws_hs.h"
#include "ws_utf8.h"

#define WS_REC_HDR 8                 /* a queue record: u32 length, u8 type, 3 spare */
#define WS_REC_PING 3                /* tx record types past NET_WS_TEXT/BINARY */
#define WS_FRAG (64 * 1024)          /* payload of one outgoing frame at most */
#define WS_COMPRESS_MIN 256          /* smaller messages go uncompressed */
#define WS_MSG_KEEP (16 * 1024)      /* the message buffer kept between messages */
#define WS_DEFAULT_CLOSE_MS 5000
#define WS_DEFAULT_HANDSHAKE_MS 10000  /* a server's: an idle connection is not kept long */
#define WS_HS_MAX 16384              /* our handshake texts */

enum { WREQ_SEND = 1, WREQ_CLOSE = 2, WREQ_RESUME = 4, WREQ_FREE = 8, WREQ_TAKEN = 16 };

typedef enum ws_phase {
  WP_START,      /* client: no connection yet */
  WP_HANDSHAKE,  /* the upgrade request and its answer */
  WP_OPEN,
  WP_CLOSING,    /* our close frame is queued or sent; waiting for the peer's */
  WP_DONE        /* ended: `ended` says how */
} ws_phase;

/* What the caller asked for (immutable once started). */
typedef struct ws_conf {
  net_ws_role role;
  char **headers;                /* client: name, value, ..., NULL */
  char **protocols;              /* client: offered; server: preferred; NULL-terminated */
  size_t nprotocols;
  char **paths;                  /* server: accepted paths, NULL-terminated; NULL: any */
  char **origins;                /* server: accepted Origin values, NULL-terminated; NULL: any */
  net_tls_opts *tls;             /* client: deep copy, or NULL */
  char *proxy;                   /* client: NULL direct */
  int connect_timeout_ms, ping_interval_ms, ping_timeout_ms, close_timeout_ms;
  uint64_t max_message;
  bool compress;
} ws_conf;

/* Published once the opening handshake is done (immutable, freed with the websocket). */
typedef struct ws_info {
  net_ws_info i;
  net_endpoint peer;
  /* strings and arrays follow in the same allocation */
} ws_info;

/* The server a handshake is for: it takes the websocket when it is open. */
typedef struct ws_acceptor {
  net_io *server;                /* a reference while the handshake runs */
  bool (*room)(net_io *server, net_ws *w);    /* a place in its queue, held for w; false: full */
  bool (*ready)(net_io *server, net_ws *w);   /* false: the server is gone */
  void (*gone)(net_io *server, net_ws *w);    /* a handshake ended without a websocket */
} ws_acceptor;

typedef struct ws_frame_out {
  uint8_t *buf;                  /* header + payload of the frame being written */
  size_t len, pos, cap;
} ws_frame_out;

struct net_ws {
  net_ring rx;                          /* message records: I/O thread -> owner */
  net_ring tx;                          /* message records: owner -> I/O thread */
  _Alignas(NET_CACHELINE) net_io obj;
  atomic_int state;                     /* net_status */
  atomic_int ended;                     /* closed or failed: after the last rx record */
  atomic_int requests;                  /* WREQ_* from the owner */
  atomic_int rx_paused;                 /* a message waits for room in rx */
  atomic_int tx_idle;                   /* the I/O thread found tx empty */
  _Atomic(ws_info *) info;
  net_error err;                        /* before ended / FAILURE is published */
  int close_code;                       /* net_ws_get_close: before ended */
  char close_reason[NET_WS_REASON_MAX];
  size_t close_reason_len;
  /* owner only */
  bool close_asked;
  uint32_t next_len;                    /* the record net_ws_next announced */
  uint8_t next_type;
  bool announced;
  /* written by the owner before WREQ_CLOSE, then read-only */
  int want_code;
  char want_reason[NET_WS_REASON_MAX + 1];
  size_t want_len;
  /* fixed at creation */
  ws_conf conf;
  net_url url;                          /* client */
  char where[NET_URL_HOST_MAX + 16];    /* "host:port" for messages */
  ws_acceptor acc;                      /* server: until handed over */
  /* I/O thread, server.c's: its upgrades in progress, oldest first */
  net_ws *hs_older, *hs_newer;
  bool hs_held;                         /* a place in the server's queue is held for it */
  /* I/O thread only */
  ws_phase phase;
  net_conn *c;
  bool started;
  bool ownerless;                       /* the owner let go: what it would read is dropped */
  char key[NET_WS_KEY_LEN + 1];         /* client: the key sent */
  char *hs;                             /* the handshake text being written */
  size_t hs_len, hs_pos;
  bool hs_reject;                       /* server: hs is a refusal; close once sent */
  const char *agreed_proto;             /* server: one of conf.protocols, or "" */
  char agreed_ext[NET_WS_EXT_LINE];
  bool ping_due;                        /* a keep-alive ping goes out next */
  http_head head;
  net_ws_deflate deflate;               /* agreed terms */
  bool compressed;                      /* permessage-deflate in use */
  /* receiving */
  net_ws_parser p;
  uint8_t ctl[NET_WS_CONTROL_MAX];
  size_t ctl_len;
  uint8_t *msg;                         /* the message being gathered */
  size_t msg_len, msg_cap;
  uint8_t msg_type;
  bool msg_ready;                       /* whole: waiting for room in rx */
  bool held_back;                       /* a message waited for room since the closing clock's last look */
  bool msg_inflate;                     /* this message is compressed */
  net_utf8 utf8;
  net_inflate inf;
  bool inf_ready;
  /* sending */
  struct z_stream_s *def;               /* created with the first compressed message */
  ws_frame_out out;                     /* the frame being written */
  uint64_t tx_left;                     /* payload bytes of the current record still to frame */
  uint8_t tx_type;                      /* its type; 0 between records */
  bool tx_first, tx_deflate, tx_flushed;
  size_t zpend;                         /* compressed bytes in the payload area */
  uint8_t zcarry[4];                    /* held back: maybe the end of a flush */
  size_t zcarry_n;
  uint8_t pong[NET_WS_CONTROL_MAX];     /* the latest unanswered ping's payload */
  size_t pong_len;
  bool pong_due;
  bool close_later;                     /* the owner closed while opening: close once open */
  bool close_due, close_queued, close_sent, close_got;
  int fail_code;                        /* the code we failed the websocket with (1002...) */
  int peer_code;                        /* the peer's close frame */
  char peer_reason[NET_WS_REASON_MAX + 1];
  size_t peer_reason_len;
  int send_code;                        /* the code of the close frame we send */
  char send_reason[NET_WS_REASON_MAX + 1];
  size_t send_reason_len;
  uint64_t last_rx, ping_at;            /* ms: the last frame in; our keep-alive ping (0: none) */
  uint64_t deadline;                    /* handshake or closing bound; 0: none */
  uint64_t sent_seen;                   /* how far the peer had taken our bytes, at the last look */
  uint64_t ctl_out;                     /* bytes of our pings and pongs framed since then */
  size_t read_seen;                     /* how far the owner had read rx, at the last look */
};

/* ws_opts.c */
bool net__ws_conf_client(ws_conf *c, const net_ws_opts *o, const char **err);
bool net__ws_conf_server(ws_conf *c, const net_ws_server_opts *o, const char **err);
void net__ws_conf_free(ws_conf *c);

/* ws.c (owner): the server's accept took w; its connection reads again. */
void net__ws_taken(net_ws *w);

/* ws_io.c */
extern const net_io_ops net__ws_ops;
net_ws *net__ws_new(net_ws_role role);   /* refs: the owner's and the I/O thread's */
void net__ws_queues(net_ws *w);           /* after conf is set */
/* I/O thread: a server-side websocket around an accepted connection (which
 * it takes over); it joins the server's queue through acc once open. */
net_ws *net__ws_upgrade(net_conn *c, const ws_conf *conf, const ws_acceptor *acc);
void net__ws_fail(net_ws *w, net_err code, const char *fmt, ...) NET_PRINTF(3, 4);
/* I/O thread: the server drops an upgrade in progress (it ends w). */
void net__ws_shed(net_ws *w, const char *why);

/* ws_rx.c (I/O thread) */
/* Frames in from the connection, as far as they go now; false when w failed or closed. */
bool net__ws_rx_pump(net_ws *w);
void net__ws_rx_free(net_ws *w);
/* Ends w: the close code and text for the owner, then `ended` (release). */
void net__ws_publish_end(net_ws *w, int close_code, const uint8_t *reason, size_t len);

/* ws_tx.c (I/O thread) */
/* Queued messages and control frames out, as far as the connection takes them. */
void net__ws_tx_pump(net_ws *w);
/* A protocol failure: the close frame with code goes out next, nothing after it. */
void net__ws_tx_close(net_ws *w, int code, const char *reason);
void net__ws_tx_free(net_ws *w);
/* The I/O thread's generator for mask keys and handshake keys; NULL when it failed. */
net_ws_rng *net__ws_rng(void);

#endif
