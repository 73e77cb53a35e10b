/*
 * persist_open.c — opening a store, and opening it again after a failed write.
 *
 * Open refuses — never starts empty in its place — a store that is locked by another process,
 * damaged, of an unknown format or not a Cairn store. One damage it repairs, as LevelDB's own
 * recovery allows: a log that ends in a torn record, or holds one followed by more records,
 * which is what a write cut short by a full disk or a crash leaves. LevelDB opened with
 * paranoid checks refuses some of those ("partial record without end"); when every log is
 * intact up to its torn tail (persist_logcheck.c), Cairn opens the store without them, so the
 * recovery drops the bytes of the torn record, and logs what LevelDB says it dropped. Nothing
 * acknowledged is among them: a batch is acknowledged only after its write returned, and after
 * a failed write the store is reopened before anything else is written (persist__reopen), so
 * no acknowledged record ever follows a torn one. A bad record with more log after it is not a
 * torn write: that store is refused (cairn-db, on its private copy, reads what it can).
 *
 * Ownership: persist_open() returns the handle; persist_close() frees it (and stops a backup
 * still reading the store first).
 */
#define _GNU_SOURCE /* asprintf */
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "persist.h"
#include "persist_internal.h"
#include "persist_ldb.h"
#include "persist_record.h"

#define CACHE_BYTES        (16u << 20) /* LRU block cache */
#define WRITE_BUFFER_BYTES (8u << 20)  /* memtable: fewer, larger level-0 files under load */
#define MAX_OPEN_FILES     500
#define BLOOM_BITS         10
#define REOPEN_BACKOFF_MS  200 /* between two failed reopens: a full disk stays full a while */

void persist__seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *c = err; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * What LevelDB's recovery says it dropped, from its info log (dir/LOG) since offset `from`:
 * its lines "Log #N: dropping B bytes; Corruption: ...", joined into out.
 */
static void recovery_report(const char *dir, long from, char *out, size_t outlen)
{
    char path[4096], line[512];
    size_t used = 0;
    FILE *f;

    out[0] = '\0';
    snprintf(path, sizeof path, "%s/LOG", dir);
    f = fopen(path, "re");
    if (!f)
        return;
    if (from > 0)
        fseek(f, from, SEEK_SET);
    while (fgets(line, sizeof line, f) && used + 2 < outlen) {
        const char *d = strstr(line, "dropping");
        const char *l = strstr(line, "Log #");
        if (!d || !l)
            continue;
        line[strcspn(line, "\n")] = '\0';
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? "; " : "", l);
    }
    fclose(f);
}

static long file_size(const char *dir, const char *name)
{
    char path[4096];
    FILE *f;
    long n = 0;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "re");
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0)
            n = ftell(f);
        fclose(f);
    }
    return n;
}

/* err from LevelDB's open error e: locked, corrupt or other. Returns the code. */
static int ldb_open_error(struct persist_ldb *l, const char *e, char *err, size_t errlen)
{
    int rc;

    if (strstr(e, "lock")) {
        char who[64];
        if (strstr(e, "already held"))
            snprintf(who, sizeof who, "this process");
        else
            persist__lock_holder(l->shown, who, sizeof who);
        persist__seterr(err, errlen,
                        "store %s is locked by %s: is another cairn running on it? (%s)", l->shown,
                        who, e);
        rc = -EBUSY;
    } else if (strstr(e, "Corruption")) {
        persist__seterr(err, errlen, "store %s is corrupt: %s", l->shown, e);
        rc = -EBADMSG;
    } else {
        persist__seterr(err, errlen, "cannot open store %s: %s", l->shown, e);
        rc = -EIO;
    }
    return rc;
}

/*
 * leveldb_open with the handle's options. A log that LevelDB's paranoid checks refuse is
 * repaired by its recovery (opened once without them) when it only ends in a torn tail — then
 * opened again with them, which proves the store clean — and, for cairn-db's private copy,
 * whatever the damage. *repaired gets what was dropped ("" when nothing). 0, or a negative
 * code with err set.
 */
static int ldb_open(struct persist *p, char *repaired, size_t replen, char *err, size_t errlen)
{
    struct persist_ldb *l = p->ldb;
    bool repair = false;
    char *e = NULL, why[256];
    long from = 0;
    int rc = 0;

    repaired[0] = '\0';
    l->db = leveldb_open(l->opts, l->path, &e);
    if (e && strstr(e, "Corruption")) {
        int torn = p->read_only ? 1 : persist__logs_torn_only(l->path, why, sizeof why);
        if (torn == -EBADMSG) {
            persist__seterr(err, errlen,
                            "store %s is damaged: %s; Cairn drops nothing that may have been "
                            "acknowledged: inspect it with cairn-db (LevelDB: %s)",
                            l->shown, why, e);
            rc = -EBADMSG;
            goto out;
        }
        repair = torn > 0; /* 0: the logs are intact, the damage is elsewhere */
    }
    if (repair) {
        from = file_size(l->path, "LOG");
        leveldb_free(e);
        e = NULL;
        leveldb_options_set_paranoid_checks(l->opts, 0);
        l->db = leveldb_open(l->opts, l->path, &e);
        leveldb_options_set_paranoid_checks(l->opts, 1);
    }
    if (repair && !e) {
        recovery_report(l->path, from, repaired, replen);
        if (!repaired[0])
            snprintf(repaired, replen, "the torn end of a log (see %s/LOG)", l->shown);
        if (!p->read_only) {
            leveldb_close(l->db);
            l->db = leveldb_open(l->opts, l->path, &e);
        }
    }
    if (e)
        rc = ldb_open_error(l, e, err, errlen);
out:
    if (e)
        leveldb_free(e);
    if (rc < 0)
        l->db = NULL;
    return rc;
}

int persist__reopen(struct persist *p, char *err, size_t errlen)
{
    struct persist_ldb *l = p->ldb;
    char repaired[512];
    uint64_t now = now_ms();
    int rc = 0;

    if (!l->reopen)
        goto out;
    if (now < l->reopen_after_ms) {
        persist__seterr(err, errlen,
                        "store %s unavailable since a failed write; reopening it "
                        "again shortly",
                        l->shown);
        rc = -EIO;
        goto out;
    }
    if (l->db) {
        persist__backup_stop(p, false); /* a copy reading the store ends first */
        leveldb_close(l->db);
        l->db = NULL;
    }
    rc = ldb_open(p, repaired, sizeof repaired, err, errlen);
    if (rc < 0) {
        l->reopen_after_ms = now + REOPEN_BACKOFF_MS;
        rc = -EIO;
        goto out;
    }
    l->reopen = false;
    p->unsynced = false; /* the reopen moved the log into a synced table */
    p->reopens++;
    snprintf(p->reopen_note, sizeof p->reopen_note, "%s", repaired);
out:
    return rc;
}

/* ---- open and close -------------------------------------------------------------------- */
/*
 * What dir holds: CURRENT, and LevelDB's other files (MANIFEST-*, tables; with logs: its
 * "*.log" too, which in a directory the user shares may be anybody's). A store that lost its
 * CURRENT file would be started afresh by LevelDB: that must be refused instead.
 */
static int dir_check(const char *dir, bool logs, bool *exists, bool *has_current, bool *has_tables)
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
                            (logs && strcmp(n + l - 4, ".log") == 0))))
            *has_tables = true;
    }
    closedir(d);
    return 0;
}

/*
 * Where the store of persistence_location dir lives: dir/cairn.db, a directory of its own, so
 * that dir may hold other files (Debian's /var/lib/mosquitto holds mosquitto.db; logs may go
 * there) that LevelDB would otherwise take for its own, delete or overwrite. A store an earlier
 * Cairn made right in dir (dir/CURRENT) stays where it is. dir is created (one level, as
 * LevelDB creates its own) unless read_only. 0, or a negative code with err set.
 */
static int store_path(const char *dir, bool read_only, char **out, char *err, size_t errlen)
{
    bool exists, has_current, has_tables;
    int rc = dir_check(dir, false, &exists, &has_current, &has_tables);

    *out = NULL;
    if (rc < 0) {
        persist__seterr(err, errlen, "cannot open store %s: %s", dir, strerror(-rc));
        goto out;
    }
    if (has_current) {
        *out = strdup(dir);
    } else if (has_tables) {
        persist__seterr(err, errlen, "store %s is damaged: its CURRENT file is missing", dir);
        rc = -EBADMSG;
        goto out;
    } else {
        if (!exists && !read_only && mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rc = -errno;
            persist__seterr(err, errlen, "cannot open store %s: %s", dir, strerror(-rc));
            goto out;
        }
        if (asprintf(out, "%s/%s", dir, PERSIST_STORE_NAME) < 0)
            *out = NULL;
    }
    if (!*out) {
        persist__seterr(err, errlen, "persist: out of memory");
        rc = -ENOMEM;
    }
out:
    return rc;
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
        persist__seterr(err, errlen, "cannot read store %s: %s", dir, e);
        rc = -EIO;
        goto out;
    }
    if (val) {
        if (persist_rec_meta_decode((const uint8_t *)val, vl, &format) < 0) {
            persist__seterr(err, errlen, "store %s is damaged: unreadable format record", dir);
            rc = -EBADMSG;
        } else if (format != PERSIST_FORMAT) {
            persist__seterr(err, errlen,
                            "store %s has format version %u; this cairn reads version %u", dir,
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
        persist__seterr(err, errlen, "cannot read store %s: %s", dir, e);
        rc = -EIO;
        goto out;
    }
    if (!empty) {
        persist__seterr(err, errlen,
                        "%s holds a LevelDB database that is not a Cairn store (no format key)",
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
        persist__seterr(err, errlen, "cannot initialise store %s: %s", dir, e);
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
    char *store = NULL;
    const char *path;
    bool exists, has_current, has_tables;
    int rc;

    *out = NULL;
    if (!opt || !opt->dir || !*opt->dir) {
        persist__seterr(err, errlen, "persist: no store directory given");
        return -EINVAL;
    }
    rc = store_path(opt->dir, opt->read_only, &store, err, errlen);
    if (rc < 0)
        return rc;
    rc = dir_check(store, true, &exists, &has_current, &has_tables);
    if (rc < 0) {
        persist__seterr(err, errlen, "cannot open store %s: %s", store, strerror(-rc));
        goto fail;
    }
    if (exists && !has_current && has_tables) {
        persist__seterr(err, errlen, "store %s is damaged: its CURRENT file is missing", store);
        rc = -EBADMSG;
        goto fail;
    }
    if (opt->read_only && !has_current) {
        persist__seterr(err, errlen, "no Cairn store in %s", opt->dir);
        rc = -ENOENT;
        goto fail;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->ldb = calloc(1, sizeof *p->ldb)) || !(p->kbuf = malloc(PERSIST_KEY_MAX))) {
        persist__seterr(err, errlen, "persist: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    p->read_only = opt->read_only;
    p->sync = opt->sync;
    if (!(p->location = strdup(opt->dir))) {
        persist__seterr(err, errlen, "persist: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    path = store;
    if (p->read_only) {
        int lock_fd;
        rc = persist__snapshot(store, &p->snap_dir, &lock_fd, err, errlen);
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
    /* records are small and message bodies mostly binary: snappy cost more CPU in table
     * building than it saved (persistent fan-out +18% without it) */
    leveldb_options_set_compression(p->ldb->opts, leveldb_no_compression);
    p->ldb->ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(p->ldb->ropts, 1);
    p->ldb->scan_opts = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(p->ldb->scan_opts, 1);
    leveldb_readoptions_set_fill_cache(p->ldb->scan_opts, 0);
    p->ldb->wopts = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(p->ldb->wopts, opt->sync);
    p->ldb->batch = leveldb_writebatch_create();

    if (!(p->ldb->path = strdup(path)) || !(p->ldb->shown = strdup(store))) {
        persist__seterr(err, errlen, "persist: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    rc = ldb_open(p, p->reopen_note, sizeof p->reopen_note, err, errlen);
    if (rc < 0)
        goto fail;
    p->real_dir = realpath(path, NULL);
    rc = check_format(p, store, err, errlen);
    if (rc < 0)
        goto fail;
    *out = p;
    free(store);
    return 0;
fail:
    free(store);
    persist_close(p);
    return rc;
}

void persist_close(struct persist *p)
{
    struct persist_ldb *l;
    if (!p)
        return;
    l = p->ldb;
    persist__backup_stop(p, true); /* before the store it reads is closed */
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
    if (l) {
        free(l->path);
        free(l->shown);
    }
    free(l);
    if (p->snap_dir)
        persist__snapshot_remove(p->snap_dir, -1);
    persist_refs_cleanup(&p->refs);
    free(p->real_dir);
    free(p->location);
    free(p->undo);
    free(p->pend);
    free(p->pendkeys.p);
    free(p->kbuf);
    free(p->vbuf.p);
    free(p);
}

const char *persist_repair_note(const struct persist *p)
{
    return p->reopen_note;
}

const char *persist_path(const struct persist *p)
{
    return p->ldb->shown;
}
