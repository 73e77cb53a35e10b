/*
 * persist_leveldb.c — persist.h on LevelDB. The only file that includes <leveldb/c.h>.
 *
 * Open (with the checks that keep a broker from starting on a locked, damaged or foreign store),
 * commit (one leveldb_write of the open batch), restore (one scan, interpreted by
 * persist_restore.c), window reads, and the store access persist_batch.c uses to build the
 * batch (persist__ldb_*).
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

#define CACHE_BYTES        (16u << 20) /* LRU block cache */
#define WRITE_BUFFER_BYTES (8u << 20)  /* memtable: fewer, larger level-0 files under load */
#define MAX_OPEN_FILES     500
#define BLOOM_BITS         10
#define TRIM_EVERY         (64u << 10) /* records scanned between two trims in a restore */

struct persist_ldb {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ropts;     /* point reads and window reads */
    leveldb_readoptions_t *scan_opts; /* full scans: do not flush the cache */
    leveldb_writeoptions_t *wopts;
    leveldb_writebatch_t *batch; /* the open batch */
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* one line: LevelDB's text may hold a newline */
    for (char *c = err; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

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
    *v = leveldb_get(p->ldb->db, p->ldb->ropts, (const char *)k, kl, vl, &e);
    if (e) {
        seterr(err, errlen, "%s", e);
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
    leveldb_iterator_t *it = leveldb_create_iterator(p->ldb->db, p->ldb->ropts);
    char *e = NULL;
    int rc = 0;
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
        seterr(err, errlen, "%s", e);
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
        seterr(err, errlen, "persist: batch refused: %s", p->batch_errmsg);
        goto fail;
    }
    if (p->batch_ops == 0)
        return 0;
    if (p->fail_commits) {
        p->fail_commits--;
        rc = -EIO;
        seterr(err, errlen, "persist: write failed: injected fault");
        goto fail;
    }
    leveldb_write(p->ldb->db, p->ldb->wopts, p->ldb->batch, &e);
    if (e) {
        rc = -EIO;
        seterr(err, errlen, "persist: write failed: %s", e);
        leveldb_free(e);
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
    /* LevelDB has no sync call of its own; a synced write fsyncs the log, and with it every
     * record written before it */
    wo = leveldb_writeoptions_create();
    empty = leveldb_writebatch_create();
    leveldb_writeoptions_set_sync(wo, 1);
    leveldb_write(p->ldb->db, wo, empty, &e);
    if (e) {
        seterr(err, errlen, "persist: sync failed: %s", e);
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
        seterr(err, errlen, "persist: restore with changes pending");
        rc = -EINVAL;
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
        seterr(err, errlen, "persist: reading the store failed: %s", e);
        rc = -EIO;
        goto out;
    }
    rc = persist__scan_finish(&scan, err, errlen);
    if (rc)
        goto out;
    if (p->stats.missing && !p->read_only) {
        seterr(err, errlen,
               "persist: damaged store: %llu message bodies referenced by queue entries are "
               "missing (inspect it with cairn-db)",
               (unsigned long long)p->stats.missing);
        rc = -EBADMSG;
        goto out;
    }
    if (ncleanup) {
        leveldb_write(p->ldb->db, p->ldb->wopts, cleanup, &e);
        if (e) {
            seterr(err, errlen, "persist: removing unreferenced records failed: %s", e);
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

/* ---- open and close -------------------------------------------------------------------- */
/* Does dir look like a LevelDB store that lost its CURRENT file? LevelDB would start afresh. */
static int dir_check(const char *dir, bool *exists, bool *has_current, bool *has_tables)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    *exists = *has_current = *has_tables = false;
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    *exists = true;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t l = strlen(n);
        if (strcmp(n, "CURRENT") == 0)
            *has_current = true;
        else if (strncmp(n, "MANIFEST-", 9) == 0 ||
                 (l > 4 && (strcmp(n + l - 4, ".ldb") == 0 || strcmp(n + l - 4, ".sst") == 0 ||
                            strcmp(n + l - 4, ".log") == 0)))
            *has_tables = true;
    }
    closedir(d);
    return 0;
}

/* The format key: present and right, or absent on an empty store (then written). */
static int check_format(struct persist *p, const char *dir, char *err, size_t errlen)
{
    uint8_t k[16], v[PERSIST_SMALL_REC];
    size_t kl = persist_rec_key_meta(k, sizeof k), vl;
    char *e = NULL;
    int rc = 0;
    char *val = leveldb_get(p->ldb->db, p->ldb->ropts, (const char *)k, kl, &vl, &e);
    uint32_t format;

    if (e) {
        seterr(err, errlen, "cannot read store %s: %s", dir, e);
        rc = -EIO;
        goto out;
    }
    if (val) {
        if (persist_rec_meta_decode((const uint8_t *)val, vl, &format) < 0) {
            seterr(err, errlen, "store %s is damaged: unreadable format record", dir);
            rc = -EBADMSG;
        } else if (format != PERSIST_FORMAT) {
            seterr(err, errlen, "store %s has format version %u; this cairn reads version %u", dir,
                   format, PERSIST_FORMAT);
            rc = -EPROTO;
        }
        /* a store with data: counts are rebuilt by persist_restore() */
        goto out;
    }
    leveldb_iterator_t *it = leveldb_create_iterator(p->ldb->db, p->ldb->ropts);
    leveldb_iter_seek_to_first(it);
    bool empty = !leveldb_iter_valid(it);
    leveldb_iter_get_error(it, &e);
    leveldb_iter_destroy(it);
    if (e) {
        seterr(err, errlen, "cannot read store %s: %s", dir, e);
        rc = -EIO;
        goto out;
    }
    if (!empty) {
        seterr(err, errlen, "%s holds a LevelDB database that is not a Cairn store (no format key)",
               dir);
        rc = -EPROTO;
        goto out;
    }
    p->restored = true; /* nothing to count */
    if (p->read_only)
        goto out;
    vl = persist_rec_meta(v, sizeof v, PERSIST_FORMAT);
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(wo, 1);
    leveldb_put(p->ldb->db, wo, (const char *)k, kl, (const char *)v, vl, &e);
    leveldb_writeoptions_destroy(wo);
    if (e) {
        seterr(err, errlen, "cannot initialise store %s: %s", dir, e);
        rc = -EIO;
    }
out:
    if (val)
        leveldb_free(val);
    if (e)
        leveldb_free(e);
    return rc;
}

int persist_open(const struct persist_options *opt, struct persist **out, char *err, size_t errlen)
{
    struct persist *p = NULL;
    char *e = NULL;
    const char *path;
    bool exists, has_current, has_tables;
    int rc;

    *out = NULL;
    if (!opt || !opt->dir || !*opt->dir) {
        seterr(err, errlen, "persist: no store directory given");
        return -EINVAL;
    }
    rc = dir_check(opt->dir, &exists, &has_current, &has_tables);
    if (rc < 0) {
        seterr(err, errlen, "cannot open store %s: %s", opt->dir, strerror(-rc));
        return rc;
    }
    if (exists && !has_current && has_tables) {
        seterr(err, errlen, "store %s is damaged: its CURRENT file is missing", opt->dir);
        return -EBADMSG;
    }
    if (opt->read_only && !has_current) {
        seterr(err, errlen, "no Cairn store in %s", opt->dir);
        return -ENOENT;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->ldb = calloc(1, sizeof *p->ldb)) || !(p->kbuf = malloc(PERSIST_KEY_MAX))) {
        seterr(err, errlen, "persist: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    p->read_only = opt->read_only;
    p->sync = opt->sync;
    path = opt->dir;
    if (p->read_only) {
        int lock_fd;
        rc = persist__snapshot(opt->dir, &p->snap_dir, &lock_fd, err, errlen);
        if (rc < 0)
            goto fail;
        persist__snapshot_remove(NULL, lock_fd); /* the copy is consistent: let go of the lock */
        path = p->snap_dir;
    }
    p->ldb->opts = leveldb_options_create();
    p->ldb->cache = leveldb_cache_create_lru(CACHE_BYTES);
    p->ldb->filter = leveldb_filterpolicy_create_bloom(BLOOM_BITS);
    leveldb_options_set_create_if_missing(p->ldb->opts, !p->read_only);
    leveldb_options_set_paranoid_checks(p->ldb->opts, 1);
    leveldb_options_set_cache(p->ldb->opts, p->ldb->cache);
    leveldb_options_set_filter_policy(p->ldb->opts, p->ldb->filter);
    leveldb_options_set_write_buffer_size(p->ldb->opts, WRITE_BUFFER_BYTES);
    leveldb_options_set_max_open_files(p->ldb->opts, MAX_OPEN_FILES);
    p->ldb->ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(p->ldb->ropts, 1);
    p->ldb->scan_opts = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(p->ldb->scan_opts, 1);
    leveldb_readoptions_set_fill_cache(p->ldb->scan_opts, 0);
    p->ldb->wopts = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(p->ldb->wopts, opt->sync);
    p->ldb->batch = leveldb_writebatch_create();

    p->ldb->db = leveldb_open(p->ldb->opts, path, &e);
    if (!e)
        p->real_dir = realpath(path, NULL);
    if (e) {
        if (strstr(e, "lock")) {
            char who[64];
            if (strstr(e, "already held"))
                snprintf(who, sizeof who, "this process");
            else
                persist__lock_holder(opt->dir, who, sizeof who);
            seterr(err, errlen, "store %s is locked by %s: is another cairn running on it? (%s)",
                   opt->dir, who, e);
            rc = -EBUSY;
        } else if (strstr(e, "Corruption")) {
            seterr(err, errlen, "store %s is corrupt: %s", opt->dir, e);
            rc = -EBADMSG;
        } else {
            seterr(err, errlen, "cannot open store %s: %s", opt->dir, e);
            rc = -EIO;
        }
        goto fail;
    }
    rc = check_format(p, opt->dir, err, errlen);
    if (rc < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    if (e)
        leveldb_free(e);
    persist_close(p);
    return rc;
}

void persist_close(struct persist *p)
{
    struct persist_ldb *l;
    if (!p)
        return;
    l = p->ldb;
    if (l && l->db) {
        /* best effort: on failure the next open replays the log as the kernel kept it */
        int rc = persist_sync(p, NULL, 0);
        (void)rc;
    }
    if (l && l->batch) {
        persist__batch_rollback(p);
        persist__batch_reset(p);
        leveldb_writebatch_destroy(l->batch);
    }
    if (l && l->db)
        leveldb_close(l->db);
    if (l && l->opts)
        leveldb_options_destroy(l->opts);
    if (l && l->cache)
        leveldb_cache_destroy(l->cache);
    if (l && l->filter)
        leveldb_filterpolicy_destroy(l->filter);
    if (l && l->ropts)
        leveldb_readoptions_destroy(l->ropts);
    if (l && l->scan_opts)
        leveldb_readoptions_destroy(l->scan_opts);
    if (l && l->wopts)
        leveldb_writeoptions_destroy(l->wopts);
    free(l);
    if (p->snap_dir)
        persist__snapshot_remove(p->snap_dir, -1);
    persist_refs_cleanup(&p->refs);
    free(p->real_dir);
    free(p->undo);
    free(p->pend);
    free(p->pendkeys.p);
    free(p->kbuf);
    free(p->vbuf.p);
    free(p);
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
    leveldb_put(p->ldb->db, p->ldb->wopts, k, kl, v, vl, &e);
    if (!e)
        return 0;
    leveldb_free(e);
    return -EIO;
}

int persist__del_raw(struct persist *p, const void *k, size_t kl)
{
    char *e = NULL;
    leveldb_delete(p->ldb->db, p->ldb->wopts, k, kl, &e);
    if (!e)
        return 0;
    leveldb_free(e);
    return -EIO;
}
