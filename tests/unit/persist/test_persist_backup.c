/*
 * test_persist_backup.c — persist_backup.c against real LevelDB: a copy holds what was committed
 * before it started and nothing after, opens as a store of its own, never replaces an existing
 * DIR, removes what an interrupted copy left, and ends cleanly when cancelled, when the store is
 * closed under it, or when a failed write makes the store reopen under it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "persist.h"

#define WAIT_MS 20000

struct fx {
    char root[64];
    char dir[96]; /* persistence_location of the live store */
    char copy[96];
    char err[512];
    struct persist *p;
};

static struct mqtt_str str(const char *s)
{
    return (struct mqtt_str){(const uint8_t *)s, strlen(s)};
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->root, "/tmp/cairn-backup-test-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/store", f->root);
    snprintf(f->copy, sizeof f->copy, "%s/copy", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    persist_close(f->p);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct persist *open_store(const char *dir, char *err, size_t errlen)
{
    struct persist_options o = {.dir = dir};
    struct persist *p = NULL;
    uint64_t max_id;
    if (persist_open(&o, &p, err, errlen) != 0)
        fail_msg("open %s: %s", dir, err);
    if (persist_restore(p, NULL, NULL, &max_id, err, errlen) != 0)
        fail_msg("restore %s: %s", dir, err);
    return p;
}

/* n QoS 1 messages queued for client cid, seq from..from+n-1, one commit. */
static void queue_msgs(struct persist *p, const char *cid, uint64_t from, int n, size_t size)
{
    static char payload[4096];
    char err[256];
    struct persist_session s = {.last_seen = 1};

    memset(payload, 'p', sizeof payload);
    persist_session_put(p, str(cid), &s);
    for (int i = 0; i < n; i++) {
        uint64_t id = from + (uint64_t)i;
        struct persist_msg m = {id, str("t"), {(const uint8_t *)payload, size},
                                1,  false,    {NULL, 0}};
        struct persist_qentry e = {id, id, 0, 1, PERSIST_Q_QUEUED};
        persist_enqueue(p, str(cid), &e, &m);
    }
    if (persist_commit(p, err, sizeof err) != 0)
        fail_msg("commit: %s", err);
}

/* Wait for the backup's descriptor, then finish it. */
static int wait_finish(struct persist *p, struct persist_backup_stats *st, char *err, size_t errlen)
{
    struct pollfd pfd = {.fd = persist_backup_fd(p), .events = POLLIN};
    assert_true(pfd.fd >= 0);
    assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
    return persist_backup_finish(p, st, err, errlen);
}

static struct persist_stats copy_stats(const char *dir)
{
    char err[512];
    struct persist_stats st;
    struct persist *p = open_store(dir, err, sizeof err);
    persist_restore_stats(p, &st);
    persist_close(p);
    return st;
}

static void test_copy_is_the_snapshot(void **state)
{
    struct fx *f = *state;
    struct persist_backup_stats bs;
    struct persist_stats st;

    f->p = open_store(f->dir, f->err, sizeof f->err);
    queue_msgs(f->p, "a", 1, 300, 100);
    assert_int_equal(persist_backup_start(f->p, f->copy, f->err, sizeof f->err), 0);
    assert_string_equal(persist_backup_dir(f->p), f->copy);
    /* while it runs: more commits (not in the copy), and no second backup */
    queue_msgs(f->p, "b", 1000, 50, 100);
    assert_int_equal(persist_backup_start(f->p, NULL, f->err, sizeof f->err), -EBUSY);
    assert_int_equal(wait_finish(f->p, &bs, f->err, sizeof f->err), 0);
    assert_null(persist_backup_dir(f->p));
    assert_int_equal(persist_backup_fd(f->p), -1);
    assert_true(bs.records > 300 && bs.bytes > 300 * 100);
    assert_true(exists(f->copy));
    {
        char partial[128];
        snprintf(partial, sizeof partial, "%s.partial", f->copy);
        assert_false(exists(partial));
    }
    st = copy_stats(f->copy);
    assert_int_equal(st.sessions, 1);
    assert_int_equal(st.queued, 300);
    assert_int_equal(st.bodies, 300);
    assert_int_equal(st.queued_bytes, 300 * 100);
    /* the live store carries on with everything */
    persist_close(f->p);
    f->p = NULL;
    st = copy_stats(f->dir);
    assert_int_equal(st.sessions, 2);
    assert_int_equal(st.queued, 350);
}

static void test_default_dir_and_no_replace(void **state)
{
    struct fx *f = *state;
    char def[160];

    f->p = open_store(f->dir, f->err, sizeof f->err);
    queue_msgs(f->p, "a", 1, 10, 10);
    assert_int_equal(persist_backup_start(f->p, NULL, f->err, sizeof f->err), 0);
    snprintf(def, sizeof def, "%s/%s", f->dir, PERSIST_BACKUP_NAME);
    assert_string_equal(persist_backup_dir(f->p), def);
    assert_int_equal(wait_finish(f->p, NULL, f->err, sizeof f->err), 0);
    assert_int_equal(copy_stats(def).queued, 10);
    /* a location given with a trailing slash, as /var/lib/cairn/ is: no double slash */
    persist_close(f->p);
    strcat(f->dir, "/");
    f->p = open_store(f->dir, f->err, sizeof f->err);
    assert_int_equal(persist_backup_start(f->p, NULL, f->err, sizeof f->err), -EEXIST);
    assert_non_null(strstr(f->err, def));
    assert_null(strstr(f->err, "//"));
    /* a second one would replace it: refused, nothing started, the first copy intact */
    queue_msgs(f->p, "a", 100, 5, 10);
    assert_int_equal(persist_backup_start(f->p, NULL, f->err, sizeof f->err), -EEXIST);
    assert_non_null(strstr(f->err, "move it away"));
    assert_int_equal(persist_backup_fd(f->p), -1);
    assert_int_equal(persist_backup_finish(f->p, NULL, f->err, sizeof f->err), -ENOENT);
    assert_int_equal(copy_stats(def).queued, 10);
}

static void test_stale_partial_removed(void **state)
{
    struct fx *f = *state;
    char partial[128], junk[192];
    FILE *fp;

    snprintf(partial, sizeof partial, "%s.partial", f->copy);
    /* what a copy killed half-way leaves: a LevelDB directory inside DIR.partial */
    assert_int_equal(mkdir(partial, 0700), 0);
    snprintf(junk, sizeof junk, "%s/%s", partial, PERSIST_STORE_NAME);
    assert_int_equal(mkdir(junk, 0700), 0);
    snprintf(junk, sizeof junk, "%s/%s/000005.log", partial, PERSIST_STORE_NAME);
    fp = fopen(junk, "w");
    assert_non_null(fp);
    fputs("half a log", fp);
    fclose(fp);
    f->p = open_store(f->dir, f->err, sizeof f->err);
    queue_msgs(f->p, "a", 1, 3, 10);
    assert_int_equal(persist_backup_start(f->p, f->copy, f->err, sizeof f->err), 0);
    assert_int_equal(wait_finish(f->p, NULL, f->err, sizeof f->err), 0);
    assert_false(exists(partial));
    assert_int_equal(copy_stats(f->copy).queued, 3);
}

/* Cancelled: either it had already finished (a whole copy) or nothing of it is left. */
static void check_whole_or_nothing(struct fx *f, int rc, uint64_t queued)
{
    char partial[128];
    snprintf(partial, sizeof partial, "%s.partial", f->copy);
    assert_false(exists(partial));
    if (rc == 0)
        assert_int_equal(copy_stats(f->copy).queued, queued);
    else
        assert_false(exists(f->copy));
}

static void test_cancel(void **state)
{
    struct fx *f = *state;
    int rc;

    f->p = open_store(f->dir, f->err, sizeof f->err);
    queue_msgs(f->p, "a", 1, 2000, 1000);
    assert_int_equal(persist_backup_start(f->p, f->copy, f->err, sizeof f->err), 0);
    persist_backup_cancel(f->p);
    rc = wait_finish(f->p, NULL, f->err, sizeof f->err);
    assert_true(rc == 0 || rc == -ECANCELED);
    if (rc < 0)
        assert_non_null(strstr(f->err, "cancelled"));
    check_whole_or_nothing(f, rc, 2000);
}

static void test_close_while_copying(void **state)
{
    struct fx *f = *state;

    f->p = open_store(f->dir, f->err, sizeof f->err);
    queue_msgs(f->p, "a", 1, 2000, 1000);
    assert_int_equal(persist_backup_start(f->p, f->copy, f->err, sizeof f->err), 0);
    persist_close(f->p); /* stops the thread before the store goes */
    f->p = NULL;
    check_whole_or_nothing(f, exists(f->copy) ? 0 : -1, 2000);
    assert_int_equal(copy_stats(f->dir).queued, 2000);
}

/*
 * A write fails (a file-size limit, in a child process) while a copy runs: the reopen that
 * follows stops the copy first (it reads the LevelDB handle the reopen closes), and the next
 * commit succeeds. The limit hits the copy's own writes too; either way it ends whole or
 * without a trace, and is reported.
 */
static void test_reopen_while_copying(void **state)
{
    struct fx *f = *state;
    int status;
    pid_t pid;

    f->p = open_store(f->dir, f->err, sizeof f->err);
    queue_msgs(f->p, "a", 1, 2000, 1000);
    persist_close(f->p);
    f->p = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static char big[512 * 1024];
        char err[512];
        struct persist *p = open_store(f->dir, err, sizeof err);
        struct rlimit rl;
        int rc;

        memset(big, 'b', sizeof big);
        if (persist_backup_start(p, f->copy, err, sizeof err) != 0)
            _exit(10);
        signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = 256 * 1024;
        if (setrlimit(RLIMIT_FSIZE, &rl))
            _exit(11);
        struct persist_msg m = {5000, str("t"), {(const uint8_t *)big, sizeof big},
                                1,    false,    {NULL, 0}};
        struct persist_qentry e = {5000, 5000, 0, 1, 0};
        persist_enqueue(p, str("a"), &e, &m);
        if (persist_commit(p, err, sizeof err) != -EIO)
            _exit(12);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_FSIZE, &rl);
        struct persist_session s2 = {.last_seen = 2};
        persist_session_put(p, str("b"), &s2);
        if (persist_commit(p, err, sizeof err) != 0) /* reopens: the copy is stopped first */
            _exit(13);
        rc = persist_backup_finish(p, NULL, err, sizeof err);
        if (rc != 0 && !strstr(err, "failed"))
            _exit(14);
        persist_close(p);
        _exit(rc == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_true(WEXITSTATUS(status) <= 1);
    check_whole_or_nothing(f, WEXITSTATUS(status) == 0 ? 0 : -1, 2000);
    assert_int_equal(copy_stats(f->dir).sessions, 2);
}

static void test_unwritable_dest(void **state)
{
    struct fx *f = *state;
    char dest[160];

    f->p = open_store(f->dir, f->err, sizeof f->err);
    queue_msgs(f->p, "a", 1, 3, 10);
    snprintf(dest, sizeof dest, "%s/no/such/dir", f->root);
    assert_int_equal(persist_backup_start(f->p, dest, f->err, sizeof f->err), 0);
    assert_int_equal(wait_finish(f->p, NULL, f->err, sizeof f->err), -ENOENT);
    assert_non_null(strstr(f->err, "failed"));
    assert_false(exists(dest));
    /* and the next one works */
    assert_int_equal(persist_backup_start(f->p, f->copy, f->err, sizeof f->err), 0);
    assert_int_equal(wait_finish(f->p, NULL, f->err, sizeof f->err), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_copy_is_the_snapshot),  T(test_default_dir_and_no_replace),
        T(test_stale_partial_removed), T(test_cancel),
        T(test_close_while_copying),   T(test_reopen_while_copying),
        T(test_unwritable_dest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
