/*
 * config.h — every option of cairn.conf, and its parser.
 *
 * Syntax is Mosquitto's: "option value" per line, '#' comments, blank lines. "listener PORT
 * [ADDRESS]" starts a listener block; the per-listener options that follow (TLS, auth when
 * per_listener_settings is true) belong to that listener. The old style "port N" /
 * "bind_address A" configure the default listener. With no listener at all, the broker listens
 * on 127.0.0.1:1883.
 *
 * An unknown option or a bad value is an error "FILE:LINE: reason" and the broker does not
 * start. Mosquitto options whose meaning Cairn fulfils otherwise (autosave_interval, ...) are
 * accepted with a warning logged. Every other option of Mosquitto 2.0 either works with its
 * meaning or, where it belongs to a feature Cairn lacks (plugins, OpenSSL engines), is
 * refused with a sentence naming that feature (config_mosquitto.c). "connection NAME" starts a
 * bridge block (config_bridge.c).
 *
 * "include_dir DIR" reads every *.conf file in DIR, in Mosquitto's order (config_include.c); an
 * error in one of them names that file and its line. Each file starts outside any listener block.
 *
 * Ownership: struct config owns every string it holds (malloc'd; config_cleanup frees them).
 * Strings are NULL when the option was not given. config_load() and config_parse() fill *out
 * only on success; on failure *out is untouched (nothing to clean up).
 */
#ifndef CAIRN_CONFIG_H
#define CAIRN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAIRN_DEFAULT_PORT 1883
#define CAIRN_DEFAULT_BIND "127.0.0.1"

/*
 * Where each TLS and auth option was given: its line in the config file, 0 when it was not
 * (config.path names the file). tls.c and auth.c report "FILE:LINE: reason" from these. Auth
 * options a listener takes from the global settings carry the global line.
 */
struct config_lines {
    unsigned password_file;
    unsigned acl_file;
    unsigned psk_file;
    unsigned allow_anonymous;
    unsigned cafile;
    unsigned capath;
    unsigned certfile;
    unsigned keyfile;
    unsigned crlfile;
    unsigned tls_version;
    unsigned ciphers;
    unsigned psk_hint;
    unsigned require_certificate;
    unsigned use_identity_as_username;
    unsigned use_subject_as_username;
    unsigned dhparamfile;
};

/* TLS and auth settings. Kept as strings for auth.c / tls.c to interpret. */
struct config_security {
    char *password_file;
    char *acl_file;
    char *psk_file;
    int allow_anonymous; /* listeners only: -1 unset (use config.allow_anonymous), 0, 1 */
    char *cafile;
    char *capath;
    char *certfile;
    char *keyfile;
    char *crlfile;
    char *tls_version;
    char *ciphers;
    char *psk_hint;
    bool require_certificate;
    bool use_identity_as_username;
    bool use_subject_as_username;
    struct config_lines line;
    /* Mosquitto's, config_mosquitto.c */
    char *dhparamfile;              /* TLS: Diffie-Hellman parameters (PEM) for DHE suites */
    int allow_zero_length_clientid; /* -1 unset (listeners: the global one), 0, 1 (default) */
    char *auto_id_prefix;           /* NULL: "auto-" */
};

/* What a listener speaks (Mosquitto's "protocol"; http_metrics is Cairn's own). */
enum config_protocol { CONFIG_PROTO_MQTT, CONFIG_PROTO_WEBSOCKETS, CONFIG_PROTO_HTTP_METRICS };

struct config_listener {
    uint16_t port;                 /* 0: an ephemeral port (logged at start-up) */
    enum config_protocol protocol; /* mqtt */
    char *http_dir;                /* websockets: static files served to plain GETs; NULL: none */
    char *bind_address;            /* NULL: every address (IPv4 and IPv6) */
    int max_connections;           /* -1: unlimited */
    struct config_security sec;
    /* Its "listener" line (for the default listener: the first option that made it); 0 for
     * the listener added when the file names none. */
    unsigned line;
    /* Mosquitto's per-listener options (config_mosquitto.c) */
    char *mount_point;             /* NULL: none; else prefixed to every topic its clients use */
    uint8_t max_qos;               /* 2; a PUBLISH above it closes the connection */
    bool use_username_as_clientid; /* false; true: the username is the client id */
    int socket_domain;             /* 0: IPv4 and IPv6; AF_INET or AF_INET6 only */
    char *bind_interface;          /* NULL: any; else only that interface's addresses */
};

/*
 * Bridges (config_bridge.c; bridge.h runs them): "connection NAME" starts a block, and the bridge
 * options that follow in the same file belong to it, with Mosquitto 2.0's names and meaning.
 */
enum config_bridge_dir { CONFIG_BRIDGE_OUT = 1, CONFIG_BRIDGE_IN = 2, CONFIG_BRIDGE_BOTH = 3 };
enum config_bridge_start { CONFIG_BRIDGE_AUTOMATIC, CONFIG_BRIDGE_LAZY, CONFIG_BRIDGE_ONCE };

/* "topic PATTERN [out|in|both] [QOS] [LOCAL-PREFIX] [REMOTE-PREFIX]" */
struct config_bridge_topic {
    char *pattern;       /* "" for Mosquitto's "" (the prefixes alone are the topic) */
    unsigned dir;        /* CONFIG_BRIDGE_OUT and/or _IN bits; out when not given */
    uint8_t qos;         /* 0 */
    char *local_prefix;  /* NULL: none */
    char *remote_prefix; /* NULL: none */
    char *local;         /* local_prefix + pattern: the filter on this broker */
    char *remote;        /* remote_prefix + pattern: the filter on the remote */
    unsigned line;
};

struct config_bridge_address {
    char *host; /* a name or an address ("[::1]:1883" gives "::1") */
    uint16_t port;
};

/* Where the bridge's TLS options were given (for "FILE:LINE: reason" from tls_client.c). */
struct config_bridge_lines {
    unsigned cafile, capath, certfile, keyfile, psk, identity, alpn, tls_version, bind_address;
};

struct config_bridge {
    char *name;
    unsigned line; /* its "connection" line */
    struct config_bridge_address *addresses;
    size_t n_addresses;
    bool round_robin; /* false: fall back to the first address whenever it answers */
    struct config_bridge_topic *topics;
    size_t n_topics;
    char *remote_clientid;    /* default HOSTNAME.NAME */
    char *local_clientid;     /* the local session's id; default $bridge/NAME (see README) */
    char *remote_username;    /* NULL: none */
    char *remote_password;    /* NULL: none */
    bool cleansession;        /* false: the remote keeps our subscriptions and in-flight state */
    int local_cleansession;   /* -1: as cleansession; 1: the local queue lives only while up */
    uint16_t keepalive;       /* keepalive_interval, 60 (5 at least) */
    uint32_t idle_timeout;    /* lazy: seconds without a PUBLISH before the link is closed, 60 */
    uint32_t restart_timeout; /* backoff_cap 0: the constant wait before a reconnect */
    uint32_t backoff_base;    /* 5 */
    uint32_t backoff_cap;     /* 30; 0: restart_timeout is constant */
    enum config_bridge_start start_type; /* automatic */
    uint32_t threshold;                  /* lazy: messages queued that start the link, 10 */
    bool notifications;                  /* true */
    bool notifications_local_only;       /* false */
    char *notification_topic;            /* NULL: $SYS/broker/connection/REMOTE_CLIENTID/state */
    bool try_private;                    /* true: protocol level 0x84 */
    uint8_t protocol_version;            /* 4 (mqttv311) or 3 (mqttv31) */
    bool attempt_unsubscribe;            /* true */
    bool outgoing_retain;                /* true */
    uint32_t max_packet_size;            /* 0: no limit on what is sent to the remote */
    char *bind_address;                  /* NULL: any */
    /* TLS to the remote: on with cafile, capath or psk */
    char *cafile;
    char *capath;
    char *certfile;
    char *keyfile;
    bool insecure; /* do not check the remote's name against its certificate */
    char *psk;     /* hex */
    char *identity;
    char *alpn;
    char *tls_version;
    struct config_bridge_lines lines;
    /* Cairn's own: bounds of the local queue; -1: the global max_queued_messages/_bytes */
    int64_t max_queued_messages;
    int64_t max_queued_bytes;
};

/* One file's run of positions (config_internal.h): lines from first_pos on are file's. */
struct config_span {
    unsigned first_pos;
    unsigned first_line;
    char *file;
};

struct config {
    char *path; /* the file loaded, NULL for defaults */

    struct config_listener *listeners;
    size_t n_listeners;

    /* Global security (password_file, acl_file, psk_file, ...; sec.allow_anonymous unused):
     * used for every listener unless per_listener_settings is true. */
    bool per_listener_settings; /* false */
    /* Unless the file sets it: true when it configures no listener (Cairn then listens on
     * 127.0.0.1 only), false once it does (listener, port, bind_address or TLS options), as
     * Mosquitto 2.0 does. config_finish resolves it. */
    bool allow_anonymous;
    struct config_security sec;
    /* Cairn's own: may a client take over a session another identity owns? false */
    bool allow_session_takeover_across_users;

    /* Outside a listener block, max_connections caps the total; inside, that listener. */
    int max_connections;                   /* -1: unlimited (default) */
    uint32_t max_inflight_messages;        /* 20; 0 = unlimited */
    uint32_t max_queued_messages;          /* 1000; 0 = unlimited */
    uint64_t max_queued_bytes;             /* 0: no limit */
    bool queue_qos0_messages;              /* false */
    uint32_t message_size_limit;           /* 0: the protocol maximum (268435455) */
    uint16_t max_keepalive;                /* 65535 */
    uint64_t persistent_client_expiration; /* seconds; 0 = never */
    bool retain_available;                 /* true */
    uint32_t sys_interval;                 /* seconds; 10; 0 = no $SYS updates */
    bool connection_messages;              /* true */
    uint32_t
        connect_timeout; /* Cairn's own: seconds to wait for CONNECT (and TLS); 10; 0 = never */
    uint64_t connect_memory_limit;    /* Cairn's own: input bytes held by connections without an
                                         accepted CONNECT, all together; 32 MiB; 0 = none */
    uint32_t max_subscriptions;       /* Cairn's own: per client (session); 0 = unlimited */
    uint16_t websockets_headers_size; /* largest HTTP request head; 0: 1024 (Mosquitto's) */
    uint32_t websockets_log_level;    /* accepted; nonzero logs WebSocket closes at debug */

    unsigned log_dest;  /* CAIRN_LOG_DEST_* mask; default stderr */
    char *log_file;     /* with CAIRN_LOG_DEST_FILE */
    unsigned log_type;  /* CAIRN_LOG_MASK bits; default error, warning, notice, information */
    bool log_timestamp; /* true */

    char *pid_file;
    bool persistence;           /* true: Cairn keeps data unless told not to */
    char *persistence_location; /* "./cairn-data" (set by config_load/_add_default_listener) */
    bool persistence_sync;      /* false: write to the kernel; true: fsync each batch */

    /* Mosquitto options config_mosquitto.c reads */
    char *clientid_prefixes;     /* NULL: any client id; else ids must start with it */
    uint64_t max_inflight_bytes; /* 0: no limit; QoS 1/2 payload bytes in flight per client */
    uint32_t max_packet_size;    /* 0: no limit; a larger packet from a client closes it */
    uint64_t memory_limit;       /* 0: no limit; msg.h / README say what is counted */
    bool upgrade_outgoing_qos;   /* false; true: deliver at the subscription's QoS */
    bool check_retain_source;    /* true: retained messages re-checked against the ACL of
                                    their publisher when sent to a new subscriber */
    char *user;                  /* NULL: "mosquitto" when Cairn starts as root and it exists */
    unsigned user_line;          /* its position, for errors */
    int log_facility;            /* syslog facility (LOG_DAEMON; log_facility N: LOG_LOCALN) */
    char *log_timestamp_format;  /* NULL: ISO 8601 UTC; else strftime() in local time */

    /* Bridges, in the order of their "connection" lines (config_bridge.c). */
    struct config_bridge *bridges;
    size_t n_bridges;

    /* Where the lines came from (include_dir): config_where() reads these. */
    struct config_span *spans;
    size_t n_spans;
};

/* Defaults without a listener: config_add_default_listener() adds 127.0.0.1:1883 (config_load
 * and config_parse do it themselves when the file names none). */
void config_defaults(struct config *c);
/* Frees what c owns and leaves it as config_defaults() left it. */
void config_cleanup(struct config *c);

/*
 * Parse path into *out (defaults first, then the file). 0, or a negative code with
 * "FILE:LINE: reason" (or "FILE: reason" for an unreadable file) in err.
 */
int config_load(const char *path, struct config *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The same from a string (tests, fuzzing); name stands for FILE in errors. */
int config_parse(const char *name, const char *text, struct config *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* When there is no listener, add the default one (127.0.0.1:1883); also fills the default
 * persistence_location. 0 or -ENOMEM. */
int config_add_default_listener(struct config *c) __attribute__((warn_unused_result));

/* Security settings of listener i, resolved after loading: TLS options its own; auth options
 * (password_file, acl_file, psk_file, allow_anonymous 0/1) its own with per_listener_settings,
 * else copies of the global ones. Borrowed from c. */
const struct config_security *config_security_for(const struct config *c, size_t i);

/* allow_anonymous as it applies to listener i. */
bool config_allow_anonymous(const struct config *c, size_t i);

/*
 * "FILE:LINE" of position pos (a struct config_lines value, a listener's line, user_line) into
 * buf, in whatever file it was read from (include_dir). "FILE" alone when pos is 0 or unknown,
 * "config" when the config was not read from a file. Returns buf.
 */
const char *config_where(const struct config *c, unsigned pos, char *buf, size_t len);

/* Are two bridge blocks the same (every option; lines aside)? A reload restarts the bridges
 * whose block changed and leaves the others connected. */
bool config_bridge_equal(const struct config_bridge *a, const struct config_bridge *b);
/* The notification topic of b (its own, or the default). Borrowed from b, or from buf. */
const char *config_bridge_notification_topic(const struct config_bridge *b, char *buf, size_t len);

/* "1h", "2d", "1w", "1m", "1y" or bare seconds -> seconds. 0 or -EINVAL. */
int config_parse_duration(const char *s, uint64_t *out);

#endif
