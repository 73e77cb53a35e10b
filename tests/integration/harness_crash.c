/*
 * harness_crash.c — the crash model the durability tests share (harness_crash.h): publishers at
 * QoS 1 and QoS 2 and persistent subscribers on raw sockets, one poll() loop, each client
 * keeping its session state across the broker's deaths as a real client must.
 *
 * Publishers keep a window of unacknowledged messages ("seq" payloads) and, after a reconnect,
 * resend with DUP what got no PUBREC (and PUBREL for what got one). Subscribers remember the
 * QoS 2 packet ids they answered with PUBREC until the PUBREL, so a resent PUBLISH is
 * recognised and not counted as a second delivery ([MQTT-4.3.3]); they count every delivery
 * per seq (with how many had DUP=1) and check that first deliveries come in publish order.
 * With toggling on, subscribers leave and come back (DISCONNECT, abrupt close, or a takeover by
 * a quick reconnect) so that they are away about half the time. Lossy mode (power cut with
 * persistence_sync false) accepts lost sessions: the client subscribes again and forgets its
 * state, as it would.
 */
#include "harness_crash.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WINDOW        16
#define MAX_SEQ       CRASH_MAX_SEQ
#define N_PUBS        2
#define N_SUBS        2
#define STALL_MS      15000
#define TOGGLE_ONE_IN 150 /* per event: a subscriber leaves or comes back */

struct crash_pub {
    const char *id;
    const char *topic;
    int qos;
    int fd;
    int next_seq;
    int inflight;
    int slot_seq[65536];       /* by packet id */
    uint8_t slot_state[65536]; /* 0 free, 1 PUBLISH sent, 2 PUBREC received (PUBREL sent) */
    uint8_t acked[MAX_SEQ];
    uint8_t resent[MAX_SEQ]; /* sent again after a reconnect */
    long n_acked;
};

struct crash_sub {
    const char *id;
    int fd;
    bool online;                /* the model: connected now, and after the next restart */
    uint16_t count[3][MAX_SEQ]; /* deliveries per publisher QoS and seq */
    uint16_t dups[3][MAX_SEQ];  /* of those, with DUP=1 */
    int awaiting[65536];        /* QoS 2 packet id -> seq awaiting PUBREL, or -1 */
    int last_first[3];          /* highest seq delivered for the first time, per QoS */
    long reordered[3];          /* first deliveries below last_first */
    long deliveries, resends_recognised, departures, takeovers;
};

struct crash {
    struct broker *b;
    struct crash_pub pub[N_PUBS];
    struct crash_sub sub[N_SUBS];
    long events;
    int errors;
    uint64_t rng;
    bool lossy;         /* sessions may be lost (a power cut without sync) */
    bool toggle;        /* subscribers leave and come back */
    int limit;          /* messages per publisher, at most */
    long sessions_lost; /* lossy: CONNACKs without the session */
};

static void crash_error(struct crash *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void crash_error(struct crash *c, const char *fmt, ...)
{
    if (c->errors++ < 10) {
        char buf[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        t_note("%s", buf);
    }
}

static int crash_connect(struct crash *c, const char *id, int *sp)
{
    struct raw_conn_opts o = {.id = id, .persistent = true, .keepalive = 60};
    int rc = -1, fd = raw_mqtt_connect(c->b, &o, &rc, sp);

    if (fd >= 0 && rc != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int pub_send(struct crash_pub *p, int pid, bool dup)
{
    char buf[16];

    snprintf(buf, sizeof(buf), "%d", p->slot_seq[pid]);
    return raw_publish(p->fd, p->topic, buf, p->qos, false, dup, pid);
}

/* Fill the window with new messages. */
static int pub_top_up(struct crash_pub *p, int limit)
{
    int rc = 0;

    while (rc == 0 && p->inflight < WINDOW && p->next_seq < limit) {
        int seq = p->next_seq++, pid = seq % 65535 + 1;

        p->slot_seq[pid] = seq;
        p->slot_state[pid] = 1;
        p->inflight++;
        rc = pub_send(p, pid, false);
    }
    return rc;
}

/* After a reconnect: resend what is unacknowledged, oldest first. */
static int pub_resume(struct crash_pub *p)
{
    int rc = 0;

    for (int seq = p->next_seq > 65535 ? p->next_seq - 65535 : 0; seq < p->next_seq && rc == 0;
         seq++) {
        int pid = seq % 65535 + 1;

        if (p->slot_state[pid] == 1 && p->slot_seq[pid] == seq) {
            p->resent[seq] = 1;
            rc = pub_send(p, pid, true);
        } else if (p->slot_state[pid] == 2 && p->slot_seq[pid] == seq)
            rc = raw_send_ack(p->fd, RAW_PUBREL, pid);
    }
    return rc;
}

static void pub_complete(struct crash *c, struct crash_pub *p, int pid)
{
    int seq = p->slot_seq[pid];

    p->slot_state[pid] = 0;
    p->inflight--;
    if (!p->acked[seq]) {
        p->acked[seq] = 1;
        p->n_acked++;
    }
    c->events++;
}

static int pub_on_packet(struct crash *c, struct crash_pub *p, const struct raw_pkt *k)
{
    int type = k->first >> 4, pid = k->pid, rc = 0;

    if (pid <= 0 || pid > 65535) {
        crash_error(c, "%s: packet without id (type %d, %d)", p->id, type, pid);
        rc = -1;
    } else if (type == RAW_PUBACK && p->qos == 1) {
        if (p->slot_state[pid] == 1)
            pub_complete(c, p, pid);
    } else if (type == RAW_PUBREC && p->qos == 2) {
        if (p->slot_state[pid] == 1)
            p->slot_state[pid] = 2;
        rc = raw_send_ack(p->fd, RAW_PUBREL, pid);
    } else if (type == RAW_PUBCOMP && p->qos == 2) {
        if (p->slot_state[pid] == 2)
            pub_complete(c, p, pid);
    } else {
        crash_error(c, "%s: unexpected packet type %d (pid %d)", p->id, type, pid);
        rc = -1;
    }
    return rc;
}

/* A first delivery of seq at QoS q: counted, and checked against publish order. */
static void sub_first(struct crash_sub *s, int q, long seq)
{
    if (seq < s->last_first[q])
        s->reordered[q]++;
    else
        s->last_first[q] = (int)seq;
    s->deliveries++;
}

static int sub_on_packet(struct crash *c, struct crash_sub *s, const struct raw_pkt *k)
{
    int type = k->first >> 4, rc = -1, q;
    char buf[16];
    long seq = -1;

    if (type == RAW_PUBREL) {
        if (k->pid > 0)
            s->awaiting[k->pid] = -1;
        rc = raw_send_ack(s->fd, RAW_PUBCOMP, k->pid);
        goto out;
    }
    if (type != RAW_PUBLISH) {
        crash_error(c, "%s: unexpected packet type %d", s->id, type);
        goto out;
    }
    q = k->topic && strcmp(k->topic, "crash/q1") == 0 ? 1 : 2;
    if (k->payload_len < sizeof(buf)) {
        memcpy(buf, k->payload, k->payload_len);
        buf[k->payload_len] = '\0';
        seq = strtol(buf, NULL, 10);
    }
    if (seq < 0 || seq >= MAX_SEQ || k->qos != q || k->pid <= 0) {
        crash_error(c, "%s: bad delivery '%s' seq %ld", s->id, k->topic ? k->topic : "?", seq);
        goto out;
    }
    c->events++;
    if (q == 1) {
        s->dups[1][seq] += k->dup ? 1 : 0;
        if (s->count[1][seq]++ == 0)
            sub_first(s, 1, seq);
        rc = raw_send_ack(s->fd, RAW_PUBACK, k->pid);
        goto out;
    }
    if (s->awaiting[k->pid] >= 0) {
        /* A resend of a PUBLISH already answered with PUBREC: the same message, not new. */
        if (s->awaiting[k->pid] != seq)
            crash_error(c, "%s: packet id reused while awaiting PUBREL (seq %d, %ld)", s->id,
                        s->awaiting[k->pid], seq);
        s->resends_recognised++;
    } else {
        s->awaiting[k->pid] = (int)seq;
        if (s->count[2][seq]++ == 0)
            sub_first(s, 2, seq);
    }
    rc = raw_send_ack(s->fd, RAW_PUBREC, k->pid);
out:
    return rc;
}

/*
 * A subscriber comes (back): its session must be there, except on the very first connect. In
 * lossy mode a lost session is counted, subscribed again, and the client's QoS 2 state dropped
 * with it (a new session starts empty).
 */
static int sub_arrive(struct crash *c, struct crash_sub *s, bool first)
{
    int sp = -1, rc = 0;
    bool subscribe = first;

    s->fd = crash_connect(c, s->id, &sp);
    if (s->fd < 0) {
        rc = -1;
    } else if (!first && sp != 1 && c->lossy) {
        c->sessions_lost++;
        memset(s->awaiting, 0xff, sizeof(s->awaiting));
        subscribe = true;
    } else if (!first && sp != 1) {
        crash_error(c, "%s: session lost (session present %d)", s->id, sp);
        rc = -1;
    }
    if (rc == 0 && subscribe && raw_subscribe(s->fd, 1, "crash/#", 2) != 2)
        rc = -1;
    s->online = rc == 0;
    return rc;
}

/* A subscriber leaves: DISCONNECT or an abrupt close, chosen at random. */
static void sub_leave(struct crash *c, struct crash_sub *s)
{
    if (t_rand(&c->rng) & 1)
        raw_send_disconnect(s->fd);
    close(s->fd);
    s->fd = -1;
    s->online = false;
    s->departures++;
}

/* Now and then a subscriber leaves or comes back, so that it is away about half the time. */
static int crash_toggle(struct crash *c)
{
    struct crash_sub *s = &c->sub[t_rand(&c->rng) % N_SUBS];
    int rc = 0;

    if (s->online && t_rand(&c->rng) % 3 == 0) {
        /* a quick reconnect: the new connection takes the session over from the old one,
         * whose unread packets the client abandons */
        int old = s->fd;

        rc = sub_arrive(c, s, false);
        close(old);
        s->takeovers++;
    } else if (s->online) {
        sub_leave(c, s);
    } else {
        rc = sub_arrive(c, s, false);
    }
    return rc;
}

static int crash__pump(struct crash *c, long until, bool publish);

int crash_pump(struct crash *c, long until, bool publish)
{
    int rc = crash__pump(c, until, publish);

    /* a write or read failed because the broker died (a kill point): the caller restarts it */
    if (rc < 0 && c->errors == 0 && broker_wait_exit(c->b, 2000, NULL) == 0)
        rc = 1;
    return rc;
}

static int crash__pump(struct crash *c, long until, bool publish)
{
    uint64_t last_progress = t_now_ms();
    long last_events = c->events;
    int rc = 0;

    while (rc == 0 && !(until >= 0 && c->events >= until)) {
        struct pollfd pf[N_PUBS + N_SUBS];
        long before = c->events;

        for (int i = 0; i < N_PUBS && publish && rc == 0; i++)
            rc = pub_top_up(&c->pub[i], c->limit);
        for (int i = 0; i < N_PUBS; i++)
            pf[i] = (struct pollfd){.fd = c->pub[i].fd, .events = POLLIN};
        for (int i = 0; i < N_SUBS; i++) /* fd -1: away, poll ignores it */
            pf[N_PUBS + i] = (struct pollfd){.fd = c->sub[i].fd, .events = POLLIN};
        if (rc != 0 || poll(pf, N_PUBS + N_SUBS, 50) < 0) {
            rc = -1;
            break;
        }
        for (int i = 0; i < N_PUBS + N_SUBS && rc == 0; i++) {
            struct raw_pkt k = {0};

            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (raw_read_packet(pf[i].fd, &k, 5000) != 1) {
                if (broker_wait_exit(c->b, 2000, NULL) != 0)
                    t_note("%s: connection lost while the broker runs",
                           i < N_PUBS ? c->pub[i].id : c->sub[i - N_PUBS].id);
                rc = -1;
            } else {
                rc = i < N_PUBS ? pub_on_packet(c, &c->pub[i], &k)
                                : sub_on_packet(c, &c->sub[i - N_PUBS], &k);
            }
            raw_pkt_free(&k);
        }
        for (long e = before; e < c->events && rc == 0 && publish && c->toggle; e++)
            if (t_rand(&c->rng) % TOGGLE_ONE_IN == 0)
                rc = crash_toggle(c);
        if (c->events != last_events) {
            last_events = c->events;
            last_progress = t_now_ms();
        } else if (until < 0) {
            break; /* drained: a quiet poll with nothing left to do */
        } else if (t_now_ms() - last_progress > STALL_MS) {
            t_note("no progress for %d ms", STALL_MS);
            rc = -1;
        }
    }
    return rc;
}

static int crash__connect_all(struct crash *c, bool first)
{
    int rc = 0;

    for (int i = 0; i < N_SUBS && rc == 0; i++)
        if (first || c->sub[i].online)
            rc = sub_arrive(c, &c->sub[i], first);
    for (int i = 0; i < N_PUBS && rc == 0; i++) {
        int sp = -1;

        c->pub[i].fd = crash_connect(c, c->pub[i].id, &sp);
        if (c->pub[i].fd < 0 || pub_resume(&c->pub[i]) != 0) {
            rc = -1;
        } else if (!first && sp != 1 && c->lossy) {
            c->sessions_lost++; /* its QoS 2 ids are gone: a resend may be routed again */
        } else if (!first && sp != 1) {
            crash_error(c, "%s: session lost (session present %d)", c->pub[i].id, sp);
            rc = -1;
        }
    }
    return rc;
}

int crash_connect_all(struct crash *c, bool first)
{
    int rc = crash__connect_all(c, first);

    if (rc < 0 && c->errors == 0 && broker_wait_exit(c->b, 2000, NULL) == 0)
        rc = 1; /* the broker died on the way (a kill point) */
    return rc;
}

void crash_close_all(struct crash *c)
{
    for (int i = 0; i < N_PUBS; i++) {
        if (c->pub[i].fd >= 0)
            close(c->pub[i].fd);
        c->pub[i].fd = -1;
    }
    for (int i = 0; i < N_SUBS; i++) {
        if (c->sub[i].fd >= 0)
            close(c->sub[i].fd);
        c->sub[i].fd = -1;
    }
}

void crash_tally(const struct crash *c, struct crash_tally *t)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < N_PUBS; i++) {
        const struct crash_pub *p = &c->pub[i];

        for (int seq = 0; seq < p->next_seq; seq++) {
            for (int j = 0; j < N_SUBS; j++) {
                int n = c->sub[j].count[p->qos][seq];

                if (p->acked[seq] && n == 0)
                    t->lost[p->qos]++;
                if (n > 1)
                    t->dup[p->qos]++;
                if (n > 1 && !p->resent[seq] && n - 1 > c->sub[j].dups[p->qos][seq])
                    t->dup_unexplained[p->qos]++;
            }
        }
    }
    for (int j = 0; j < N_SUBS; j++)
        for (int q = 1; q <= 2; q++)
            t->reordered[q] += c->sub[j].reordered[q];
}

struct crash *crash_new(struct broker *b, uint64_t seed, bool lossy, bool toggle)
{
    struct crash *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->b = b;
    c->rng = seed ? seed : 1;
    c->lossy = lossy;
    c->toggle = toggle;
    c->limit = MAX_SEQ;
    c->pub[0] = (struct crash_pub){.id = "crash-pub-q1", .topic = "crash/q1", .qos = 1, .fd = -1};
    c->pub[1] = (struct crash_pub){.id = "crash-pub-q2", .topic = "crash/q2", .qos = 2, .fd = -1};
    c->sub[0].id = "crash-sub-a";
    c->sub[1].id = "crash-sub-b";
    for (int j = 0; j < N_SUBS; j++) {
        c->sub[j].fd = -1;
        memset(c->sub[j].awaiting, 0xff, sizeof(c->sub[j].awaiting));
        c->sub[j].last_first[1] = c->sub[j].last_first[2] = -1;
    }
    return c;
}

void crash_free(struct crash *c)
{
    if (!c)
        return;
    crash_close_all(c);
    free(c);
}

void crash_set_limit(struct crash *c, int messages)
{
    c->limit = messages < MAX_SEQ ? messages : MAX_SEQ;
}

long crash_events(const struct crash *c)
{
    return c->events;
}

uint64_t crash_rand(struct crash *c)
{
    return t_rand(&c->rng);
}

int crash_errors(const struct crash *c)
{
    return c->errors;
}

long crash_published(const struct crash *c)
{
    return c->pub[0].next_seq + c->pub[1].next_seq;
}

long crash_inflight(const struct crash *c)
{
    return c->pub[0].inflight + c->pub[1].inflight;
}

int crash_drain(struct crash *c, int timeout_ms)
{
    struct crash_tally t;
    bool drained = false;
    int rc = 0;

    for (int j = 0; j < N_SUBS && rc == 0; j++)
        if (!c->sub[j].online)
            rc = sub_arrive(c, &c->sub[j], false);
    for (uint64_t until = t_now_ms() + (uint64_t)timeout_ms;
         rc == 0 && !drained && t_now_ms() < until;) {
        rc = crash_pump(c, -1, false);
        crash_tally(c, &t);
        /* lossy: what was lost stays lost; a quiet loop with every flow finished is the end */
        drained = crash_inflight(c) == 0 && (c->lossy || (t.lost[1] == 0 && t.lost[2] == 0));
    }
    if (rc < 0 && c->errors == 0 && broker_wait_exit(c->b, 2000, NULL) == 0)
        rc = 1;
    if (rc == 0 && !drained) {
        t_note("not drained in %d ms", timeout_ms);
        rc = -1;
    }
    return rc;
}

void crash_report(const struct crash *c, const char *label, const struct crash_tally *t)
{
    t_note("%s: QoS 1: %d published, %ld acked; QoS 2: %d published, %ld acked%s", label,
           c->pub[0].next_seq, c->pub[0].n_acked, c->pub[1].next_seq, c->pub[1].n_acked, "");
    for (int j = 0; j < N_SUBS; j++)
        t_note("%s: %ld deliveries, %ld departures, %ld takeovers, %ld QoS 2 resends recognised "
               "by packet id",
               c->sub[j].id, c->sub[j].deliveries, c->sub[j].departures, c->sub[j].takeovers,
               c->sub[j].resends_recognised);
    for (int q = 1; q <= 2; q++)
        t_note("QoS %d: lost %ld, duplicated %ld (%ld neither a DUP resend nor a publisher's "
               "resend), reordered %ld",
               q, t->lost[q], t->dup[q], t->dup_unexplained[q], t->reordered[q]);
    t_note("sessions lost %ld, errors %d", c->sessions_lost, c->errors);
}
