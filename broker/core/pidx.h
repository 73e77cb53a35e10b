/*
 * pidx.h — packet id -> in-flight entry, for a window too large to scan.
 *
 * A session's in-flight window is a list in send order; an acknowledgement names a packet id.
 * With the default window (20) a scan finds it at once, but max_inflight_messages 0 lets a
 * window grow to thousands, and a scan per acknowledgement made a fast subscriber's acks cost
 * O(window) each (QoS 2 fan-out spent 94% of the broker in it). The index makes find, insert
 * and remove O(1): open addressing with linear probing over the 16-bit ids (0 is never an id,
 * so it marks an empty slot), backward-shift deletion (no tombstones), at most half full.
 *
 * Ownership: the index owns its arrays; the values are borrowed (the session owns entries).
 */
#ifndef CAIRN_PIDX_H
#define CAIRN_PIDX_H

#include <stddef.h>
#include <stdint.h>

struct pidx {
    uint16_t *key; /* 0: empty */
    void **val;
    uint32_t cap; /* power of two, or 0 */
    uint32_t n;
};

void pidx_init(struct pidx *x);
void pidx_cleanup(struct pidx *x);
/* Add pid (non-zero) -> v. 0, -EEXIST when pid is there already, -ENOMEM. */
int pidx_put(struct pidx *x, uint16_t pid, void *v) __attribute__((warn_unused_result));
/* The value of pid, or NULL. */
void *pidx_get(const struct pidx *x, uint16_t pid);
/* Remove pid (nothing when absent). */
void pidx_del(struct pidx *x, uint16_t pid);

#endif
