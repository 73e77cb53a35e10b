/*
 * cairn-db — inspect a Cairn store offline: sessions with their queue depth, in-flight count and
 * subscriptions, retained topics, totals; or copy it.
 *
 *   cairn-db [--summary] DIR
 *   cairn-db --backup DEST DIR
 *
 * The store is opened read-only from a private copy (persist_options.read_only), so inspecting
 * it changes nothing, not even LevelDB's own files. A store a running broker holds is refused
 * with that broker's pid: a running broker writes its own consistent copy on SIGUSR1.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqtt.h"
#include "persist.h"

struct sess {
    char *cid;
    size_t cidlen;
    int64_t last_seen;
    struct persist_queue_info q;
    size_t nsubs, ninbound;
    uint8_t owner; /* enum persist_owner */
    char *user;    /* PERSIST_OWNER_USER or _CLAIMED, else NULL */
    size_t userlen;
};

struct sub {
    size_t sess; /* index into sessions */
    char *filter;
    size_t len;
    uint8_t qos;
};

struct retained {
    char *topic;
    size_t len;
    size_t bytes;
    uint8_t qos;
};

struct db {
    struct sess *sess;
    size_t nsess, capsess;
    size_t cur; /* merge cursor: subs and inbound ids come in session order */
    struct sub *subs;
    size_t nsubs, capsubs;
    struct retained *ret;
    size_t nret, capret;
    int oom;
};

static void *grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return arr;
    size_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(arr, c * elem);
    if (q)
        *cap = c;
    return q;
}

static char *dup(struct mqtt_str s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.p, s.len);
        p[s.len] = '\0';
    }
    return p;
}

/* Print bytes as text, escaping what a terminal should not see. */
static void put_str(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static size_t find_session(struct db *d, struct mqtt_str cid)
{
    /* the same order as the sessions: a cursor that only moves forward */
    for (; d->cur < d->nsess; d->cur++) {
        struct sess *s = &d->sess[d->cur];
        if (s->cidlen == cid.len && (cid.len == 0 || memcmp(s->cid, cid.p, cid.len) == 0))
            return d->cur;
    }
    d->cur = 0;
    for (; d->cur < d->nsess; d->cur++) {
        struct sess *s = &d->sess[d->cur];
        if (s->cidlen == cid.len && (cid.len == 0 || memcmp(s->cid, cid.p, cid.len) == 0))
            return d->cur;
    }
    return SIZE_MAX;
}

static int on_session(void *ctx, struct mqtt_str cid, const struct persist_session *s,
                      const struct persist_queue_info *q)
{
    struct db *d = ctx;
    struct sess *a = grow(d->sess, &d->capsess, d->nsess + 1, sizeof *d->sess);
    if (!a)
        return -ENOMEM;
    d->sess = a;
    a[d->nsess] = (struct sess){dup(cid), cid.len, s->last_seen, *q, 0, 0, s->owner, NULL, 0};
    if (s->owner == PERSIST_OWNER_USER || s->owner == PERSIST_OWNER_CLAIMED) {
        a[d->nsess].user = dup(s->user);
        a[d->nsess].userlen = s->user.len;
    }
    if (!a[d->nsess].cid ||
        ((s->owner == PERSIST_OWNER_USER || s->owner == PERSIST_OWNER_CLAIMED) &&
         !a[d->nsess].user)) {
        free(a[d->nsess].cid);
        free(a[d->nsess].user);
        return -ENOMEM;
    }
    d->nsess++;
    return 0;
}

static int on_sub(void *ctx, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos)
{
    struct db *d = ctx;
    size_t i = find_session(d, cid);
    struct sub *a = grow(d->subs, &d->capsubs, d->nsubs + 1, sizeof *d->subs);
    if (!a)
        return -ENOMEM;
    d->subs = a;
    a[d->nsubs] = (struct sub){i, dup(filter), filter.len, qos};
    if (!a[d->nsubs].filter)
        return -ENOMEM;
    d->nsubs++;
    if (i != SIZE_MAX)
        d->sess[i].nsubs++;
    return 0;
}

static int on_inbound(void *ctx, struct mqtt_str cid, uint16_t packet_id)
{
    struct db *d = ctx;
    size_t i = find_session(d, cid);
    if (i != SIZE_MAX)
        d->sess[i].ninbound++;
    return 0;
}

static int on_retain(void *ctx, const struct persist_msg *m)
{
    struct db *d = ctx;
    struct retained *a = grow(d->ret, &d->capret, d->nret + 1, sizeof *d->ret);
    if (!a)
        return -ENOMEM;
    d->ret = a;
    a[d->nret] = (struct retained){dup(m->topic), m->topic.len, m->payload.len, m->qos};
    if (!a[d->nret].topic)
        return -ENOMEM;
    d->nret++;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn-db [--summary] DIR\n"
               "       cairn-db --backup DEST DIR\n"
               "Inspect a Cairn store (persistence_location) without changing it: sessions with\n"
               "queue depth, in-flight count and subscriptions, retained topics, and totals.\n"
               "The store is read from a private copy; a store a running broker holds is\n"
               "refused (send that broker SIGUSR1: it copies its store into DIR/backup).\n"
               "  -s, --summary      totals only\n"
               "  -b, --backup DEST  copy the store into the new directory DEST, which then\n"
               "                     serves as a persistence_location\n"
               "  -h, --help         this text\n");
}

/* cairn-db --backup: the broker's own copy (persist_backup_start), run to its end here. */
static int backup(struct persist *p, const char *dir, const char *dest)
{
    struct persist_backup_stats st;
    struct pollfd pfd = {.events = POLLIN};
    char err[1024];
    int rc = persist_backup_start(p, dest, err, sizeof err);

    if (rc == 0) {
        pfd.fd = persist_backup_fd(p);
        while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
            ;
        rc = persist_backup_finish(p, &st, err, sizeof err);
    }
    if (rc < 0) {
        fprintf(stderr, "cairn-db: %s\n", err);
        return 1;
    }
    printf("store %s copied into %s (%" PRIu64 " records, %" PRIu64 " bytes)\n"
           "to restore: persistence_location %s\n",
           dir, dest, st.records, st.bytes, dest);
    return 0;
}

static void print_time(int64_t t)
{
    char buf[64];
    time_t tt = (time_t)t;
    struct tm tm;
    if (t > 0 && gmtime_r(&tt, &tm) && strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        printf("%s", buf);
    else
        printf("%" PRId64, t);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *dest = NULL;
    bool summary = false;
    struct persist *p = NULL;
    struct persist_stats st;
    struct db d = {0};
    char err[1024];
    uint64_t max_id = 0;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--summary") == 0) {
            summary = true;
        } else if ((strcmp(argv[i], "-b") == 0 || strcmp(argv[i], "--backup") == 0) &&
                   i + 1 < argc && !dest) {
            dest = argv[++i];
        } else if (argv[i][0] == '-' || dir) {
            usage(stderr);
            return 2;
        } else {
            dir = argv[i];
        }
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }

    struct persist_options opt = {.dir = dir, .read_only = true};
    struct persist_restore_ops ops = {on_session, on_sub, on_inbound, on_retain};
    int o = persist_open(&opt, &p, err, sizeof err);
    if (o < 0) {
        fprintf(stderr, "cairn-db: %s\n", err);
        if (o == -EBUSY)
            fprintf(stderr,
                    "cairn-db: a running broker copies its own store: send it SIGUSR1 "
                    "and it writes a consistent copy into %s/backup\n",
                    dir);
        goto out;
    }
    if (dest) {
        rc = backup(p, dir, dest);
        goto out;
    }
    int r = persist_restore(p, &ops, &d, &max_id, err, sizeof err);
    if (r != 0) {
        if (r == -ENOMEM)
            snprintf(err, sizeof err, "out of memory");
        fprintf(stderr, "cairn-db: %s\n", err);
        goto out;
    }
    persist_restore_stats(p, &st);

    printf("store %s\n", dir);
    if (!summary) {
        printf("\nsessions (%zu)\n", d.nsess);
        size_t j = 0;
        for (size_t i = 0; i < d.nsess; i++) {
            struct sess *s = &d.sess[i];
            printf("  ");
            put_str(s->cid, s->cidlen);
            printf("  last seen ");
            print_time(s->last_seen);
            if (s->owner == PERSIST_OWNER_USER || s->owner == PERSIST_OWNER_CLAIMED) {
                printf("  owner %s'", s->owner == PERSIST_OWNER_CLAIMED ? "(unchecked) " : "");
                put_str(s->user, s->userlen);
                printf("'");
            } else {
                printf("  owner %s", s->owner == PERSIST_OWNER_ANONYMOUS ? "anonymous" : "unknown");
            }
            printf("  queued %" PRIu64 " (%" PRIu64 " bytes", s->q.count, s->q.bytes);
            if (s->q.count)
                printf(", seq %" PRIu64 "..%" PRIu64, s->q.first_seq, s->q.last_seq);
            printf(")  in-flight %" PRIu64, s->q.inflight);
            if (s->ninbound)
                printf("  inbound QoS 2 ids %zu", s->ninbound);
            printf("\n");
            for (; j < d.nsubs && d.subs[j].sess == i; j++) {
                printf("      sub ");
                put_str(d.subs[j].filter, d.subs[j].len);
                printf("  qos %u\n", d.subs[j].qos);
            }
        }
        printf("\nretained (%zu)\n", d.nret);
        for (size_t i = 0; i < d.nret; i++) {
            printf("  ");
            put_str(d.ret[i].topic, d.ret[i].len);
            printf("  qos %u  %zu bytes\n", d.ret[i].qos, d.ret[i].bytes);
        }
        printf("\n");
    }
    printf("totals\n");
    printf("  sessions          %" PRIu64 "\n", st.sessions);
    printf("  subscriptions     %" PRIu64 "\n", st.subs);
    printf("  queued messages   %" PRIu64 " (%" PRIu64 " payload bytes)\n", st.queued,
           st.queued_bytes);
    printf("  in flight         %" PRIu64 "\n", st.inflight);
    printf("  inbound QoS 2 ids %" PRIu64 "\n", st.inbound);
    printf("  message bodies    %" PRIu64 " (%" PRIu64 " payload bytes, stored once each)\n",
           st.bodies, st.body_bytes);
    printf("  retained          %" PRIu64 "\n", st.retained);
    printf("  highest msg id    %" PRIu64 "\n", max_id);
    if (st.garbage || st.orphans || st.missing)
        printf("  needs repair      %" PRIu64 " unreferenced bodies, %" PRIu64
               " records without a session (the broker removes both at start); %" PRIu64
               " missing bodies (the broker refuses to start)\n",
               st.garbage, st.orphans, st.missing);
    rc = 0;
out:
    persist_close(p);
    for (size_t i = 0; i < d.nsess; i++) {
        free(d.sess[i].cid);
        free(d.sess[i].user);
    }
    for (size_t i = 0; i < d.nsubs; i++)
        free(d.subs[i].filter);
    for (size_t i = 0; i < d.nret; i++)
        free(d.ret[i].topic);
    free(d.sess);
    free(d.subs);
    free(d.ret);
    return rc;
}
