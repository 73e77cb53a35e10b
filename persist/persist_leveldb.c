/*
 * persist_leveldb.c — persist.h on LevelDB: commit (one leveldb_write of the open batch),
 * sync, restore (one scan, interpreted by persist_restore.c), window reads, and the store
 * access persist_batch.c uses to build the batch (persist__ldb_*). Opening and reopening are
 * persist_open.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <leveldb/c.h>

#include "persist.h"
#include "persist_internal.h"
#include "persist_record.h"
#include "persist_refs.h"
#include "persist_ldb.h"

#define TRIM_EVERY (64u << 10) /* records scanned between two trims in a restore */

/* ---- what persist_batch.c needs ----------------------------------------------------------- */
void persist__ldb_put(struct persist *p, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    leveldb_writebatch_put(p->ldb->batch, (const char *)k, kl, (const char *)v, vl);
}

void persist__ldb_del(struct persist *p, const uint8_t *k, size_t kl)
{
    leveldb_writebatch_delete(p->ldb->batch, (const char *)k, kl);
}

void persist__ldb_clear(struct persist *p)
{
    if (p->ldb && p->ldb->batch)
        leveldb_writebatch_clear(p->ldb->batch);
}

int persist__ldb_get(struct persist *p, const uint8_t *k, size_t kl, char **v, size_t *vl,
                     char *err, size_t errlen)
{
    char *e = NULL;

    if (!p->ldb->db) {
        *v = NULL;
        persist__seterr(err, errlen, "store unavailable since a failed write");
        return -EIO;
    }
    *v = leveldb_get(p->ldb->db, p->ldb->ropts, (const char *)k, kl, vl, &e);
    if (e) {
        persist__seterr(err, errlen, "%s", e);
        leveldb_free(e);
        return -EIO;
    }
    return *v != NULL;
}

void persist__ldb_free(void *v)
{
    if (v)
        leveldb_free(v);
}

int persist__ldb_scan(struct persist *p, const uint8_t *pre, size_t pl, persist_ldb_cb cb,
                      void *ctx, char *err, size_t errlen)
{
    leveldb_iterator_t *it;
    char *e = NULL;
    int rc = 0;

    if (!p->ldb->db) {
        persist__seterr(err, errlen, "store unavailable since a failed write");
        return -EIO;
    }
    it = leveldb_create_iterator(p->ldb->db, p->ldb->ropts);
    for (leveldb_iter_seek(it, (const char *)pre, pl); leveldb_iter_valid(it);
         leveldb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vl);
        if (kl < pl || memcmp(k, pre, pl) != 0)
            break;
        rc = cb(ctx, k, kl, v, vl);
        if (rc)
            break;
    }
    leveldb_iter_get_error(it, &e);
    leveldb_iter_destroy(it);
    if (e) {
        persist__seterr(err, errlen, "%s", e);
        leveldb_free(e);
        rc = -EIO;
    }
    return rc;
}

/* ---- commit ---------------------------------------------------------------------------- */
int persist_commit(struct persist *p, char *err, size_t errlen)
{
    int rc = 0;
    char *e = NULL;

    if (p->batch_err) {
        rc = p->batch_err;
        persist__seterr(err, errlen, "persist: batch refused: %s", p->batch_errmsg);
        goto fail;
    }
    if (p->batch_ops == 0)
        return 0;
    if (p->fail_commits) {
        p->fail_commits--;
        rc = -EIO;
        persist__seterr(err, errlen, "persist: write failed: injected fault");
        goto fail;
    }
    if ((rc = persist__reopen(p, err, errlen)) < 0)
        goto fail;
    leveldb_write(p->ldb->db, p->ldb->wopts, p->ldb->batch, &e);
    if (e) {
        rc = -EIO;
        persist__seterr(err, errlen, "persist: write failed: %s", e);
        leveldb_free(e);
        p->ldb->reopen = true; /* the log may end in a torn record now */
        goto fail;
    }
    p->unsynced = !p->sync;
    persist__batch_reset(p);
    return 0;
fail:
    persist__batch_rollback(p);
    persist__batch_reset(p);
    p->checked = true;
    return rc;
}

int persist_sync(struct persist *p, char *err, size_t errlen)
{
    leveldb_writeoptions_t *wo = NULL;
    leveldb_writebatch_t *empty = NULL;
    char *e = NULL;
    int rc = 0;

    if (!p->unsynced)
        goto out;
    if (!p->ldb->db) {
        persist__seterr(err, errlen, "store unavailable since a failed write");
        rc = -EIO;
        goto out;
    }
    /* LevelDB has no sync call of its own; a synced write fsyncs the log, and with it every
     * record written before it */
    wo = leveldb_writeoptions_create();
    empty = leveldb_writebatch_create();
    leveldb_writeoptions_set_sync(wo, 1);
    leveldb_write(p->ldb->db, wo, empty, &e);
    if (e) {
        persist__seterr(err, errlen, "persist: sync failed: %s", e);
        p->ldb->reopen = true; /* LevelDB refuses every write after a failed sync */
        rc = -EIO;
        goto out;
    }
    p->unsynced = false;
out:
    if (e)
        leveldb_free(e);
    if (empty)
        leveldb_writebatch_destroy(empty);
    if (wo)
        leveldb_writeoptions_destroy(wo);
    return rc;
}

/* ---- resident memory ------------------------------------------------------------------- */
/*
 * LevelDB reads its table files through read-only shared mappings, so every page a scan reads
 * stays in this process's resident set: restoring a store of 150 MB would add 150 MB of RSS
 * that is only page cache. Dropping those pages from our page tables (MADV_DONTNEED; the data
 * stays in the page cache and the file) keeps the broker's RSS to what it really holds.
 */
static void trim_table_pages(const struct persist *p)
{
#ifdef __linux__
    char line[4608];
    size_t dl = p->real_dir ? strlen(p->real_dir) : 0;
    FILE *f;
    if (!dl || !(f = fopen("/proc/self/maps", "re")))
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &path_at) < 2 || !path_at)
            continue;
        char *path = line + path_at;
        size_t pl = strcspn(path, "\n");
        path[pl] = '\0';
        if (pl > dl + 5 && strncmp(path, p->real_dir, dl) == 0 && path[dl] == '/' &&
            (strcmp(path + pl - 4, ".ldb") == 0 || strcmp(path + pl - 4, ".sst") == 0))
            madvise((void *)start, end - start, MADV_DONTNEED);
    }
    fclose(f);
#else
    (void)p;
#endif
}

void persist_trim(struct persist *p)
{
    trim_table_pages(p);
}

/* ---- restore --------------------------------------------------------------------------- */
/*
 * One pass over the whole store in key order; persist_restore.c makes sense of each record.
 * Records it finds unreferenced (bodies) or without a session are deleted in one batch at the
 * end, and only when the scan got through everything.
 */
int persist_restore(struct persist *p, const struct persist_restore_ops *ops, void *ctx,
                    uint64_t *max_msg_id, char *err, size_t errlen)
{
    struct persist_scan scan;
    leveldb_writebatch_t *cleanup = NULL;
    leveldb_iterator_t *it = NULL;
    size_t ncleanup = 0, scanned = 0;
    char *e = NULL;
    int rc = 0;

    persist__scan_init(&scan, ops, ctx, &p->refs, &p->stats);
    if (!persist_batch_empty(p)) {
        persist__seterr(err, errlen, "persist: restore with changes pending");
        rc = -EINVAL;
        goto out;
    }
    if (!p->ldb->db) {
        persist__seterr(err, errlen, "persist: store unavailable");
        rc = -EIO;
        goto out;
    }
    p->restored = false;
    persist_refs_cleanup(&p->refs);
    memset(&p->stats, 0, sizeof p->stats);
    cleanup = leveldb_writebatch_create();
    it = leveldb_create_iterator(p->ldb->db, p->ldb->scan_opts);
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kl, vl;
        bool drop = false;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vl);
        if (++scanned % TRIM_EVERY == 0)
            trim_table_pages(p);
        rc = persist__scan_record(&scan, k, kl, v, vl, &drop, err, errlen);
        if (rc)
            goto out;
        if (drop && !p->read_only) {
            leveldb_writebatch_delete(cleanup, (const char *)k, kl);
            ncleanup++;
        }
    }
    leveldb_iter_get_error(it, &e);
    if (e) {
        persist__seterr(err, errlen, "persist: reading the store failed: %s", e);
        rc = -EIO;
        goto out;
    }
    rc = persist__scan_finish(&scan, err, errlen);
    if (rc)
        goto out;
    if (p->stats.missing && !p->read_only) {
        persist__seterr(
            err, errlen,
            "persist: damaged store: %llu message bodies referenced by queue entries are "
            "missing (inspect it with cairn-db)",
            (unsigned long long)p->stats.missing);
        rc = -EBADMSG;
        goto out;
    }
    if (ncleanup) {
        leveldb_write(p->ldb->db, p->ldb->wopts, cleanup, &e);
        if (e) {
            persist__seterr(err, errlen, "persist: removing unreferenced records failed: %s", e);
            rc = -EIO;
            goto out;
        }
        p->unsynced = !p->sync;
    }
    p->restored = true;
out:
    trim_table_pages(p);
#ifdef __GLIBC__
    /* the scan's sort buffers (tens of MB at a million entries) go back to the system */
    malloc_trim(0);
#endif
    if (max_msg_id)
        *max_msg_id = scan.max_id;
    if (e)
        leveldb_free(e);
    if (it)
        leveldb_iter_destroy(it);
    if (cleanup)
        leveldb_writebatch_destroy(cleanup);
    persist__scan_cleanup(&scan);
    return rc;
}

void persist_restore_stats(const struct persist *p, struct persist_stats *out)
{
    *out = p->stats;
}

/* ---- window reads ---------------------------------------------------------------------- */
int persist_queue_read(struct persist *p, struct mqtt_str cid, uint64_t from_seq, size_t max,
                       persist_queue_cb cb, void *ctx)
{
    leveldb_iterator_t *it = NULL;
    char *e = NULL;
    char *body = NULL;
    int rc = 0;
    size_t n = 0;
    size_t pl = persist_rec_key_prefix(p->kbuf, PERSIST_KEY_MAX, PERSIST_K_QUEUE, cid);
    size_t kl = persist_rec_key_queue(p->kbuf, PERSIST_KEY_MAX, cid, from_seq);

    if (!pl || !kl)
        return -EINVAL;
    if (max == 0)
        return 0;
    if (max > INT_MAX)
        max = INT_MAX; /* the count is returned as an int */
    if (!p->ldb->db)
        return -EIO; /* unavailable since a failed write: read again after the reopen */
    it = leveldb_create_iterator(p->ldb->db, p->ldb->ropts);
    /* The step to the next key comes only when another entry is wanted: stepping past the
     * last live entry walks every deleted key behind it (acked entries and their bodies). */
    for (leveldb_iter_seek(it, (const char *)p->kbuf, kl); leveldb_iter_valid(it);
         leveldb_iter_next(it)) {
        size_t ql, vl, bl;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &ql);
        const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vl);
        struct persist_rec_key key;
        struct persist_qentry q;
        struct persist_msg m;
        uint32_t plen;
        uint8_t mk[16];

        if (ql < pl || memcmp(k, p->kbuf, pl) != 0)
            break;
        if (persist_rec_key_decode(k, ql, &key) < 0 ||
            persist_rec_qentry_decode(v, vl, &q, &plen) < 0) {
            rc = -EBADMSG;
            goto out;
        }
        q.seq = key.seq;
        body = leveldb_get(p->ldb->db, p->ldb->ropts, (const char *)mk,
                           persist_rec_key_msg(mk, sizeof mk, q.msg_id), &bl, &e);
        if (e) {
            rc = -EIO;
            goto out;
        }
        if (!body || persist_rec_msg_decode((const uint8_t *)body, bl, &m) < 0) {
            rc = -EBADMSG; /* missing or damaged body */
            goto out;
        }
        m.id = q.msg_id;
        n++;
        int c = cb(ctx, &q, &m);
        leveldb_free(body);
        body = NULL;
        if (c < 0) {
            rc = c;
            goto out;
        }
        if (c > 0 || n >= max)
            break;
    }
    leveldb_iter_get_error(it, &e);
    if (e)
        rc = -EIO;
out:
    if (body)
        leveldb_free(body);
    if (e)
        leveldb_free(e);
    if (it)
        leveldb_iter_destroy(it);
    return rc ? rc : (int)n;
}

/* ---- internal hooks -------------------------------------------------------------------- */
uint32_t persist__refcount(const struct persist *p, uint64_t msg_id)
{
    const struct persist_ref *r = persist_refs_find(&p->refs, msg_id);
    return r ? r->count : 0;
}

size_t persist__refcount_size(const struct persist *p)
{
    return persist_refs_size(&p->refs);
}

uint64_t persist__ignored(const struct persist *p)
{
    return p->ignored;
}

void persist__fail_commits(struct persist *p, unsigned n)
{
    p->fail_commits = n;
}

int persist__put_raw(struct persist *p, const void *k, size_t kl, const void *v, size_t vl)
{
    char *e = NULL;

    if (!p->ldb->db)
        return -EIO;
    leveldb_put(p->ldb->db, p->ldb->wopts, k, kl, v, vl, &e);
    if (!e)
        return 0;
    leveldb_free(e);
    return -EIO;
}

int persist__del_raw(struct persist *p, const void *k, size_t kl)
{
    char *e = NULL;

    if (!p->ldb->db)
        return -EIO;
    leveldb_delete(p->ldb->db, p->ldb->wopts, k, kl, &e);
    if (!e)
        return 0;
    leveldb_free(e);
    return -EIO;
}
