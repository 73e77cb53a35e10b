/*
 * persist_ldb.h — LevelDB's handles of one store, shared by persist_open.c (open, reopen,
 * close), persist_leveldb.c (commit, reads, restore) and persist_backup.c (a copy from a
 * snapshot). Internal to persist/: with the three files including it, the only code that sees
 * <leveldb/c.h>.
 */
#ifndef CAIRN_PERSIST_LDB_H
#define CAIRN_PERSIST_LDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <leveldb/c.h>

struct persist;

struct persist_ldb {
    leveldb_t *db; /* NULL while a reopen after a failed write has not succeeded */
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ropts;     /* point reads and window reads */
    leveldb_readoptions_t *scan_opts; /* full scans: do not flush the cache */
    leveldb_writeoptions_t *wopts;
    leveldb_writebatch_t *batch; /* the open batch */
    char *path;                  /* the directory LevelDB opened (the store, or its copy) */
    char *shown;                 /* the directory as the user named it, for messages */
    bool reopen;                 /* a write failed: reopen before the next one */
    uint64_t reopen_after_ms;    /* not before (CLOCK_MONOTONIC), after a failed reopen */
};

/* err gets the formatted text on one line (LevelDB's text may hold newlines); err may be NULL. */
void persist__seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * A write failed (LevelDB's log may now end in a torn record, or LevelDB refuses every further
 * write): close the database and open it again, which replays the log, drops the torn tail,
 * moves what it holds into a table and starts a fresh log. Until that has worked, nothing more
 * is written after the torn record (a record behind it would be lost with it: LevelDB drops the
 * rest of a log block past a bad record). 0, or -EIO with err set (then tried again at the
 * next commit, not sooner than a moment later).
 */
int persist__reopen(struct persist *p, char *err, size_t errlen);

#endif
