/*
 * 31_acl — acl_file with the real broker: %c and %u patterns, deny over grant, read vs write,
 * for SUBSCRIBE (0x80 for a filter that may not be read), PUBLISH (acknowledged but not
 * delivered nor retained when it may not be written), retained and queued delivery (never to a
 * client that may not read the topic), and a SIGHUP that takes a right away from a client that
 * subscribed before it, also for a message it had in flight (not resent after the reload).
 *
 * "Not delivered" is shown without waiting for time to pass: after the forbidden message the
 * test sends one the client may read, and that must be the next message it gets.
 */
#include "harness.h"

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

static const char acl_text[] = "# anonymous clients: nothing\n"
                               "user alice\n"
                               "topic readwrite alice/#\n"
                               "topic read shared/#\n"
                               "topic deny shared/secret\n"
                               "user bob\n"
                               "topic write shared/#\n"
                               "topic read bob/#\n"
                               "pattern readwrite dev/%c/#\n"
                               "pattern read users/%u/inbox\n"
                               "pattern write users/+/inbox\n";

struct env {
    char *dir;
    char acl[256];
    char conf[768];
    struct broker *b;
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

/* Password file (alice, bob, carol: password "pw"), ACL file, broker. 0 or -1. */
static int env_start(struct env *e)
{
    static const char *users[] = {"alice", "bob", "carol"};
    char pw[256];

    memset(e, 0, sizeof(*e));
    e->dir = strdup("/tmp/cairn-itest-acl-XXXXXX");
    if (!e->dir || !mkdtemp(e->dir))
        return -1;
    snprintf(pw, sizeof(pw), "%s/pw", e->dir);
    snprintf(e->acl, sizeof(e->acl), "%s/acl", e->dir);
    for (int i = 0; i < 3; i++) {
        char *create[] = {(char *)cairn_passwd_bin(), "-c", "-b", pw, (char *)users[i], "pw", NULL};
        char *add[] = {(char *)cairn_passwd_bin(), "-b", pw, (char *)users[i], "pw", NULL};

        if (proc_run(i ? add : create, WAIT_MS, NULL) != 0)
            return -1;
    }
    if (write_file(e->acl, acl_text) != 0)
        return -1;
    snprintf(e->conf, sizeof(e->conf), "allow_anonymous false\npassword_file %s\nacl_file %s", pw,
             e->acl);
    {
        struct broker_opts bo = {.no_anonymous = true, .config = e->conf};

        e->b = broker_start(&bo);
    }
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

static MQTTClient client(const struct env *e, const char *id, const char *user, bool persistent)
{
    struct pc_opts o = {.id = id, .user = user, .pass = "pw", .persistent = persistent};
    int rc = -1;
    MQTTClient c = pc_connect(e->b, &o, &rc, NULL);

    if (c && rc != 0)
        pc_close(&c);
    return c;
}

/* The next message c gets is on topic with payload. */
static int next_is(MQTTClient c, const char *topic, const char *payload, bool retained)
{
    struct pc_msg m = {0};
    int rc = -1;

    if (pc_recv(c, &m, WAIT_MS) != 1) {
        t_note("no message where %s was expected", topic);
        goto out;
    }
    if (strcmp(m.topic, topic) != 0 || strcmp(m.payload, payload) != 0 ||
        (m.retained != 0) != retained) {
        t_note("got %s \"%s\" retained=%d, expected %s \"%s\"", m.topic, m.payload, m.retained,
               topic, payload);
        goto out;
    }
    rc = 0;
out:
    pc_msg_free(&m);
    return rc;
}

static void test_subscribe(void)
{
    struct env e;
    MQTTClient a = NULL, b = NULL;

    if (harness_cairn_only("Mosquitto 2.0.11's built-in ACL grants every SUBSCRIBE"))
        return;
    T_EQ(env_start(&e), 0);
    a = client(&e, "a1", "alice", false);
    b = client(&e, "dev7", "bob", false);
    T_ASSERT(a && b);
    T_EQ(pc_subscribe(a, "#", 1), 0x80);
    T_EQ(pc_subscribe(a, "shared/#", 1), 1);
    T_EQ(pc_subscribe(a, "shared/secret", 1), 0x80);
    T_EQ(pc_subscribe(a, "alice/+/x", 2), 2);
    T_EQ(pc_subscribe(a, "users/alice/inbox", 1), 1);
    T_EQ(pc_subscribe(a, "users/bob/inbox", 1), 0x80);
    T_EQ(pc_subscribe(a, "users/+/inbox", 1), 0x80);
    T_EQ(pc_subscribe(b, "shared/#", 1), 0x80); /* write only */
    T_EQ(pc_subscribe(b, "dev/dev7/#", 1), 1);
    T_EQ(pc_subscribe(b, "dev/dev8/#", 1), 0x80);
    T_EQ(pc_subscribe(b, "dev/+/#", 1), 0x80);
out:
    pc_close(&a);
    pc_close(&b);
    env_stop(&e);
}

static void test_publish(void)
{
    struct env e;
    MQTTClient a = NULL, b = NULL, c = NULL;

    T_EQ(env_start(&e), 0);
    a = client(&e, "a1", "alice", false);
    b = client(&e, "dev7", "bob", false);
    c = client(&e, "dev8", "carol", false);
    T_ASSERT(a && b && c);
    T_EQ(pc_subscribe(a, "shared/#", 1), 1);
    T_EQ(pc_subscribe(a, "users/alice/inbox", 1), 1);
    T_EQ(pc_subscribe(c, "dev/dev8/#", 1), 1);
    T_EQ(pc_subscribe(c, "users/carol/inbox", 1), 1);

    /* deny wins over alice's read shared/# */
    T_EQ(pc_publish_str(b, "shared/secret", "no", 1, false), 0);
    /* alice may read shared/ but not write it: acknowledged, not delivered */
    T_EQ(pc_publish_str(a, "shared/by-alice", "no", 1, false), 0);
    T_EQ(pc_publish_str(b, "shared/ok", "yes", 1, false), 0);
    T_EQ(next_is(a, "shared/ok", "yes", false), 0);

    /* %u: anyone writes users/+/inbox, only its user reads it */
    T_EQ(pc_publish_str(b, "users/alice/inbox", "hi alice", 2, false), 0);
    T_EQ(next_is(a, "users/alice/inbox", "hi alice", false), 0);

    /* %c: dev7 may not write into dev8's tree; dev8 may write its own */
    T_EQ(pc_publish_str(b, "dev/dev8/cmd", "no", 1, false), 0);
    T_EQ(pc_publish_str(c, "dev/dev8/state", "mine", 1, false), 0);
    T_EQ(next_is(c, "dev/dev8/state", "mine", false), 0);
    T_EQ(pc_publish_str(b, "users/carol/inbox", "hi carol", 0, false), 0);
    T_EQ(next_is(c, "users/carol/inbox", "hi carol", false), 0);
out:
    pc_close(&a);
    pc_close(&b);
    pc_close(&c);
    env_stop(&e);
}

static void test_retained(void)
{
    struct env e;
    MQTTClient a = NULL, b = NULL;

    T_EQ(env_start(&e), 0);
    a = client(&e, "a1", "alice", false);
    b = client(&e, "b1", "bob", false);
    T_ASSERT(a && b);
    T_EQ(pc_publish_str(b, "shared/secret", "hidden", 1, true), 0);
    T_EQ(pc_publish_str(b, "shared/open", "seen", 1, true), 0);
    /* alice may not write bob/: not retained either */
    T_EQ(pc_publish_str(a, "bob/r", "forged", 1, true), 0);
    T_EQ(pc_publish_str(a, "alice/r", "fine", 1, true), 0);

    T_EQ(pc_subscribe(a, "shared/#", 1), 1);
    T_EQ(next_is(a, "shared/open", "seen", true), 0);
    T_EQ(pc_subscribe(a, "alice/r", 1), 1);
    T_EQ(next_is(a, "alice/r", "fine", true), 0); /* after shared/open: nothing else came */
    T_EQ(pc_publish_str(b, "dev/b1/r", "mark", 1, true), 0);
    T_EQ(pc_subscribe(b, "bob/#", 1), 1);
    T_EQ(pc_subscribe(b, "dev/b1/#", 1), 1);
    T_EQ(next_is(b, "dev/b1/r", "mark", true), 0); /* and not bob/r before it */
out:
    pc_close(&a);
    pc_close(&b);
    env_stop(&e);
}

/* Queued for an offline persistent session: only what it may read comes when it returns. */
static void test_queued(void)
{
    struct env e;
    MQTTClient a = NULL, b = NULL;

    T_EQ(env_start(&e), 0);
    a = client(&e, "alice-q", "alice", true);
    b = client(&e, "b1", "bob", false);
    T_ASSERT(a && b);
    T_EQ(pc_subscribe(a, "shared/#", 1), 1);
    pc_close(&a);
    T_EQ(pc_publish_str(b, "shared/secret", "hidden", 1, false), 0);
    T_EQ(pc_publish_str(b, "shared/q1", "one", 1, false), 0);
    T_EQ(pc_publish_str(b, "shared/secret", "hidden", 1, false), 0);
    T_EQ(pc_publish_str(b, "shared/q2", "two", 1, false), 0);
    a = client(&e, "alice-q", "alice", true);
    T_ASSERT(a);
    T_EQ(next_is(a, "shared/q1", "one", false), 0);
    T_EQ(next_is(a, "shared/q2", "two", false), 0);
out:
    pc_close(&a);
    pc_close(&b);
    env_stop(&e);
}

/*
 * SIGHUP with an ACL that no longer lets alice read shared/: her existing subscription stops
 * delivering, queued and retained messages are held back, a new SUBSCRIBE gets 0x80. A broken
 * ACL on a later SIGHUP keeps the rules in force.
 */
static void test_reload_takes_right_away(void)
{
    struct env e;
    MQTTClient a = NULL, b = NULL;
    char *edited = NULL;

    T_EQ(env_start(&e), 0);
    a = client(&e, "a1", "alice", false);
    b = client(&e, "b1", "bob", false);
    T_ASSERT(a && b);
    T_EQ(pc_subscribe(a, "shared/#", 1), 1);
    T_EQ(pc_subscribe(a, "users/alice/inbox", 1), 1);
    T_EQ(pc_publish_str(b, "shared/before", "1", 1, true), 0);
    T_EQ(next_is(a, "shared/before", "1", false), 0);

    edited = strdup(acl_text);
    T_ASSERT(edited);
    memcpy(strstr(edited, "topic read shared/#"), "topic read sharex/#", 19);
    T_EQ(write_file(e.acl, edited), 0);
    T_EQ(broker_signal(e.b, SIGHUP), 0);
    if (!harness_is_mosquitto())
        T_EQ(broker_wait_log(e.b, "reloaded", WAIT_MS), 0);
    else
        T_EQ(broker_wait_log(e.b, "Reloading config", WAIT_MS), 0);

    T_EQ(pc_publish_str(b, "shared/after", "2", 1, false), 0);
    T_EQ(pc_publish_str(b, "users/alice/inbox", "sentinel", 1, false), 0);
    T_EQ(next_is(a, "users/alice/inbox", "sentinel", false), 0);
    if (!harness_is_mosquitto())
        T_EQ(pc_subscribe(a, "shared/#", 1), 0x80);

    /* a broken file: the reduced rules stay (inbox still readable, shared still not) */
    T_EQ(write_file(e.acl, "user alice\ntopic bad words here\n"), 0);
    T_EQ(broker_signal(e.b, SIGHUP), 0);
    if (!harness_is_mosquitto()) {
        T_EQ(broker_wait_log(e.b, "acl:2: unknown access type", WAIT_MS), 0);
        T_EQ(pc_publish_str(b, "shared/later", "3", 1, false), 0);
        T_EQ(pc_publish_str(b, "users/alice/inbox", "sentinel 2", 1, false), 0);
        T_EQ(next_is(a, "users/alice/inbox", "sentinel 2", false), 0);
    }
out:
    free(edited);
    pc_close(&a);
    pc_close(&b);
    env_stop(&e);
}

/* The next PUBLISH on fd is payload (acknowledged). 0 or -1. */
static int raw_next_is(int fd, const char *payload)
{
    struct raw_pkt p = {0};
    int rc = -1;

    if (raw_recv_publish(fd, &p, WAIT_MS, true) != 1) {
        t_note("no PUBLISH where \"%s\" was expected", payload);
        goto out;
    }
    if (p.payload_len != strlen(payload) || memcmp(p.payload, payload, p.payload_len) != 0) {
        t_note("got %s \"%.*s\" dup %d, expected \"%s\"", p.topic, (int)p.payload_len, p.payload,
               p.dup, payload);
        goto out;
    }
    rc = 0;
out:
    raw_pkt_free(&p);
    return rc;
}

/*
 * A message in flight to alice when a reload takes her read right away is not resent when she
 * reconnects (no DUP copy of it before the next message she may read), and it is finished:
 * a later reconnect does not bring it back either.
 */
static void test_reload_inflight_not_resent(void)
{
    struct env e;
    struct raw_conn_opts ao = {
        .id = "alice-r", .persistent = true, .keepalive = 60, .user = "alice", .pass = "pw"};
    struct raw_conn_opts bo = {.id = "b1", .keepalive = 60, .user = "bob", .pass = "pw"};
    struct raw_pkt p = {0};
    char *edited = NULL;
    int a = -1, b = -1, rc = -1, sp = -1;

    T_EQ(env_start(&e), 0);
    a = raw_mqtt_connect(e.b, &ao, &rc, &sp);
    T_ASSERT(a >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_subscribe(a, 1, "shared/#", 1), 1);
    T_EQ(raw_subscribe(a, 2, "users/alice/inbox", 1), 1);
    b = raw_mqtt_connect(e.b, &bo, &rc, NULL);
    T_ASSERT(b >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_publish_flow(b, "shared/in-flight", "before", 1, false, 1), 0);
    T_EQ(raw_recv_publish(a, &p, WAIT_MS, false), 1); /* not acknowledged */
    T_ASSERT(p.payload_len == 6 && memcmp(p.payload, "before", 6) == 0);

    edited = strdup(acl_text);
    T_ASSERT(edited);
    memcpy(strstr(edited, "topic read shared/#"), "topic read sharex/#", 19);
    T_EQ(write_file(e.acl, edited), 0);
    T_EQ(broker_signal(e.b, SIGHUP), 0);
    T_EQ(broker_wait_log(e.b, harness_is_mosquitto() ? "Reloading config" : "reloaded", WAIT_MS),
         0);

    close(a);
    a = raw_mqtt_connect(e.b, &ao, &rc, &sp);
    T_ASSERT(a >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    T_EQ(raw_publish_flow(b, "users/alice/inbox", "sentinel", 1, false, 2), 0);
    T_EQ(raw_next_is(a, "sentinel"), 0);
    close(a);
    a = raw_mqtt_connect(e.b, &ao, &rc, &sp);
    T_ASSERT(a >= 0);
    T_EQ(sp, 1);
    T_EQ(raw_publish_flow(b, "users/alice/inbox", "sentinel 2", 1, false, 3), 0);
    T_EQ(raw_next_is(a, "sentinel 2"), 0);
out:
    raw_pkt_free(&p);
    free(edited);
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"subscribe", test_subscribe},
        {"publish", test_publish},
        {"retained", test_retained},
        {"queued", test_queued},
        {"reload_takes_right_away", test_reload_takes_right_away},
        {"reload_inflight_not_resent", test_reload_inflight_not_resent},
    };

    return T_MAIN(cases);
}
