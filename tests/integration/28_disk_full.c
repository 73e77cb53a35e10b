/*
 * 28_disk_full — a full disk: writes fail, acknowledgements stop, space returns, they resume;
 * the store always reopens and every acknowledged message is delivered.
 *
 * The full disk is the broker's own file-size limit (RLIMIT_FSIZE, set on the running process
 * with prlimit): a write that would grow a store file past it comes up short, the next fails —
 * as on a disk that fills. A publisher sends QoS 1 messages one at a time while the limit is
 * lowered and raised again; a persistent subscriber is offline throughout. Then the broker is
 * killed (kill -9) and restarted on the store: it must open (a failed write leaves at most a
 * torn tail, never a log LevelDB refuses), cairn-db must read it, and the subscriber must get
 * every message whose PUBACK the publisher saw, in order.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_MAX 2000

struct df {
    struct broker *b;
    int pub;
    int next;          /* next message number to publish */
    bool acked[N_MAX]; /* PUBACK seen */
    int n_acked;
};

/* The size of the largest file in the store (DIR/cairn.db): the limit is set just above it. */
static long df_store_max(const struct broker *b)
{
    char dir[512];
    DIR *d;
    struct dirent *de;
    long max = 0;

    snprintf(dir, sizeof(dir), "%s/cairn.db", broker_data_dir(b));
    d = opendir(dir);
    while (d && (de = readdir(d)) != NULL) {
        char path[1024];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > max)
            max = st.st_size;
    }
    if (d)
        closedir(d);
    return max;
}

/* The soft limit only: raising it again needs no privilege. */
static int df_limit(struct broker *b, rlim_t lim)
{
    struct rlimit rl = {lim, RLIM_INFINITY};

    return prlimit(broker_pid(b), RLIMIT_FSIZE, &rl, NULL);
}

static int df_connect(struct df *d)
{
    struct raw_conn_opts o = {.id = "df-pub", .persistent = true, .keepalive = 60};
    int rc = -1;

    if (d->pub >= 0)
        close(d->pub);
    d->pub = raw_mqtt_connect(d->b, &o, &rc, NULL);
    return d->pub >= 0 && rc == 0 ? 0 : -1;
}

/*
 * Publish message i at QoS 1 with a payload of about 1 KiB and wait for its PUBACK: 1 acked,
 * 0 the broker closed the connection without acknowledging (a failed write), -1 error.
 */
static int df_publish(struct df *d, int i)
{
    char payload[1100];
    struct raw_pkt k = {0};
    int r, rc = -1;

    snprintf(payload, sizeof(payload), "%d %01000d", i, 0);
    if (raw_publish(d->pub, "df/q1", payload, 1, false, false, i % 65535 + 1) != 0)
        return 0;
    r = raw_read_packet(d->pub, &k, 10000);
    if (r == 1 && (k.first >> 4) == RAW_PUBACK && k.pid == i % 65535 + 1) {
        d->acked[i] = true;
        d->n_acked++;
        rc = 1;
    } else if (r < 0) {
        rc = 0; /* closed: no acknowledgement for what the store did not take */
    }
    raw_pkt_free(&k);
    return rc;
}

/*
 * A crash now (kill -9), then cairn-db on the store and a restart on it: it opens, and the
 * subscriber gets every message whose PUBACK the publisher saw, in order (a message stored but
 * whose PUBACK was lost with its connection may come too: at least once).
 */
static void df_crash_and_check(struct df *d)
{
    struct raw_conn_opts so = {.id = "df-sub", .persistent = true, .keepalive = 60};
    char cmd[1024], *out = NULL;
    int sub = -1, rc = -1, sp = -1, got = 0;

    if (d->pub >= 0)
        close(d->pub);
    d->pub = -1;
    T_EQ(broker_kill9(d->b), 0);
    {
        char *argv[] = {cmd, "--summary", (char *)broker_data_dir(d->b), NULL};
        const char *slash = strrchr(harness_cairn_bin(), '/');
        const char *q;
        long queued;
        snprintf(cmd, sizeof(cmd), "%.*s/../tools/cairn-db",
                 slash ? (int)(slash - harness_cairn_bin()) : 1, slash ? harness_cairn_bin() : ".");
        T_EQ(proc_run(argv, 30000, &out), 0);
        q = strstr(out, "queued messages");
        queued = q ? strtol(q + strlen("queued messages"), NULL, 10) : -1;
        T_ASSERTF(queued >= d->n_acked, "cairn-db shows %ld queued, %d were acknowledged:\n%s",
                  queued, d->n_acked, out);
    }
    T_EQ(broker_restart(d->b), 0);
    sub = raw_mqtt_connect(d->b, &so, &rc, &sp);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(sp, 1);
    for (int i = 0; i < d->next; i++) {
        struct raw_pkt k = {0};
        int n = -1;

        if (!d->acked[i])
            continue;
        while (n < i) {
            T_ASSERTF(raw_recv_publish(sub, &k, 10000, true) == 1, "message %d (acknowledged) lost",
                      i);
            n = atoi((const char *)k.payload);
            raw_pkt_free(&k);
        }
        T_ASSERTF(n == i, "message %d (acknowledged) lost: got %d", i, n);
        got++;
    }
    t_note("%d acknowledged messages, all delivered after the restart", got);
    T_EQ(got, d->n_acked);
out:
    free(out);
    if (sub >= 0)
        close(sub);
}

static void test_disk_full(void)
{
    struct raw_conn_opts so = {.id = "df-sub", .persistent = true, .keepalive = 60};
    struct df *d = calloc(1, sizeof(*d));
    int sub = -1, rc = -1, sp = -1, refused = 0, acked_full = 0;

    if (harness_cairn_only("Cairn's store and its reopen after failed writes"))
        goto out;
    T_ASSERT(d);
    d->pub = -1;
    d->b = broker_start(NULL);
    T_ASSERT(d->b);
    sub = raw_mqtt_connect(d->b, &so, &rc, &sp);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_subscribe(sub, 1, "df/#", 1), 1);
    close(sub);
    sub = -1;
    T_EQ(df_connect(d), 0);
    for (int i = 0; i < 50; i++)
        T_EQ(df_publish(d, d->next++), 1);

    /*
     * The limit: a write that grows a store file past it comes up short, the next fails. After
     * each failure the store reopens into fresh files, which have room again up to the limit:
     * refusals and acknowledgements alternate, and each must be right.
     */
    T_EQ(df_limit(d->b, (rlim_t)df_store_max(d->b) + 20000), 0);
    while (refused < 10 && d->next < N_MAX / 2) {
        int r;
        if (d->pub < 0 && df_connect(d) != 0) {
            refused++; /* the CONNECT's session record could not be written either */
            d->pub = -1;
            continue;
        }
        r = df_publish(d, d->next++);
        T_ASSERT(r >= 0);
        if (r == 0) {
            refused++;
            close(d->pub);
            d->pub = -1;
        } else if (refused) {
            acked_full++; /* acknowledged after a refusal: only if its write succeeded */
        }
    }
    T_ASSERTF(refused > 0, "the file-size limit never failed a write (%d published)", d->next);
    t_note("file-size limit: %d acknowledged messages, %d refusals, %d acknowledged between them",
           d->n_acked, refused, acked_full);

    /* space returns: acknowledgements resume (the store reopens first) */
    T_EQ(df_limit(d->b, RLIM_INFINITY), 0);
    for (int i = 0, ok = 0; ok < 50; i++) {
        T_ASSERTF(i < 200, "no acknowledgement after space returned (%d tries)", i);
        if (d->pub < 0 && df_connect(d) != 0) {
            t_nap_ms(20); /* the reopen is retried a moment after a failed one */
            continue;
        }
        if (df_publish(d, d->next) == 1) {
            d->next++;
            ok++;
        } else {
            close(d->pub);
            d->pub = -1;
            t_nap_ms(20);
        }
    }
    T_ASSERT(broker_wait_log(d->b, "store writable again", 5000) == 0);

    df_crash_and_check(d);
out:
    if (sub >= 0)
        close(sub);
    if (d) {
        if (d->pub >= 0)
            close(d->pub);
        broker_free(d->b);
    }
    free(d);
}

/*
 * A real full disk: the store on a small tmpfs, filled by another file. Once a write fails the
 * store cannot even reopen (no room for its files), so nothing is acknowledged until the other
 * file goes; then the store reopens and acknowledgements resume. Needs mount(2): as root with
 * CAP_SYS_ADMIN (CI); skipped, saying so, elsewhere.
 */
static void test_disk_full_tmpfs(void)
{
    struct raw_conn_opts so = {.id = "df-sub", .persistent = true, .keepalive = 60};
    struct df *d = calloc(1, sizeof(*d));
    char filler[512], opts[64];
    bool mounted = false;
    int sub = -1, rc = -1, sp = -1, refused = 0;
    uint64_t t_full;

    if (harness_cairn_only("Cairn's store and its reopen after failed writes"))
        goto out;
    T_ASSERT(d);
    d->pub = -1;
    d->b = broker_start(NULL);
    T_ASSERT(d->b);
    T_EQ(broker_stop_term(d->b, 10000), 0);
    snprintf(opts, sizeof(opts), "size=%dk,mode=0700", 4096);
    if (mount("cairn-df", broker_data_dir(d->b), "tmpfs", 0, opts) != 0) {
        t_skip("mounting a tmpfs needs CAP_SYS_ADMIN (the file-size limit case ran)");
        goto out;
    }
    mounted = true;
    T_EQ(broker_restart(d->b), 0); /* a fresh store on the tmpfs */
    sub = raw_mqtt_connect(d->b, &so, &rc, &sp);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_subscribe(sub, 1, "df/#", 1), 1);
    close(sub);
    sub = -1;
    T_EQ(df_connect(d), 0);
    for (int i = 0; i < 50; i++)
        T_EQ(df_publish(d, d->next++), 1);

    /* fill the disk but for a little room */
    snprintf(filler, sizeof(filler), "%s/filler", broker_data_dir(d->b));
    {
        FILE *f = fopen(filler, "w");
        static char chunk[4096];
        T_ASSERT(f);
        while (fwrite(chunk, 1, sizeof(chunk), f) == sizeof(chunk) && fflush(f) == 0) {
        }
        fclose(f);
    }
    /* fwrite stopped at ENOSPC: give back 64 KiB so that a few writes fit, then none */
    {
        struct stat st;
        T_EQ(stat(filler, &st), 0);
        T_EQ(truncate(filler, st.st_size > 65536 ? st.st_size - 65536 : 0), 0);
    }
    while (refused == 0 && d->next < N_MAX / 2) {
        int r = df_publish(d, d->next++);
        T_ASSERT(r >= 0);
        if (r == 0)
            refused++;
    }
    T_ASSERTF(refused == 1, "the disk never filled (%d published)", d->next);
    /* full: nothing is acknowledged, for a second of attempts */
    t_full = t_now_ms();
    while (t_now_ms() - t_full < 1000) {
        int r;
        close(d->pub);
        d->pub = -1;
        if (df_connect(d) != 0) {
            refused++;
            continue;
        }
        r = df_publish(d, d->next++);
        T_ASSERTF(r == 0, "message %d acknowledged on a full disk", d->next - 1);
        refused++;
    }
    t_note("full disk: %d acknowledged before, then %d attempts refused in 1 s", d->n_acked,
           refused);
    /* space returns */
    T_EQ(unlink(filler), 0);
    for (int i = 0, ok = 0; ok < 50; i++) {
        T_ASSERTF(i < 500, "no acknowledgement after space returned (%d tries)", i);
        if (d->pub < 0 && df_connect(d) != 0) {
            t_nap_ms(20); /* the reopen is retried a moment after a failed one */
            continue;
        }
        if (df_publish(d, d->next) == 1) {
            d->next++;
            ok++;
        } else {
            close(d->pub);
            d->pub = -1;
            t_nap_ms(20);
        }
    }
    T_ASSERT(broker_wait_log(d->b, "store writable again", 5000) == 0);
    df_crash_and_check(d);
out:
    if (sub >= 0)
        close(sub);
    if (d) {
        if (d->pub >= 0)
            close(d->pub);
        if (mounted) {
            if (d->b && broker_alive(d->b))
                broker_kill9(d->b);
            umount2(broker_data_dir(d->b), MNT_DETACH);
        }
        broker_free(d->b);
    }
    free(d);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"disk_full", test_disk_full},
        {"disk_full_tmpfs", test_disk_full_tmpfs},
    };
    return T_MAIN(cases);
}
