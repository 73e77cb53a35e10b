/*
 * persist_internal.h — shared inside persist/ and with its unit tests only. Not for the broker.
 */
#ifndef CAIRN_PERSIST_INTERNAL_H
#define CAIRN_PERSIST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "persist.h"

/* References the in-memory table holds for msg_id (0 when the body is not stored). */
uint32_t persist__refcount(const struct persist *p, uint64_t msg_id);
/* Number of distinct message ids with references. */
size_t persist__refcount_size(const struct persist *p);
/* Write bytes under a key at once, outside the batch (tests: damaged records, old formats). */
int persist__put_raw(struct persist *p, const void *k, size_t kl, const void *v, size_t vl);
/* Fault injection: the next n commits fail as if LevelDB had failed the write. */
void persist__fail_commits(struct persist *p, unsigned n);

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
