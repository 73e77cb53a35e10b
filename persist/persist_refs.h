/*
 * persist_refs.h — how many queue entries refer to each stored message body: msg id -> count
 * and payload length. Internal to persist/.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones), 16 bytes a
 * slot, at most 80% full; the slot count grows by half, not doubling, and a slot is chosen by
 * multiply-shift range reduction, so one million references cost about 21 MB. Message id 0 is
 * kept beside the table (0 marks an empty slot).
 */
#ifndef CAIRN_PERSIST_REFS_H
#define CAIRN_PERSIST_REFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct persist_ref {
    uint64_t id;
    uint32_t count;
    uint32_t len; /* payload length, written into queue entry records */
};

struct persist_refs {
    struct persist_ref *slots;
    size_t cap;
    size_t used;
    struct persist_ref zero;
};

/* The entry of id, or NULL when id has no references. Valid until the next change. */
struct persist_ref *persist_refs_find(const struct persist_refs *t, uint64_t id);
/* The entry of id, added with count 0 when absent (the caller then sets a count or removes
 * it); NULL when out of memory. Valid until the next change. */
struct persist_ref *persist_refs_get(struct persist_refs *t, uint64_t id);
void persist_refs_remove(struct persist_refs *t, uint64_t id);
/*
 * Bulk loading, for restore: random inserts into a big table cost a cache miss each, sorting
 * and filling it in slot order does not.
 *
 * persist_refs_sort_merge() sorts a by id (radix sort; tmp holds n entries) and merges entries
 * of the same id, adding their counts; *out_n gets the new length. 0 or -ENOMEM.
 * persist_refs_build() replaces the table's content with a's n entries (distinct ids, counts
 * > 0), reordering a. 0 or -ENOMEM (then the table is empty).
 */
int persist_refs_sort_merge(struct persist_ref *a, struct persist_ref *tmp, size_t n,
                            size_t *out_n);
int persist_refs_build(struct persist_refs *t, struct persist_ref *a, size_t n);
/* Number of ids with references. */
size_t persist_refs_size(const struct persist_refs *t);
/* Frees the table; the struct is left empty and usable. */
void persist_refs_cleanup(struct persist_refs *t);

#endif
