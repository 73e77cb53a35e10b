/*
 * 35_session_owner — a persistent session belongs to the identity that created it (issue 9).
 * Mallory, whose ACL grants nothing under alice/ (taking the session over would drop Alice's
 * messages) or everything (taking it over would hand them to him), connects with Alice's client
 * id: with the session online holding QoS 1 messages in flight, offline with in-flight and queued
 * ones (across a kill -9 too: the owner is stored), on the same listener and on another one
 * with per_listener_settings true, with clean session 0 and 1. Each time he gets CONNACK 5 and
 * nothing else, the refusal is logged with both names, and Alice, reconnecting, gets every
 * message in order. Anonymous and a named user are different identities too. With
 * allow_session_takeover_across_users true the takeover happens, and the in-flight message
 * Mallory may not read is not resent to him.
 *
 * Mosquitto lets any identity take a client id over, so these cases are Cairn's own.
 */
#include "harness.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

/* alice reads her tree, mallory his own, pub writes everywhere; anonymous clients nothing */
static const char acl_text[] = "user alice\n"
                               "topic readwrite alice/#\n"
                               "user mallory\n"
                               "topic readwrite mallory/#\n"
                               "user pub\n"
                               "topic write #\n";
/* the second listener's rules (per_listener_settings): mallory may read everything there */
static const char acl_b_text[] = "user mallory\n"
                                 "topic read #\n";

struct env {
    char *dir;
    char pw[256];
    char acl[256];
    char acl_b[256];
    char conf[1536];
    struct broker *b;
    int port_b; /* the second listener, 0 without */
};

static const char *cairn_passwd_bin(void)
{
    static char path[4096];
    char bin[4096];

    snprintf(bin, sizeof(bin), "%s", harness_cairn_bin());
    snprintf(path, sizeof(path), "%s/../tools/cairn-passwd", dirname(bin));
    return path;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

enum { ONE_LISTENER, SECOND_CHECKED, SECOND_OPEN };

/*
 * Password file (alice, mallory, pub: password "pw"), ACL files and the broker; anonymous
 * clients allowed (the harness's allow_anonymous true). With a second listener, per-listener
 * settings: the harness's listener with the password file and acl, a second one with acl_b and
 * either the same password file (SECOND_CHECKED) or none, letting anybody in under any name
 * (SECOND_OPEN). extra: more lines.
 */
static int env_start(struct env *e, int second_listener, const char *extra)
{
    static const char *users[] = {"alice", "mallory", "pub"};
    struct broker_opts bo = {0};
    int n;

    memset(e, 0, sizeof(*e));
    e->dir = strdup("/tmp/cairn-itest-owner-XXXXXX");
    if (!e->dir || !mkdtemp(e->dir))
        return -1;
    snprintf(e->pw, sizeof(e->pw), "%s/pw", e->dir);
    snprintf(e->acl, sizeof(e->acl), "%s/acl", e->dir);
    snprintf(e->acl_b, sizeof(e->acl_b), "%s/acl_b", e->dir);
    for (int i = 0; i < 3; i++) {
        char *create[] = {(char *)cairn_passwd_bin(), "-c", "-b", e->pw,
                          (char *)users[i],           "pw", NULL};
        char *add[] = {(char *)cairn_passwd_bin(), "-b", e->pw, (char *)users[i], "pw", NULL};

        if (proc_run(i ? add : create, WAIT_MS, NULL) != 0)
            return -1;
    }
    if (write_file(e->acl, acl_text) != 0 || write_file(e->acl_b, acl_b_text) != 0)
        return -1;
    if (second_listener == SECOND_OPEN) {
        e->port_b = harness_free_port();
        n = snprintf(e->conf, sizeof(e->conf),
                     "per_listener_settings true\npassword_file %s\nacl_file %s\n"
                     "listener %d 127.0.0.1\nallow_anonymous true\nacl_file %s\n%s",
                     e->pw, e->acl, e->port_b, e->acl_b, extra ? extra : "");
    } else if (second_listener) {
        e->port_b = harness_free_port();
        /* the harness's listener line comes first: these auth lines are its own */
        n = snprintf(e->conf, sizeof(e->conf),
                     "per_listener_settings true\npassword_file %s\nacl_file %s\n"
                     "listener %d 127.0.0.1\npassword_file %s\nacl_file %s\n%s",
                     e->pw, e->acl, e->port_b, e->pw, e->acl_b, extra ? extra : "");
    } else {
        n = snprintf(e->conf, sizeof(e->conf), "password_file %s\nacl_file %s\n%s", e->pw, e->acl,
                     extra ? extra : "");
    }
    if (n < 0 || (size_t)n >= sizeof(e->conf))
        return -1;
    bo.config = e->conf;
    e->b = broker_start(&bo);
    return e->b ? 0 : -1;
}

static void env_stop(struct env *e)
{
    char *argv[] = {"rm", "-rf", e->dir, NULL};

    broker_free(e->b);
    if (e->dir && !t_case_failed())
        proc_run(argv, WAIT_MS, NULL);
    free(e->dir);
}

/* Connect to the broker's listener (port 0) or another port as user (NULL: anonymous); the fd
 * with *rc and *sp, or -1. */
static int conn_as(const struct env *e, int port, const char *id, const char *user, bool persistent,
                   int *rc, int *sp)
{
    struct raw_conn_opts o = {.id = id,
                              .persistent = persistent,
                              .keepalive = 60,
                              .user = user,
                              .pass = user ? "pw" : NULL};
    int fd;

    if (!port)
        return raw_mqtt_connect(e->b, &o, rc, sp);
    fd = raw_connect_addr("127.0.0.1", port);
    if (fd >= 0 && raw_mqtt_handshake(fd, &o, rc, sp) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* user connects with id: CONNACK 5, session present 0, then the broker closes, nothing else. */
static int expect_refused(const struct env *e, int port, const char *id, const char *user,
                          bool persistent)
{
    struct raw_pkt p = {0};
    int rc = -1, sp = -1, r = -1;
    int fd = conn_as(e, port, id, user, persistent, &rc, &sp);

    if (fd < 0) {
        t_note("%s: no CONNACK", user ? user : "anonymous");
        goto out;
    }
    if (rc != 5 || sp != 0) {
        t_note("%s with id %s (clean %d): CONNACK %d, session present %d",
               user ? user : "anonymous", id, !persistent, rc, sp);
        goto out;
    }
    r = raw_read_packet(fd, &p, WAIT_MS);
    if (r != -1) {
        t_note("after CONNACK 5: %s (type %d)", r == 1 ? "a packet" : "no close", p.first >> 4);
        r = -1;
        goto out;
    }
    r = 0;
out:
    raw_pkt_free(&p);
    if (fd >= 0)
        close(fd);
    return r;
}

/* Publish alice/in "<prefix><i>" for i in [from, to] at QoS 1 as pub. 0 or -1. */
static int publish_range(int pub, const char *prefix, int from, int to)
{
    char payload[32];

    for (int i = from; i <= to; i++) {
        snprintf(payload, sizeof(payload), "%s%d", prefix, i);
        if (raw_publish_flow(pub, "alice/in", payload, 1, false, i) != 0)
            return -1;
    }
    return 0;
}

/* The next PUBLISH on fd has payload want (and DUP dup: 1, 0, or -1 for either); ack it when
 * ack. 0 or -1. */
static int next_is(int fd, const char *want, int dup, bool ack)
{
    struct raw_pkt p = {0};
    int rc = -1;

    if (raw_recv_publish(fd, &p, WAIT_MS, ack) != 1) {
        t_note("no PUBLISH where %s was expected", want);
        goto out;
    }
    if (p.payload_len != strlen(want) || memcmp(p.payload, want, p.payload_len) != 0 ||
        (dup >= 0 && p.dup != dup)) {
        t_note("got '%.*s' dup %d, expected %s dup %d", (int)p.payload_len, p.payload, p.dup, want,
               dup);
        goto out;
    }
    rc = 0;
out:
    raw_pkt_free(&p);
    return rc;
}

/* The next PUBLISHes on fd are "<prefix><from>".."<prefix><to>", in order (see next_is). */
static int recv_range(int fd, const char *prefix, int from, int to, int dup, bool ack)
{
    char want[32];

    for (int i = from; i <= to; i++) {
        snprintf(want, sizeof(want), "%s%d", prefix, i);
        if (next_is(fd, want, dup, ack) != 0)
            return -1;
    }
    return 0;
}

/* Alice online with three QoS 1 messages in flight: Mallory cannot take the session. */
static void test_owner_online(void)
{
    struct env e;
    int alice = -1, pub = -1, rc = -1, sp = -1;

    if (harness_cairn_only("Mosquitto lets any user take a client id over"))
        return;
    T_EQ(env_start(&e, ONE_LISTENER, NULL), 0);
    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_subscribe(alice, 1, "alice/#", 1), 1);
    pub = conn_as(&e, 0, "pub-1", "pub", false, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(publish_range(pub, "m", 1, 3), 0);
    T_EQ(recv_range(alice, "m", 1, 3, 0, false), 0); /* in flight: not acknowledged */

    T_EQ(expect_refused(&e, 0, "alice-dev", "mallory", true), 0);
    T_EQ(expect_refused(&e, 0, "alice-dev", "mallory", false), 0);
    T_EQ(broker_wait_log(e.b,
                         "CONNECT refused (CONNACK 5): client id alice-dev belongs to a session "
                         "of user 'alice', not user 'mallory'",
                         WAIT_MS),
         0);
    /* Alice's connection was not touched: it still delivers */
    T_EQ(publish_range(pub, "m", 4, 4), 0);
    T_EQ(recv_range(alice, "m", 4, 4, 0, false), 0);

    close(alice); /* abrupt: every message is still in flight */
    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    T_EQ(recv_range(alice, "m", 1, 4, 1, true), 0);
    T_EQ(publish_range(pub, "marker", 5, 5), 0);
    T_EQ(recv_range(alice, "marker", 5, 5, 0, true), 0);
out:
    if (alice >= 0)
        close(alice);
    if (pub >= 0)
        close(pub);
    env_stop(&e);
}

/*
 * Alice offline with two messages in flight and four queued: Mallory (clean 0 and 1) and an
 * anonymous client are refused, before and after a kill -9 (the owner is in the store); Alice
 * gets all six.
 */
static void test_owner_offline(void)
{
    struct env e;
    int alice = -1, pub = -1, rc = -1, sp = -1;

    if (harness_cairn_only("Mosquitto lets any user take a client id over"))
        return;
    T_EQ(env_start(&e, ONE_LISTENER, NULL), 0);
    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_subscribe(alice, 1, "alice/#", 1), 1);
    pub = conn_as(&e, 0, "pub-1", "pub", false, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(publish_range(pub, "m", 1, 2), 0);
    T_EQ(recv_range(alice, "m", 1, 2, 0, false), 0);
    close(alice);
    alice = -1;
    /* offline before the next ones arrive, so they queue */
    T_EQ(broker_wait_log(e.b, "alice-dev closed: connection closed by peer", WAIT_MS), 0);
    T_EQ(publish_range(pub, "m", 3, 6), 0); /* acknowledged: queued for Alice */

    T_EQ(expect_refused(&e, 0, "alice-dev", "mallory", true), 0);
    T_EQ(expect_refused(&e, 0, "alice-dev", "mallory", false), 0);
    T_EQ(expect_refused(&e, 0, "alice-dev", NULL, true), 0);
    T_EQ(broker_wait_log(e.b, "belongs to a session of user 'alice', not anonymous", WAIT_MS), 0);

    close(pub);
    pub = -1;
    T_EQ(broker_restart(e.b), 0); /* kill -9 */
    T_EQ(expect_refused(&e, 0, "alice-dev", "mallory", true), 0);
    T_EQ(expect_refused(&e, 0, "alice-dev", "mallory", false), 0);

    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    /* m1 and m2 were in flight (DUP unless kill -9 took their not yet committed state) */
    T_EQ(recv_range(alice, "m", 1, 2, -1, true), 0);
    T_EQ(recv_range(alice, "m", 3, 6, 0, true), 0);
    pub = conn_as(&e, 0, "pub-1", "pub", false, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(publish_range(pub, "marker", 7, 7), 0);
    T_EQ(recv_range(alice, "marker", 7, 7, 0, true), 0);
out:
    if (alice >= 0)
        close(alice);
    if (pub >= 0)
        close(pub);
    env_stop(&e);
}

/*
 * per_listener_settings true: on the second listener Mallory may read everything, so a takeover
 * there would hand him Alice's messages. He is refused there too; Alice gets them on hers.
 */
static void test_across_listeners(void)
{
    struct env e;
    int alice = -1, pub = -1, rc = -1, sp = -1;

    if (harness_cairn_only("Mosquitto lets any user take a client id over"))
        return;
    T_EQ(env_start(&e, SECOND_CHECKED, NULL), 0);
    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_subscribe(alice, 1, "alice/#", 1), 1);
    pub = conn_as(&e, 0, "pub-1", "pub", false, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(publish_range(pub, "m", 1, 1), 0);
    T_EQ(recv_range(alice, "m", 1, 1, 0, false), 0);

    T_EQ(expect_refused(&e, e.port_b, "alice-dev", "mallory", true), 0); /* Alice online */
    close(alice);
    alice = -1;
    T_EQ(broker_wait_log(e.b, "alice-dev closed: connection closed by peer", WAIT_MS), 0);
    T_EQ(publish_range(pub, "m", 2, 3), 0);                              /* queued */
    T_EQ(expect_refused(&e, e.port_b, "alice-dev", "mallory", true), 0); /* offline */
    T_EQ(expect_refused(&e, e.port_b, "alice-dev", "mallory", false), 0);

    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    T_EQ(recv_range(alice, "m", 1, 1, 1, true), 0);
    T_EQ(recv_range(alice, "m", 2, 3, 0, true), 0);
    T_EQ(publish_range(pub, "marker", 4, 4), 0);
    T_EQ(recv_range(alice, "marker", 4, 4, 0, true), 0);
out:
    if (alice >= 0)
        close(alice);
    if (pub >= 0)
        close(pub);
    env_stop(&e);
}

/*
 * A listener without a password file lets anybody in under any name (per_listener_settings,
 * allow_anonymous true there): a client calling himself "alice" there is not the Alice whose
 * password the other listener checked, and gets none of her session.
 */
static void test_unchecked_name_on_open_listener(void)
{
    struct env e;
    int alice = -1, pub = -1, rc = -1, sp = -1;

    if (harness_cairn_only("Mosquitto lets any user take a client id over"))
        return;
    T_EQ(env_start(&e, SECOND_OPEN, NULL), 0);
    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_subscribe(alice, 1, "alice/#", 1), 1);
    close(alice);
    alice = -1;
    T_EQ(broker_wait_log(e.b, "alice-dev closed: connection closed by peer", WAIT_MS), 0);
    pub = conn_as(&e, 0, "pub-1", "pub", false, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(publish_range(pub, "m", 1, 2), 0); /* queued for Alice */
    T_EQ(expect_refused(&e, e.port_b, "alice-dev", "alice", true), 0);
    T_EQ(expect_refused(&e, e.port_b, "alice-dev", "alice", false), 0);
    T_EQ(broker_wait_log(e.b, "not unchecked user 'alice'", WAIT_MS), 0);
    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    T_EQ(recv_range(alice, "m", 1, 2, 0, true), 0);
out:
    if (alice >= 0)
        close(alice);
    if (pub >= 0)
        close(pub);
    env_stop(&e);
}

/* An anonymous client and a named user are two identities, whichever made the session. */
static void test_anonymous_vs_named(void)
{
    struct env e;
    int fd = -1, rc = -1, sp = -1;

    if (harness_cairn_only("Mosquitto lets any user take a client id over"))
        return;
    T_EQ(env_start(&e, ONE_LISTENER, NULL), 0);
    fd = conn_as(&e, 0, "shared-dev", NULL, true, &rc, &sp);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_send_disconnect(fd), 0);
    close(fd);
    fd = -1;
    T_EQ(expect_refused(&e, 0, "shared-dev", "alice", true), 0);
    T_EQ(expect_refused(&e, 0, "shared-dev", "alice", false), 0);
    T_EQ(broker_wait_log(e.b, "belongs to a session of anonymous, not user 'alice'", WAIT_MS), 0);

    fd = conn_as(&e, 0, "alice-own", "alice", true, &rc, &sp);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_send_disconnect(fd), 0);
    close(fd);
    fd = -1;
    T_EQ(expect_refused(&e, 0, "alice-own", NULL, true), 0);

    /* each owner still has its own */
    fd = conn_as(&e, 0, "shared-dev", NULL, true, &rc, &sp);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    close(fd);
    fd = conn_as(&e, 0, "alice-own", "alice", true, &rc, &sp);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
out:
    if (fd >= 0)
        close(fd);
    env_stop(&e);
}

/*
 * allow_session_takeover_across_users true: Mallory takes the session over (Alice's connection
 * is closed), and the message in flight, which he may not read, is not resent to him.
 */
static void test_option_allows_takeover(void)
{
    struct env e;
    int alice = -1, mallory = -1, pub = -1, rc = -1, sp = -1;

    if (harness_cairn_only("allow_session_takeover_across_users is Cairn's own"))
        return;
    T_EQ(env_start(&e, ONE_LISTENER, "allow_session_takeover_across_users true"), 0);
    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_subscribe(alice, 1, "alice/#", 1), 1);
    pub = conn_as(&e, 0, "pub-1", "pub", false, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(publish_range(pub, "m", 1, 1), 0);
    T_EQ(recv_range(alice, "m", 1, 1, 0, false), 0);

    mallory = conn_as(&e, 0, "alice-dev", "mallory", true, &rc, &sp);
    T_ASSERT(mallory >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    T_EQ(raw_expect_close(alice, WAIT_MS), 0);
    T_EQ(broker_wait_log(e.b, "session of user 'alice' taken over by user 'mallory'", WAIT_MS), 0);
    T_EQ(raw_subscribe(mallory, 2, "mallory/#", 1), 1);
    T_EQ(raw_publish_flow(pub, "mallory/x", "marker", 1, false, 2), 0);
    T_EQ(next_is(mallory, "marker", 0, true), 0); /* m1 was not resent before it */

    /* the option takes no side: Alice may take it back the same way */
    close(alice);
    alice = conn_as(&e, 0, "alice-dev", "alice", true, &rc, &sp);
    T_ASSERT(alice >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    T_EQ(raw_expect_close(mallory, WAIT_MS), 0);
out:
    if (alice >= 0)
        close(alice);
    if (mallory >= 0)
        close(mallory);
    if (pub >= 0)
        close(pub);
    env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"owner_online", test_owner_online},
        {"owner_offline", test_owner_offline},
        {"across_listeners", test_across_listeners},
        {"unchecked_name_on_open_listener", test_unchecked_name_on_open_listener},
        {"anonymous_vs_named", test_anonymous_vs_named},
        {"option_allows_takeover", test_option_allows_takeover},
    };

    return T_MAIN(cases);
}
