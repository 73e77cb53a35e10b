/*
 * 44_backup — SIGUSR1 makes a running broker write a consistent copy of its store into
 * persistence_location/backup, and that copy restores.
 *
 * copy_while_publishing: a persistent subscriber is away with thousands of messages queued for
 * it, raw QoS 1 publishers keep messages in flight, SIGUSR1 comes in the middle, and publishing
 * goes on while the copy is written. A second broker started with persistence_location on the
 * copy serves the subscriber every message acknowledged before the signal was sent, none sent
 * after the log said the copy started (its snapshot was taken by then), and from each publisher
 * a gapless prefix (a snapshot is one moment), plus the retained message and the subscription.
 *
 * The others: an existing backup/ is never replaced, persistence false has nothing to copy, a
 * second copy once the first was moved away, SIGTERM during a copy (exit 0, no half copy), and
 * cairn-db --backup for a stopped broker's store (refused, pointing at SIGUSR1, while it runs).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS      20000
#define NPUB         4
#define WINDOW       5    /* QoS 1 PUBLISHes each publisher has in flight per round */
#define PRELOAD      2000 /* queued before the copy: enough that writing it takes a while */
#define PRELOAD_LEN  4000 /* payload bytes of each */
#define SIGNAL_ROUND 10   /* SIGUSR1 goes in this publishing round */
#define MAX_ROUNDS   1000 /* rounds before giving up on the copy's start line */
#define AFTER        100  /* rounds published after the copy started */
#define MAX_SEQ      (MAX_ROUNDS * WINDOW)

static const char *const bk_conf = "max_queued_messages 0\nmax_inflight_messages 100";

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

struct pubs {
    int fd[NPUB];
    int sent[NPUB];  /* next seq to send */
    int acked[NPUB]; /* PUBACKs received (they come in order) */
};

static int pub_id(int seq)
{
    return seq % 60000 + 1;
}

/* One round: WINDOW PUBLISHes from each publisher, then (after mid, if given) their PUBACKs. */
static int pubs_round(struct pubs *p, void (*mid)(void *), void *arg)
{
    struct raw_pkt a = {0};
    char payload[32];
    int rc = -1;

    for (int i = 0; i < NPUB; i++) {
        for (int k = 0; k < WINDOW; k++) {
            int seq = p->sent[i]++;
            snprintf(payload, sizeof(payload), "P%d-%d", i, seq);
            if (raw_publish(p->fd[i], "bk/live", payload, 1, false, false, pub_id(seq)) != 0)
                goto out;
        }
    }
    if (mid)
        mid(arg);
    for (int i = 0; i < NPUB; i++) {
        while (p->acked[i] < p->sent[i]) {
            if (raw_expect(p->fd[i], RAW_PUBACK, &a, WAIT_MS) != 1 || a.pid != pub_id(p->acked[i]))
                goto out;
            raw_pkt_free(&a);
            p->acked[i]++;
        }
    }
    rc = 0;
out:
    raw_pkt_free(&a);
    return rc;
}

struct kill_at {
    struct broker *b;
    struct pubs *p;
    int acked_before[NPUB]; /* PUBACKs received before SIGUSR1 was sent */
    int rc;
};

/* Between a round's PUBLISHes and its PUBACKs: note what is acknowledged, then signal. */
static void send_usr1(void *arg)
{
    struct kill_at *k = arg;

    memcpy(k->acked_before, k->p->acked, sizeof(k->acked_before));
    k->rc = broker_signal(k->b, SIGUSR1);
}

/* cairn-db of the build under test: beside the broker's directory (build/broker/cairn). */
static void cairn_db_path(char *tool, size_t cap)
{
    const char *bin = harness_cairn_bin();
    const char *slash = strrchr(bin, '/');

    snprintf(tool, cap, "%.*s/../tools/cairn-db", slash ? (int)(slash - bin) : 1,
             slash ? bin : ".");
}

/* The queued messages cairn-db counts in the store at dir, or -1. */
static long copy_queued(const char *dir)
{
    char tool[512], *out = NULL, *line;
    long n = -1;

    cairn_db_path(tool, sizeof(tool));
    char *const argv[] = {tool, "--summary", (char *)dir, NULL};
    if (proc_run(argv, WAIT_MS, &out) != 0 || !out)
        goto out;
    line = strstr(out, "queued messages");
    if (line)
        sscanf(line, "queued messages %ld", &n);
out:
    free(out);
    return n;
}

static char *preload_payload(int n)
{
    char *s = malloc(PRELOAD_LEN + 1);

    if (s) {
        memset(s, 'x', PRELOAD_LEN);
        s[PRELOAD_LEN] = '\0';
        memcpy(s, "pre-", 4);
        snprintf(s + 4, 12, "%07d", n);
        s[11] = '-';
    }
    return s;
}

static void test_copy_while_publishing(void)
{
    struct broker_opts o = {.config = bk_conf};
    struct broker *a = NULL, *b = NULL;
    struct raw_conn_opts so = {.id = "bk-sub", .persistent = true, .keepalive = 60};
    struct pubs p = {0};
    struct kill_at k = {0};
    struct raw_pkt m = {0};
    char copy[512], conf[600], *payload = NULL;
    unsigned char *seen = NULL; /* [NPUB][MAX_SEQ] live messages, then PRELOAD preloads */
    int sent_at_start[NPUB] = {0};
    int sub = -1, fd = -1, rc = -1, sp = -1, preloads = 0, round, start_round = -1;
    long queued = 0;
    bool retained = false, busy;

    for (int i = 0; i < NPUB; i++)
        p.fd[i] = -1;
    if (harness_cairn_only("SIGUSR1 backups are Cairn's"))
        return;
    seen = calloc((size_t)NPUB * MAX_SEQ + PRELOAD, 1);
    T_ASSERT(seen);
    a = broker_start(&o);
    T_ASSERT(a);
    sub = raw_mqtt_connect(a, &so, &rc, NULL);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_subscribe(sub, 1, "bk/#", 1), 1);
    T_EQ(raw_send_disconnect(sub), 0);
    close(sub);
    sub = -1;

    /* the queue the copy must carry, and a retained message */
    for (int i = 0; i < NPUB; i++) {
        struct raw_conn_opts po = {.keepalive = 60};
        char id[32];
        snprintf(id, sizeof(id), "bk-pub-%d", i);
        po.id = id;
        p.fd[i] = raw_mqtt_connect(a, &po, &rc, NULL);
        T_ASSERT(p.fd[i] >= 0 && rc == 0);
    }
    T_EQ(raw_publish_flow(p.fd[0], "bk/retained", "kept", 1, true, 60001), 0);
    for (int n = 0; n < PRELOAD; n++) {
        payload = preload_payload(n);
        T_ASSERT(payload);
        T_EQ(raw_publish_flow(p.fd[n % NPUB], "bk/pre", payload, 1, false, 60002 + n % 1000), 0);
        free(payload);
        payload = NULL;
    }

    /*
     * Publishing, with SIGUSR1 sent while a round's messages are in flight; once the log says
     * the copy started (its snapshot is taken), AFTER more rounds while it is being written.
     */
    k.b = a;
    k.p = &p;
    for (round = 0; round < MAX_ROUNDS; round++) {
        T_EQ(pubs_round(&p, round == SIGNAL_ROUND ? send_usr1 : NULL, &k), 0);
        if (round == SIGNAL_ROUND)
            T_EQ(k.rc, 0);
        if (round >= SIGNAL_ROUND && start_round < 0 &&
            broker_wait_log(a, "SIGUSR1: backup of", 0) == 0) {
            start_round = round;
            memcpy(sent_at_start, p.sent, sizeof(sent_at_start));
        }
        if (start_round >= 0 && round >= start_round + AFTER)
            break;
    }
    T_ASSERTF(start_round >= 0, "no \"SIGUSR1: backup of\" within %d rounds", MAX_ROUNDS);
    busy = broker_wait_log(a, "backup complete", 0) != 0;
    t_note("signal after %d acks per publisher, start logged after %d sent each; %d rounds "
           "later the copy was %s",
           k.acked_before[0], sent_at_start[0], AFTER, busy ? "still being written" : "done");
    T_EQ(broker_wait_log(a, "backup complete", WAIT_MS), 0);
    T_EQ(broker_stop_term(a, WAIT_MS), 0);

    /* a second broker on the copy, which cairn-db reads first: how many messages it holds */
    snprintf(copy, sizeof(copy), "%s/%s", broker_data_dir(a), "backup");
    T_ASSERT(exists(copy));
    queued = copy_queued(copy);
    T_ASSERTF(queued > PRELOAD, "cairn-db %s: %ld queued", copy, queued);
    snprintf(conf, sizeof(conf), "%s\npersistence_location %s", bk_conf, copy);
    o.config = conf;
    b = broker_start(&o);
    T_ASSERT(b);
    T_EQ(broker_wait_log(b, "restored 1 sessions", WAIT_MS), 0);
    fd = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(sp, 1);
    for (long got = 0; got < queued; got++) {
        char text[32];
        int i, seq;
        T_EQ(raw_recv_publish(fd, &m, WAIT_MS, true), 1);
        snprintf(text, sizeof(text), "%.*s", (int)(m.payload_len < 31 ? m.payload_len : 31),
                 (const char *)m.payload);
        if (strcmp(m.topic, "bk/pre") == 0) {
            T_ASSERT(sscanf(text, "pre-%d-", &seq) == 1);
            T_ASSERT(seq >= 0 && seq < PRELOAD);
            seen[(size_t)NPUB * MAX_SEQ + (size_t)seq] = 1;
            preloads++;
        } else if (strcmp(m.topic, "bk/live") == 0) {
            T_ASSERT(sscanf(text, "P%d-%d", &i, &seq) == 2);
            T_ASSERT(i >= 0 && i < NPUB && seq >= 0 && seq < MAX_SEQ);
            T_ASSERTF(!seen[(size_t)i * MAX_SEQ + (size_t)seq], "P%d-%d twice", i, seq);
            seen[(size_t)i * MAX_SEQ + (size_t)seq] = 1;
        } else if (strcmp(m.topic, "bk/retained") == 0) {
            retained = true; /* queued for the subscriber when it was published */
        }
        raw_pkt_free(&m);
    }
    T_EQ(preloads, PRELOAD);
    T_ASSERT(retained);
    for (int i = 0; i < NPUB; i++) {
        int n = 0;
        while (n < MAX_SEQ && seen[(size_t)i * MAX_SEQ + (size_t)n])
            n++;
        t_note("publisher %d: copy holds P%d-0..%d (acked before the signal: %d, sent before "
               "the start was logged: %d)",
               i, i, n - 1, k.acked_before[i], sent_at_start[i]);
        T_ASSERTF(n >= k.acked_before[i],
                  "publisher %d: P%d-%d acknowledged before the copy, missing from it", i, i, n);
        T_ASSERTF(n <= sent_at_start[i],
                  "publisher %d: P%d-%d sent after the copy's snapshot, in it", i, i, n - 1);
        for (int s = n; s < MAX_SEQ; s++)
            T_ASSERTF(!seen[(size_t)i * MAX_SEQ + (size_t)s], "publisher %d: gap before P%d-%d", i,
                      i, s);
    }
    /* the retained message as a new subscriber sees it */
    raw_pkt_free(&m);
    T_EQ(raw_subscribe(fd, 2, "bk/retained", 1), 1);
    T_EQ(raw_recv_publish(fd, &m, WAIT_MS, true), 1);
    T_ASSERT(m.retain && strcmp(m.topic, "bk/retained") == 0);
out:
    raw_pkt_free(&m);
    free(payload);
    free(seen);
    for (int i = 0; i < NPUB; i++)
        if (p.fd[i] >= 0)
            close(p.fd[i]);
    if (sub >= 0)
        close(sub);
    if (fd >= 0)
        close(fd);
    broker_free(b);
    broker_free(a);
}

/* A backup/ already there is never replaced; once moved away, the next copy is made. */
static void test_existing_backup_kept(void)
{
    struct broker *b = NULL;
    struct raw_conn_opts po = {.id = "bk-one", .keepalive = 60};
    char dir[512], moved[600], marker[600];
    FILE *f;
    int fd = -1, rc = -1;

    if (harness_cairn_only("SIGUSR1 backups are Cairn's"))
        return;
    b = broker_start(NULL);
    T_ASSERT(b);
    snprintf(dir, sizeof(dir), "%s/backup", broker_data_dir(b));
    snprintf(moved, sizeof(moved), "%s/backup-1", broker_tmp_dir(b));
    snprintf(marker, sizeof(marker), "%s/mine", dir);
    T_EQ(mkdir(dir, 0700), 0);
    f = fopen(marker, "w");
    T_ASSERT(f);
    fclose(f);
    T_EQ(broker_signal(b, SIGUSR1), 0);
    T_EQ(broker_wait_log(b, "exists: move it away first", WAIT_MS), 0);
    T_ASSERT(exists(marker));
    fd = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(raw_publish_flow(fd, "bk/one", "1", 1, true, 1), 0);
    /* the operator moves it away and asks again */
    T_EQ(rename(dir, moved), 0);
    T_EQ(broker_signal(b, SIGUSR1), 0);
    T_EQ(broker_wait_log(b, "backup complete", WAIT_MS), 0);
    snprintf(marker, sizeof(marker), "%s/cairn.db/CURRENT", dir);
    T_ASSERT(exists(marker));
    snprintf(marker, sizeof(marker), "%s/backup.partial", broker_data_dir(b));
    T_ASSERT(!exists(marker));
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

static void test_no_persistence(void)
{
    struct broker_opts o = {.no_persistence = true};
    struct broker *b = NULL;

    if (harness_cairn_only("SIGUSR1 backups are Cairn's"))
        return;
    b = broker_start(&o);
    T_ASSERT(b);
    T_EQ(broker_signal(b, SIGUSR1), 0);
    T_EQ(broker_wait_log(b, "no backup: persistence is false", WAIT_MS), 0);
    T_ASSERT(broker_alive(b));
    T_EQ(broker_stop_term(b, WAIT_MS), 0);
out:
    broker_free(b);
}

/* SIGTERM right behind SIGUSR1: a clean exit, and a whole copy or none (never a half one). */
static void test_sigterm_during_copy(void)
{
    struct broker *b = NULL;
    struct raw_conn_opts po = {.id = "bk-fill", .keepalive = 60};
    struct raw_conn_opts so = {.id = "bk-away", .persistent = true, .keepalive = 60};
    char path[600], *payload = NULL, *log = NULL;
    int fd = -1, sub = -1, rc = -1, st = 0;

    if (harness_cairn_only("SIGUSR1 backups are Cairn's"))
        return;
    b = broker_start(NULL);
    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, NULL);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_subscribe(sub, 1, "bk/#", 1), 1);
    close(sub);
    sub = -1;
    fd = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(fd >= 0 && rc == 0);
    for (int n = 0; n < 500; n++) {
        payload = preload_payload(n);
        T_ASSERT(payload);
        T_EQ(raw_publish_flow(fd, "bk/fill", payload, 1, false, n + 1), 0);
        free(payload);
        payload = NULL;
    }
    T_EQ(broker_signal(b, SIGUSR1), 0);
    T_EQ(broker_wait_log(b, "SIGUSR1: backup of", WAIT_MS), 0);
    T_EQ(broker_signal(b, SIGTERM), 0);
    T_EQ(broker_wait_exit(b, WAIT_MS, &st), 0);
    T_ASSERTF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
    log = broker_log(b);
    T_ASSERT(log);
    snprintf(path, sizeof(path), "%s/backup.partial", broker_data_dir(b));
    T_ASSERT(!exists(path));
    snprintf(path, sizeof(path), "%s/backup/cairn.db/CURRENT", broker_data_dir(b));
    if (strstr(log, "backup complete")) {
        T_ASSERT(exists(path));
    } else {
        T_ASSERT(strstr(log, "cancelling the backup"));
        snprintf(path, sizeof(path), "%s/backup", broker_data_dir(b));
        T_ASSERT(!exists(path));
    }
out:
    free(log);
    free(payload);
    if (fd >= 0)
        close(fd);
    if (sub >= 0)
        close(sub);
    broker_free(b);
}

/*
 * cairn-db on a running broker's store: refused, pointing at SIGUSR1. Once the broker is
 * stopped: cairn-db --backup DEST, and a broker on DEST has the queue and the retained message.
 */
static void test_cairn_db_backup(void)
{
    struct broker_opts o = {0};
    struct broker *a = NULL, *b = NULL;
    struct raw_conn_opts po = {.id = "bk-db-pub", .keepalive = 60};
    struct raw_conn_opts so = {.id = "bk-db-sub", .persistent = true, .keepalive = 60};
    struct raw_pkt m = {0};
    char tool[512], dest[512], conf[600], *out = NULL;
    int fd = -1, sub = -1, rc = -1;

    if (harness_cairn_only("cairn-db is Cairn's"))
        return;
    cairn_db_path(tool, sizeof(tool));
    a = broker_start(NULL);
    T_ASSERT(a);
    sub = raw_mqtt_connect(a, &so, &rc, NULL);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_subscribe(sub, 1, "bk/#", 1), 1);
    close(sub);
    sub = -1;
    fd = raw_mqtt_connect(a, &po, &rc, NULL);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(raw_publish_flow(fd, "bk/db", "queued", 1, false, 1), 0);
    T_EQ(raw_publish_flow(fd, "bk/kept", "retained", 1, true, 2), 0);
    snprintf(dest, sizeof(dest), "%s/offline-copy", broker_tmp_dir(a));
    {
        char *const argv[] = {tool, "--backup", dest, (char *)broker_data_dir(a), NULL};
        T_EQ(proc_run(argv, WAIT_MS, &out), 1);
        T_ASSERTF(out && strstr(out, "in use") && strstr(out, "SIGUSR1"), "%s", out);
        free(out);
        out = NULL;
        T_EQ(broker_stop_term(a, WAIT_MS), 0);
        T_EQ(proc_run(argv, WAIT_MS, &out), 0);
        T_ASSERTF(out && strstr(out, "copied into"), "%s", out ? out : "");
    }
    snprintf(conf, sizeof(conf), "persistence_location %s", dest);
    o.config = conf;
    b = broker_start(&o);
    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, NULL);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_recv_publish(sub, &m, WAIT_MS, true), 1);
    T_ASSERT(strcmp(m.topic, "bk/db") == 0);
    raw_pkt_free(&m);
    T_EQ(raw_recv_publish(sub, &m, WAIT_MS, true), 1);
    T_ASSERT(strcmp(m.topic, "bk/kept") == 0);
    raw_pkt_free(&m);
    T_EQ(raw_subscribe(sub, 2, "bk/kept", 1), 1);
    T_EQ(raw_recv_publish(sub, &m, WAIT_MS, true), 1);
    T_ASSERT(m.retain);
out:
    raw_pkt_free(&m);
    free(out);
    if (fd >= 0)
        close(fd);
    if (sub >= 0)
        close(sub);
    broker_free(b);
    broker_free(a);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"copy_while_publishing", test_copy_while_publishing},
        {"existing_backup_kept", test_existing_backup_kept},
        {"no_persistence", test_no_persistence},
        {"sigterm_during_copy", test_sigterm_during_copy},
        {"cairn_db_backup", test_cairn_db_backup},
    };
    return T_MAIN(cases);
}
