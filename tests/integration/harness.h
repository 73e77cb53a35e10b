/*
 * harness.h — the integration-test harness: a real broker process on a free loopback port with a
 * fresh temp data directory, clients to drive it (Paho C, raw sockets speaking exact bytes, the
 * mosquitto_pub/mosquitto_sub programs), and a tiny assertion framework.
 *
 * Each tests/integration/NN_feature.c is one executable: a table of cases run by t_main(), which
 * prints one verdict line per case and a summary, and exits non-zero when any assertion failed.
 * The broker binary is argv[1] (ctest passes $<TARGET_FILE:cairn>), or $CAIRN_BIN. With
 * CAIRN_TEST_BROKER=mosquitto the harness runs /usr/sbin/mosquitto with an equivalent config
 * instead, to check that the tests expect what a reference broker does; Cairn-only cases call
 * t_skip() in that mode and say why.
 *
 * Synchronisation: nothing here sleeps to let time pass. Every wait is for an event (a port that
 * accepts, a packet, a process exit, a line of output) with an overall timeout; the only naps
 * are the short ones inside such retry loops.
 *
 * Assertions: T_ASSERT* record the failure (file, line, text) and `goto out`, so every case has
 * one `out:` label that frees what it made. A failed case prints the log of every broker it
 * started and keeps their temp directories for inspection; a passed case removes them.
 */
#ifndef CAIRN_HARNESS_H
#define CAIRN_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <MQTTClient.h>

/* ---- assertions and the case runner (harness.c) ---- */

void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Print a "# ..." note line (goes with the case's output). */
void t_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Mark the running case skipped, with the reason printed. */
void t_skip(const char *why);
/* Has the running case failed so far? */
bool t_case_failed(void);

#define T_ASSERT(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            t_fail(__FILE__, __LINE__, "%s", #c);                                                  \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
#define T_ASSERTF(c, ...)                                                                          \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            t_fail(__FILE__, __LINE__, __VA_ARGS__);                                               \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
#define T_EQ(a, b)                                                                                 \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ != t_b_) {                                                                        \
            t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, t_a_, t_b_);              \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

struct t_case {
    const char *name;
    void (*fn)(void);
};

/* Run every case (or those named in argv[2..]); 0 when all passed or skipped, 1 otherwise. */
int t_main(int argc, char **argv, const struct t_case *cases, size_t n);
#define T_MAIN(cases) t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]))

uint64_t t_now_ms(void);
/* A short nap inside a wait-for-event loop (never synchronisation by itself). */
void t_nap_ms(int ms);
/* Deterministic PRNG (xorshift64*); t_seed() prints the seed it uses ($CAIRN_TEST_SEED or time). */
uint64_t t_seed(void);
uint64_t t_rand(uint64_t *state);

/* ---- the broker process (harness_broker.c) ---- */

bool harness_is_mosquitto(void);
/* A loopback TCP port free a moment ago (bind port 0, read it back, close), or -1. */
int harness_free_port(void);
/* The Cairn binary (argv[1] / $CAIRN_BIN), whatever the mode. */
const char *harness_cairn_bin(void);
/* Skip the running case in mosquitto mode, printing why; true when skipped. */
bool harness_cairn_only(const char *why);
/*
 * Write DIR/cairn.conf ("persistence false", "listener 0 127.0.0.1", then conf_text, which thus
 * starts on line 3) and run `cairn -c` on it: 0 when it exits non-zero with needle in its output,
 * else -1 with the failure recorded (harness_refuse.c). Cairn only.
 */
int harness_expect_refused(const char *dir, const char *conf_text, const char *needle);

/* Which broker a broker_start runs. */
enum broker_kind {
    BROKER_DEFAULT,   /* Cairn, or Mosquitto with CAIRN_TEST_BROKER=mosquitto */
    BROKER_CAIRN,     /* Cairn whatever the mode (a second broker of a bridge test) */
    BROKER_MOSQUITTO, /* /usr/sbin/mosquitto whatever the mode */
};

struct broker_opts {
    const char *config;       /* extra config lines (both brokers), may be NULL */
    const char *cairn_config; /* extra lines only for Cairn */
    const char *mosq_config;  /* extra lines only for Mosquitto */
    bool no_persistence;      /* persistence false (default: true, in the temp dir) */
    bool no_anonymous;        /* do not add "allow_anonymous true" */
    bool powercut;            /* Cairn under tests/powercut: kill -9 is a power cut */
    enum broker_kind kind;    /* which broker (config and cairn_config / mosq_config follow it) */
    int port;                 /* listen here (a bridge's remote named before it starts); 0: free */
};

struct broker;

/* Start a broker and wait until its port accepts. NULL (failure recorded) when it cannot. */
struct broker *broker_start(const struct broker_opts *opts);
int broker_port(const struct broker *b);
const char *broker_uri(const struct broker *b);      /* "tcp://127.0.0.1:PORT" */
const char *broker_data_dir(const struct broker *b); /* persistence_location */
const char *broker_tmp_dir(const struct broker *b);  /* holds the config, log and data dir */
const char *broker_conf_path(const struct broker *b);
pid_t broker_pid(const struct broker *b);
/* SIGTERM, wait for the exit (timeout_ms), 0 when it exited with status 0. */
int broker_stop_term(struct broker *b, int timeout_ms);
/* SIGKILL and reap. 0 or -errno. */
int broker_kill9(struct broker *b);
/*
 * Set (value NULL: remove) an environment variable of the broker process for its next starts,
 * e.g. CAIRN_POWERCUT_KILL for the power-cut layer (tests/powercut/powercut.c). 0 or -1.
 */
int broker_setenv(struct broker *b, const char *name, const char *value);
/* Is it a Mosquitto (BROKER_MOSQUITTO, or the default kind in mosquitto mode)? */
bool broker_is_mosquitto(const struct broker *b);
/* Start again with the same directory and port; waits until the port accepts. 0 or -1. */
int broker_restart(struct broker *b);
/* Is the process still running (not exited)? */
bool broker_alive(struct broker *b);
/* Wait for the process to exit by itself; its wait status in *status. 0, or -1 on timeout. */
int broker_wait_exit(struct broker *b, int timeout_ms, int *status);
/* Send a signal to the running broker. */
int broker_signal(struct broker *b, int sig);
/* The log so far (malloc'd, caller frees). */
char *broker_log(const struct broker *b);
/* Wait until the log contains needle. 0 or -1 on timeout. */
int broker_wait_log(const struct broker *b, const char *needle, int timeout_ms);
/* Kill if running; print the log and keep the dir if the case failed, else remove the dir. */
void broker_free(struct broker *b);

/* ---- Paho MQTTClient helpers (harness_paho.c) ---- */

struct pc_opts {
    const char *id;
    bool persistent;  /* clean session 0 */
    int keepalive;    /* seconds, 0 = 60 */
    int version;      /* MQTTVERSION_3_1 or MQTTVERSION_3_1_1 (0 = 3.1.1) */
    const char *user; /* NULL = none */
    const char *pass;
    const char *will_topic; /* NULL = no will */
    const char *will_payload;
    int will_qos;
    bool will_retain;
};

/*
 * Connect a client; NULL on failure. *rc (if given) gets the connect result (0 or the CONNACK
 * code), *session_present the CONNACK flag. The client is destroyed by pc_close().
 */
MQTTClient pc_connect(const struct broker *b, const struct pc_opts *o, int *rc,
                      int *session_present);
/* The same to any URI Paho takes (tcp://, ssl://, ws://, wss://), with SSL options or NULL. */
MQTTClient pc_connect_uri(const char *uri, const struct pc_opts *o, MQTTClient_SSLOptions *ssl,
                          int *rc, int *session_present);
/* DISCONNECT (when connected) and destroy; *c = NULL. NULL does nothing. */
void pc_close(MQTTClient *c);
/* Subscribe and wait for SUBACK; the granted QoS, 0x80 when refused, or -1 on error. */
int pc_subscribe(MQTTClient c, const char *filter, int qos);
int pc_unsubscribe(MQTTClient c, const char *filter);
/* Publish and wait for the flow to complete (PUBACK / PUBCOMP). 0 or a negative Paho code. */
int pc_publish(MQTTClient c, const char *topic, const void *payload, int len, int qos, bool retain);
int pc_publish_str(MQTTClient c, const char *topic, const char *payload, int qos, bool retain);

struct pc_msg {
    char *topic;   /* NUL-terminated, owned */
    char *payload; /* NUL-terminated copy, owned */
    int len;
    int qos;
    int retained;
    int dup;
};
/* Wait up to timeout_ms for one message: 1 got it, 0 timed out, -1 connection error. */
int pc_recv(MQTTClient c, struct pc_msg *m, int timeout_ms);
void pc_msg_free(struct pc_msg *m);
/* Receive until n messages or timeout_ms in all; returns how many were stored in out[]. */
int pc_collect(MQTTClient c, struct pc_msg *out, int n, int timeout_ms);
void pc_msgs_free(struct pc_msg *m, int n);
/* Expect nothing within timeout_ms: 0 if nothing arrived, 1 if a message did (freed). */
int pc_expect_none(MQTTClient c, int timeout_ms);

/* ---- Paho MQTTAsync publisher for bulk sends (harness_async.c) ---- */

struct ap;
/* Connect (clean session unless persistent) and wait for CONNACK. NULL on failure. */
struct ap *ap_connect(const struct broker *b, const char *id, bool persistent);
/* Queue one message (payload copied by Paho); returns at once. 0 or -1. */
int ap_publish(struct ap *a, const char *topic, const void *payload, int len, int qos);
/* Wait until n flows completed (acked or failed) or timeout_ms: the number acked. */
long ap_wait(struct ap *a, long n, int timeout_ms);
long ap_failed(struct ap *a);
/* Disconnect, destroy, free. NULL does nothing. */
void ap_close(struct ap *a);

/* ---- raw sockets speaking exact bytes (harness_raw.c) ---- */

enum {
    RAW_CONNECT = 1,
    RAW_CONNACK,
    RAW_PUBLISH,
    RAW_PUBACK,
    RAW_PUBREC,
    RAW_PUBREL,
    RAW_PUBCOMP,
    RAW_SUBSCRIBE,
    RAW_SUBACK,
    RAW_UNSUBSCRIBE,
    RAW_UNSUBACK,
    RAW_PINGREQ,
    RAW_PINGRESP,
    RAW_DISCONNECT
};

struct raw_pkt {
    uint8_t first; /* type << 4 | flags */
    uint8_t *body; /* owned; the variable header + payload */
    size_t len;
    /* For PUBLISH, filled by raw_read_packet: */
    char *topic; /* NUL-terminated, owned by body's companion buffer */
    const uint8_t *payload;
    size_t payload_len;
    int qos, dup, retain;
    int pid; /* packet id of PUBLISH (qos>0), PUBACK.., SUBACK, UNSUBACK; else -1 */
};

/* TCP connect to the broker. The fd, or -errno. */
int raw_connect(const struct broker *b);
int raw_send(int fd, const void *buf, size_t len);
/* 1 a packet, 0 timeout, -1 closed or error. p is reset first; free with raw_pkt_free(). */
int raw_read_packet(int fd, struct raw_pkt *p, int timeout_ms);
void raw_pkt_free(struct raw_pkt *p);
/* 0 when the peer closes within timeout_ms (packets before the close are skipped), else -1. */
int raw_expect_close(int fd, int timeout_ms);

struct raw_conn_opts {
    const char *id;
    bool persistent;
    int keepalive;
    int level; /* protocol level byte; 0 = 4 (3.1.1); 3 sends "MQIsdp" */
    const char *will_topic;
    const char *will_payload;
    int will_qos;
    bool will_retain;
    const char *user;
    const char *pass;
};
/* Build a CONNECT into buf (cap bytes); its length, or 0 if it does not fit. */
size_t raw_build_connect(uint8_t *buf, size_t cap, const struct raw_conn_opts *o);
size_t raw_build_publish(uint8_t *buf, size_t cap, const char *topic, const void *payload,
                         size_t len, int qos, bool retain, bool dup, int pid);
/*
 * Connect and read CONNACK: the fd (>= 0) with *rc the return code and *sp the session-present
 * flag, or -1 (socket error, no CONNACK, closed).
 */
int raw_mqtt_connect(const struct broker *b, const struct raw_conn_opts *o, int *rc, int *sp);
/* The same on a connected socket: 0 with *rc and *sp filled, or -1. */
int raw_mqtt_handshake(int fd, const struct raw_conn_opts *o, int *rc, int *sp);
/* TCP connect to addr ("127.0.0.1", "::1") and port: the fd, or -errno. */
int raw_connect_addr(const char *addr, int port);
/* SUBSCRIBE one filter and wait for SUBACK (other packets before it are an error): granted. */
int raw_subscribe(int fd, int pid, const char *filter, int qos);
/* UNSUBSCRIBE one filter and wait for its UNSUBACK. 0 or -1. */
int raw_unsubscribe(int fd, int pid, const char *filter);
int raw_publish(int fd, const char *topic, const char *payload, int qos, bool retain, bool dup,
                int pid);
/* Send PUBACK / PUBREC / PUBREL / PUBCOMP (type RAW_*) for pid. */
int raw_send_ack(int fd, int type, int pid);
int raw_send_disconnect(int fd);
/*
 * Publish and complete the flow (PUBACK, or PUBREC-PUBREL-PUBCOMP), requiring the broker's
 * packets to be exactly those, with pid. 0 or -1.
 */
int raw_publish_flow(int fd, const char *topic, const char *payload, int qos, bool retain, int pid);
/*
 * Read the next packet, which must be a PUBLISH, into p; with ack, complete its flow as a
 * subscriber (PUBACK, or PUBREC then the PUBREL with pid, then PUBCOMP). 1, 0 timeout, -1.
 */
int raw_recv_publish(int fd, struct raw_pkt *p, int timeout_ms, bool ack);
/* Read the next packet and require type `type`: 1 got it, 0 timeout, -1 other type or closed. */
int raw_expect(int fd, int type, struct raw_pkt *p, int timeout_ms);

/* ---- child processes: mosquitto_pub / mosquitto_sub (harness_proc.c) ---- */

struct proc {
    pid_t pid;
    int fd;    /* read end of stdout+stderr */
    char *out; /* everything read so far, NUL-terminated */
    size_t len;
    size_t cap;
    int status; /* wait status once exited */
    bool exited;
};

/* Start argv[0] (PATH searched) with stdout+stderr captured. 0 or -errno. */
int proc_start(struct proc *p, char *const argv[]);
/* Read output until it contains needle. 0, or -1 on timeout or EOF without it. */
int proc_wait_output(struct proc *p, const char *needle, int timeout_ms);
/* Read output until EOF and reap. 0 with p->status set, or -1 on timeout (the child is killed). */
int proc_wait(struct proc *p, int timeout_ms);
/* Kill (if running), reap, free the output. */
void proc_cleanup(struct proc *p);
/* Run to completion: the exit code (0..255), or -1 on timeout / signal. *out malloc'd if given. */
int proc_run(char *const argv[], int timeout_ms, char **out);
/* Count lines of out beginning with prefix. */
int proc_count_lines(const char *out, const char *prefix);

#endif
