/*
 * persist_backup.c — a consistent copy of a store in use: SIGUSR1 on a running broker, and
 * cairn-db --backup on a stopped one.
 *
 * LevelDB has no backup call, and its files cannot be copied while a broker writes them: the
 * log grows and compactions replace tables under the copier. A snapshot can be read meanwhile:
 * leveldb_create_snapshot() pins the store as of its last write, and an iterator reading through
 * it sees exactly that, however the store changes afterwards (LevelDB serves reads from other
 * threads alongside writes). The copy is that iterator's records, written in key order into a
 * new LevelDB by a thread of its own, so the event loop never waits for it: its only costs are
 * the snapshot (a sequence number) and, while the copy runs, compactions keeping the snapshot's
 * versions of the keys that change.
 *
 * What the copy holds: every batch written before persist_backup_start() — every ack the broker
 * sent before it, since acks leave only after their batch's write — and nothing written after.
 * Restoring it is what a restart after a kill -9 at that moment would restore.
 *
 * On disk: DIR.partial/cairn.db while it is written, synced, then DIR.partial renamed to DIR and
 * DIR's parent synced, so DIR either does not exist or holds a whole copy and serves as a
 * persistence_location as it is. A failed or cancelled copy removes DIR.partial: it may be large,
 * and sit on the disk the live store needs. DIR itself is never removed or overwritten.
 *
 * Threads: the handle's owner calls every persist_backup_* function; the copy thread touches only
 * its struct persist_backup (the cancel flag is atomic) and LevelDB. The store is never closed
 * under it: persist_close() and the reopen after a failed write cancel and join it first.
 */
#define _GNU_SOURCE /* asprintf, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist.h"
#include "persist_internal.h"
#include "persist_ldb.h"

#define BACKUP_BATCH_BYTES (1u << 20) /* records per write to the copy, in key + value bytes */

struct persist_backup {
    pthread_t thread;
    leveldb_t *db; /* the live store, borrowed; open until the thread is joined */
    const leveldb_snapshot_t *snap;
    char *dir;     /* DIR: the finished copy */
    char *partial; /* DIR.partial: the copy being written */
    int pipe[2];   /* the thread writes one byte into [1] as it ends */
    atomic_bool cancel;
    bool joined;
    int rc; /* the thread's result, read after the join */
    char err[512];
    struct persist_backup_stats st;
};

static int backup_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0 || fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The parent directory of path ("." when it has none), malloc'ed. */
static char *backup_parent(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Remove DIR.partial: LevelDB's files of the copy, then the two directories. 0 or -errno. */
static int backup_remove_partial(struct persist_backup *bk)
{
    leveldb_options_t *o = leveldb_options_create();
    char *db = NULL, *e = NULL;
    int rc = 0;

    if (asprintf(&db, "%s/%s", bk->partial, PERSIST_STORE_NAME) < 0) {
        db = NULL;
        rc = -ENOMEM;
        goto out;
    }
    leveldb_destroy_db(o, db, &e); /* also removes the directory; a missing one is fine */
    if (e) {
        rc = -EIO;
        goto out;
    }
    if (rmdir(bk->partial) != 0 && errno != ENOENT)
        rc = -errno;
out:
    if (e)
        leveldb_free(e);
    free(db);
    leveldb_options_destroy(o);
    return rc;
}

/* Every record the snapshot shows, into the new LevelDB out, in batches. 0 or negative. */
static int backup_records(struct persist_backup *bk, leveldb_t *out)
{
    leveldb_readoptions_t *ro = leveldb_readoptions_create();
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    leveldb_iterator_t *it;
    size_t pending = 0;
    char *e = NULL;
    int rc = 0;

    leveldb_readoptions_set_snapshot(ro, bk->snap);
    leveldb_readoptions_set_verify_checksums(ro, 1);
    leveldb_readoptions_set_fill_cache(ro, 0); /* the broker's cache keeps what it reads */
    it = leveldb_create_iterator(bk->db, ro);
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kl, vl;
        const char *k = leveldb_iter_key(it, &kl);
        const char *v = leveldb_iter_value(it, &vl);

        if (atomic_load_explicit(&bk->cancel, memory_order_relaxed)) {
            rc = -ECANCELED;
            snprintf(bk->err, sizeof bk->err, "cancelled");
            goto out;
        }
        leveldb_writebatch_put(wb, k, kl, v, vl);
        bk->st.records++;
        bk->st.bytes += kl + vl;
        pending += kl + vl;
        if (pending >= BACKUP_BATCH_BYTES) {
            leveldb_write(out, wo, wb, &e);
            if (e)
                break;
            leveldb_writebatch_clear(wb);
            pending = 0;
        }
    }
    if (!e)
        leveldb_iter_get_error(it, &e);
    if (e) {
        rc = -EIO;
        persist__seterr(bk->err, sizeof bk->err, "%s", e);
        goto out;
    }
    /* the last records, and a synced write: the copy's log is on disk with everything in it */
    leveldb_writeoptions_set_sync(wo, 1);
    leveldb_write(out, wo, wb, &e);
    if (e) {
        rc = -EIO;
        persist__seterr(bk->err, sizeof bk->err, "%s", e);
    }
out:
    if (e)
        leveldb_free(e);
    leveldb_iter_destroy(it);
    leveldb_writebatch_destroy(wb);
    leveldb_writeoptions_destroy(wo);
    leveldb_readoptions_destroy(ro);
    return rc;
}

/* The copy thread's work: DIR.partial/cairn.db written and synced, then renamed to DIR. */
static int backup_copy(struct persist_backup *bk)
{
    leveldb_options_t *o = leveldb_options_create();
    leveldb_t *out = NULL;
    char *db = NULL, *parent = NULL, *e = NULL;
    int rc;

    rc = backup_remove_partial(bk); /* left by a copy a crash interrupted */
    if (rc < 0) {
        snprintf(bk->err, sizeof bk->err, "cannot remove the unfinished copy %s: %s", bk->partial,
                 strerror(-rc));
        goto out;
    }
    if (mkdir(bk->partial, 0700) != 0) {
        rc = -errno;
        snprintf(bk->err, sizeof bk->err, "%s: %s", bk->partial, strerror(errno));
        goto out;
    }
    if (asprintf(&db, "%s/%s", bk->partial, PERSIST_STORE_NAME) < 0 ||
        !(parent = backup_parent(bk->dir))) {
        rc = -ENOMEM;
        snprintf(bk->err, sizeof bk->err, "out of memory");
        goto out;
    }
    leveldb_options_set_create_if_missing(o, 1);
    leveldb_options_set_error_if_exists(o, 1);
    out = leveldb_open(o, db, &e);
    if (e) {
        rc = -EIO;
        persist__seterr(bk->err, sizeof bk->err, "cannot create %s: %s", db, e);
        goto out;
    }
    rc = backup_records(bk, out);
    leveldb_close(out);
    if (rc < 0)
        goto out;
    if ((rc = backup_fsync_dir(db)) < 0 || (rc = backup_fsync_dir(bk->partial)) < 0) {
        snprintf(bk->err, sizeof bk->err, "sync %s: %s", bk->partial, strerror(-rc));
        goto out;
    }
    if (atomic_load(&bk->cancel)) {
        rc = -ECANCELED;
        snprintf(bk->err, sizeof bk->err, "cancelled");
        goto out;
    }
    if (rename(bk->partial, bk->dir) != 0) {
        rc = -errno;
        snprintf(bk->err, sizeof bk->err, "rename %s to %s: %s", bk->partial, bk->dir,
                 strerror(errno));
        goto out;
    }
    if ((rc = backup_fsync_dir(parent)) < 0)
        snprintf(bk->err, sizeof bk->err, "sync %s: %s", parent, strerror(-rc));
out:
    if (e)
        leveldb_free(e);
    free(db);
    free(parent);
    leveldb_options_destroy(o);
    return rc;
}

static void *backup_main(void *arg)
{
    struct persist_backup *bk = arg;
    ssize_t n;

    bk->rc = backup_copy(bk);
    leveldb_release_snapshot(bk->db, bk->snap); /* thread-safe: the store is still open */
    bk->snap = NULL;
    if (bk->rc < 0)
        backup_remove_partial(bk); /* rename never happened: DIR was not touched */
    do
        n = write(bk->pipe[1], "", 1);
    while (n < 0 && errno == EINTR);
    return NULL;
}

static void backup_free(struct persist_backup *bk)
{
    if (!bk)
        return;
    for (int i = 0; i < 2; i++)
        if (bk->pipe[i] >= 0)
            close(bk->pipe[i]);
    free(bk->dir);
    free(bk->partial);
    free(bk);
}

static void backup_join(struct persist_backup *bk)
{
    if (bk->joined)
        return;
    pthread_join(bk->thread, NULL);
    bk->joined = true;
}

int persist_backup_start(struct persist *p, const char *dir, char *err, size_t errlen)
{
    struct persist_backup *bk = NULL;
    sigset_t all, old;
    struct stat st;
    int rc = 0;

    if (p->backup) {
        persist__seterr(err, errlen, "a backup into %s is still running", p->backup->dir);
        rc = -EBUSY;
        goto out;
    }
    if (!p->ldb->db) {
        persist__seterr(err, errlen, "store %s unavailable since a failed write", p->ldb->shown);
        rc = -EIO;
        goto out;
    }
    bk = calloc(1, sizeof *bk);
    if (!bk) {
        rc = -ENOMEM;
        goto fail_oom;
    }
    bk->pipe[0] = bk->pipe[1] = -1;
    bk->joined = true; /* until the thread exists */
    if (dir) {
        bk->dir = strdup(dir);
    } else {
        /* "/var/lib/cairn/" as configured: one slash before the name, for the log's sake */
        int n = (int)strlen(p->location);
        while (n > 1 && p->location[n - 1] == '/')
            n--;
        if (asprintf(&bk->dir, "%.*s/%s", n, p->location, PERSIST_BACKUP_NAME) < 0)
            bk->dir = NULL;
    }
    if (!bk->dir || asprintf(&bk->partial, "%s.partial", bk->dir) < 0) {
        bk->partial = NULL;
        rc = -ENOMEM;
        goto fail_oom;
    }
    if (stat(bk->dir, &st) == 0) {
        rc = -EEXIST;
        persist__seterr(err, errlen,
                        "%s exists: move it away first (a backup never replaces another)", bk->dir);
        goto fail;
    }
    if (errno != ENOENT) {
        rc = -errno;
        persist__seterr(err, errlen, "%s: %s", bk->dir, strerror(errno));
        goto fail;
    }
    if (pipe2(bk->pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
        persist__seterr(err, errlen, "backup: pipe: %s", strerror(errno));
        goto fail;
    }
    atomic_init(&bk->cancel, false);
    bk->db = p->ldb->db;
    bk->snap = leveldb_create_snapshot(bk->db);
    /* the copy thread takes no signals: the loop thread's handlers see them all */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&bk->thread, NULL, backup_main, bk);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        leveldb_release_snapshot(bk->db, bk->snap);
        persist__seterr(err, errlen, "backup: cannot start a thread: %s", strerror(-rc));
        goto fail;
    }
    bk->joined = false;
    p->backup = bk;
    goto out;
fail_oom:
    persist__seterr(err, errlen, "backup: out of memory");
fail:
    backup_free(bk);
out:
    return rc;
}

const char *persist_backup_dir(const struct persist *p)
{
    return p->backup ? p->backup->dir : NULL;
}

int persist_backup_fd(const struct persist *p)
{
    return p->backup ? p->backup->pipe[0] : -1;
}

void persist_backup_cancel(struct persist *p)
{
    if (p->backup)
        atomic_store(&p->backup->cancel, true);
}

int persist_backup_finish(struct persist *p, struct persist_backup_stats *st, char *err,
                          size_t errlen)
{
    struct persist_backup *bk = p->backup;
    int rc = -ENOENT;

    if (!bk) {
        persist__seterr(err, errlen, "no backup was started");
        goto out;
    }
    backup_join(bk);
    rc = bk->rc;
    if (rc < 0)
        persist__seterr(err, errlen, "backup into %s failed: %s", bk->dir, bk->err);
    if (st)
        *st = bk->st;
    p->backup = NULL;
    backup_free(bk);
out:
    return rc;
}

void persist__backup_stop(struct persist *p, bool release)
{
    if (!p->backup)
        return;
    atomic_store(&p->backup->cancel, true);
    backup_join(p->backup);
    if (release) {
        backup_free(p->backup);
        p->backup = NULL;
    }
}
