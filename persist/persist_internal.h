/*
 * persist_internal.h — shared inside persist/ and with its unit tests only. Not for the broker.
 */
#ifndef CAIRN_PERSIST_INTERNAL_H
#define CAIRN_PERSIST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "persist.h"
#include "persist_record.h"
#include "persist_refs.h"

#define PERSIST_KEY_MAX   (1 + 2 + PERSIST_CID_MAX + 65535 + 8) /* sub key: cid + filter */
#define PERSIST_SMALL_REC 32                                    /* every fixed-size record */

struct persist_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
};

/* A reference count as it was before the open batch changed it. */
struct persist_undo {
    uint64_t id;
    uint32_t count;
    uint32_t len;
};

enum persist_pend_op { PERSIST_PEND_PUT, PERSIST_PEND_DEL, PERSIST_PEND_KILL };

/* A per-client key the open batch put or removed (KILL: the client's queue prefix). */
struct persist_pend {
    size_t off; /* key bytes in pendkeys */
    uint32_t klen;
    uint8_t op;
    uint64_t msg_id; /* queue entries */
};

struct persist_ldb; /* LevelDB's handles, persist_leveldb.c */

/*
 * The handle. persist_batch.c owns the open batch's bookkeeping (reference counts, undo and
 * pending logs); persist_leveldb.c owns the store and the LevelDB batch behind persist__ldb_*.
 */
struct persist {
    struct persist_ldb *ldb;
    size_t batch_ops;
    int batch_err; /* sticky until the next commit, which reports it */
    char batch_errmsg[200];
    unsigned fail_commits;
    bool read_only;
    bool sync;             /* opt.sync: every commit is fsynced */
    bool unsynced;         /* a batch was written without fsync since the last sync */
    uint64_t reopens;      /* after failed writes */
    char reopen_note[512]; /* what the last open's recovery dropped, "" when nothing */
    bool restored;
    bool checked;     /* a commit failed: look entries up before dequeue and update */
    uint64_t ignored; /* dequeues and updates of entries the store does not hold */
    char *snap_dir;
    char *real_dir; /* absolute path LevelDB's table mappings show in /proc/self/maps */
    char *location; /* opt.dir: persistence_location as given (the default backup's parent) */
    struct persist_backup *backup; /* the running or unreported backup, persist_backup.c */

    struct persist_refs refs;
    struct persist_undo *undo;
    size_t nundo, capundo;
    struct persist_pend *pend;
    size_t npend, cappend;
    struct persist_buf pendkeys;
    uint8_t *kbuf; /* PERSIST_KEY_MAX bytes: every key fits */
    struct persist_buf vbuf;
    struct persist_stats stats;
};

/* ---- persist_leveldb.c: what the batch logic needs from the store ---------------------- */
void persist__ldb_put(struct persist *p, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);
void persist__ldb_del(struct persist *p, const uint8_t *k, size_t kl);
/* Drop what the LevelDB batch holds. */
void persist__ldb_clear(struct persist *p);
/*
 * The committed value of k: 1 and *v (free with persist__ldb_free), 0 when absent, or -EIO
 * with err set.
 */
int persist__ldb_get(struct persist *p, const uint8_t *k, size_t kl, char **v, size_t *vl,
                     char *err, size_t errlen);
void persist__ldb_free(void *v);
/*
 * Committed records whose keys start with pre, in key order: cb returns 0 to go on, anything
 * else stops the scan and is returned. -EIO with err set on a read error.
 */
typedef int (*persist_ldb_cb)(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);
int persist__ldb_scan(struct persist *p, const uint8_t *pre, size_t pl, persist_ldb_cb cb,
                      void *ctx, char *err, size_t errlen);

/* ---- persist_batch.c: the open batch's bookkeeping ------------------------------------- */
/* Put the reference counts back as they were when the batch opened. */
void persist__batch_rollback(struct persist *p);
/* Forget the open batch (after a write, or after a rollback). */
void persist__batch_reset(struct persist *p);
bool persist__buf_reserve(struct persist_buf *b, size_t n);

/* Grow *arr (of *cap elements of elem bytes) to hold need; false when out of memory. */
static inline bool persist__grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*arr, c * elem);
    if (!q)
        return false;
    *arr = q;
    *cap = c;
    return true;
}

/*
 * persist_restore.c: what restore makes of the records, fed in key order by the backend.
 * Sessions are kept until the scan has passed the queues and bodies, then reported with their
 * queue summaries; queue entries count body references into refs; every record is checked.
 */
struct persist_scan_session {
    size_t off; /* client id in the arena */
    size_t len;
    size_t user_off;          /* s.user in the arena (its view is set when reported) */
    struct persist_session s; /* s.user.p is not valid until then: the arena moves */
    struct persist_queue_info q;
};

struct persist_scan {
    const struct persist_restore_ops *ops;
    void *ctx;
    struct persist_refs *refs;
    struct persist_stats *stats;
    struct persist_scan_session *sess;
    size_t nsess, capsess;
    uint8_t *arena; /* client ids and owners of sess[] */
    size_t arena_len, arena_cap;
    size_t cur;      /* merge cursor into sess[] for the kind being scanned */
    uint8_t curkind; /* its kind */
    bool emitted;    /* sessions reported */
    uint64_t found;  /* referenced bodies seen */
    uint64_t max_id;
    /* references counted by the queue entries: (id, count, len), sorted by id once the bodies
     * begin, so that bodies are matched by a forward merge and the table is built in one go */
    struct persist_ref *ents;
    size_t nents, capents;
    size_t nsorted; /* ents[0, nsorted) are sorted and merged */
    size_t mcur;    /* merge cursor for bodies */
};

void persist__scan_init(struct persist_scan *s, const struct persist_restore_ops *ops, void *ctx,
                        struct persist_refs *refs, struct persist_stats *stats);
/*
 * One record. Returns 0; a callback's non-zero value; or -EBADMSG (damaged), -EPROTO (format),
 * -ENOMEM, with err set. *drop: the record is garbage (a body nothing refers to) or an orphan
 * (a client's record without its session) and may be deleted.
 */
int persist__scan_record(struct persist_scan *s, const uint8_t *k, size_t kl, const uint8_t *v,
                         size_t vl, bool *drop, char *err, size_t errlen);
/*
 * After the last record: builds refs, sets stats->missing, reports the sessions if no later
 * kind did. 0, a callback's non-zero value, or -ENOMEM with err set.
 */
int persist__scan_finish(struct persist_scan *s, char *err, size_t errlen);
void persist__scan_cleanup(struct persist_scan *s);

/* References the in-memory table holds for msg_id (0 when the body is not stored). */
uint32_t persist__refcount(const struct persist *p, uint64_t msg_id);
/* Number of distinct message ids with references. */
size_t persist__refcount_size(const struct persist *p);
/* Write bytes under a key at once, outside the batch (tests: damaged records, old formats). */
int persist__put_raw(struct persist *p, const void *k, size_t kl, const void *v, size_t vl);
/* Delete a key at once, outside the batch (tests). */
int persist__del_raw(struct persist *p, const void *k, size_t kl);
/* Dequeues and updates skipped because the store does not hold the entry. */
uint64_t persist__ignored(const struct persist *p);
/* Fault injection: the next n commits fail as if LevelDB had failed the write. */
void persist__fail_commits(struct persist *p, unsigned n);

/*
 * persist_backup.c: stop the copy thread before the store it reads is closed (persist_close, a
 * reopen): cancel it and wait for it. release: forget the backup too (persist_close); else
 * persist_backup_finish() still reports it.
 */
void persist__backup_stop(struct persist *p, bool release);

/*
 * persist_logcheck.c: is every LevelDB log in dir intact, or intact up to a torn tail (a write
 * cut short)? The number of logs with a torn tail (>= 0); -EBADMSG when a log holds a bad
 * record with more after it (why says which and where); -errno when one cannot be read.
 */
int persist__logs_torn_only(const char *dir, char *why, size_t whylen);
/* One log's bytes: 0 intact (*torn false) or torn at its tail (*torn true, *at where); -EBADMSG
 * when a bad record at *at has more of the log after it. Pure: fuzzed (fuzz_logcheck). */
int persist__log_check(const uint8_t *b, size_t n, bool *torn, size_t *at);

/*
 * persist_snapshot.c: a private copy of a LevelDB directory, for read-only inspection.
 * Takes LevelDB's own lock on src/LOCK (so no broker can start on it meanwhile), hard-links
 * the immutable table files and copies the rest into a new temporary directory. *tmp is
 * malloc'ed; remove it with persist__snapshot_remove(). On error, err gets the reason.
 */
int persist__snapshot(const char *src, char **tmp, int *lock_fd, char *err, size_t errlen);
void persist__snapshot_remove(char *tmp, int lock_fd);
/*
 * Describe who holds the LevelDB lock on dir, for an error message: "process 1234" or "this
 * process" or "another process".
 */
void persist__lock_holder(const char *dir, char *out, size_t outlen);

#endif
