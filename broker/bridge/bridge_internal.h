/*
 * bridge_internal.h — what the bridge's files share: bridge.c (the set, reload, figures),
 * bridge_link.c (one bridge's life: its session, dialling, retries, timers, notifications) and
 * bridge_proto.c (the MQTT it speaks: CONNECT, CONNACK, SUBSCRIBE, what the remote publishes,
 * topic mapping). Nothing outside broker/bridge*.c includes it.
 */
#ifndef CAIRN_BRIDGE_INTERNAL_H
#define CAIRN_BRIDGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge.h"
#include "session.h"

struct config_bridge;
struct dial;
struct session;
struct timer;
struct tls_ctx;

enum bridge_state {
    BRIDGE_WAITING,    /* for the next attempt (backoff), or a lazy bridge for its threshold */
    BRIDGE_DIALING,    /* name lookup and TCP connect (dial.h) */
    BRIDGE_CONNECTING, /* a link: TLS handshake, CONNECT sent, no CONNACK yet */
    BRIDGE_UP,         /* CONNACK accepted */
    BRIDGE_STOPPED,    /* start_type once after its link, or shut down */
};

struct bridge {
    struct bridge_set *set;
    const struct config_bridge *cfg; /* borrowed from set->cfg */
    struct tls_ctx *tls;             /* one reference; NULL: plain TCP */
    struct session *s;               /* the local session (queue); NULL: none (local clean) */
    struct client *cl;               /* the link's client while there is a link */
    struct conn *conn;               /* its conn */
    struct dial *dial;               /* while dialling */
    struct dial *probe;              /* round_robin false: is the first address back? */
    enum bridge_state state;
    size_t cur;          /* the address tried or in use */
    uint32_t backoff;    /* seconds the next wait lasts */
    bool try_private;    /* send 0x84: cleared by a CONNACK 1 to it, as Mosquitto */
    bool lazy_due;       /* lazy: the threshold was reached */
    bool retry_now;      /* the link's close asks for the next attempt at once, same address */
    bool reason_set;     /* last_error already says why the link is closing */
    struct timer *retry; /* the next attempt */
    struct timer *ping;  /* PINGREQ every keepalive while up */
    struct timer *idle;  /* lazy: idle_timeout */
    struct timer *primary;
    uint64_t activity_ms;         /* the last PUBLISH either way (idle_timeout) */
    uint16_t next_pid;            /* SUBSCRIBE / UNSUBSCRIBE ids */
    struct session_limits limits; /* the session's queue bounds, with bridge_max_queued_* */
    char *map;                    /* bridge_map_out's topic */
    size_t map_cap;
    uint64_t connects, sent, received, too_large;
    char last_error[256];
    char remote[280];
};

struct bridge_set {
    const struct config *cfg;
    struct loop *loop;
    struct conn_pool *pool;
    struct broker *b;
    struct bridge **v; /* cfg->bridges' order */
    size_t n;
    bool stopping;
};

/* ---- bridge_link.c ------------------------------------------------------------------------- */
/* A bridge of set for cfg, taking tls (a reference, or NULL). Not started. NULL on ENOMEM. */
struct bridge *bridge__new(struct bridge_set *set, const struct config_bridge *cfg,
                           struct tls_ctx *tls);
/* Its session set up, its "0" published, its first attempt due. 0 or -ENOMEM. */
int bridge__start(struct bridge *br);
/*
 * Stop: timers, dial, link closed (reason 0). forget: its session is a bridge's no more (an
 * ordinary persistent session from now on). Then bridge__free may follow.
 */
void bridge__stop(struct bridge *br, bool forget);
void bridge__free(struct bridge *br);
/* Record why the link failed (last_error) and log it. */
void bridge__error(struct bridge *br, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The remote's CONNACK accepted the link: session online, timers, notifications. */
void bridge__up(struct bridge *br);
/* Publish the notification state here (retained): "1" up, "0" down. */
void bridge__notify_local(struct bridge *br, bool up);
/* The session's queue bounds from the bridge's options (or the global ones), again after a
 * reload. */
void bridge__limits(struct bridge *br);
/* A lazy bridge's threshold is reached: connect if it waits. */
void bridge__lazy_kick(struct bridge *br);

/* ---- bridge_proto.c ------------------------------------------------------------------------ */
/* The CONNECT, written on the link at once. 0 or negative. */
int bridge__send_connect(struct bridge *br);
/* After the CONNACK: "1" to the remote, SUBSCRIBE / UNSUBSCRIBE, and on the first link or when
 * the remote had no session for us the local retained messages of the out topics queued. 0 or
 * negative (the link closes). */
int bridge__on_up(struct bridge *br, bool session_present);

#endif
