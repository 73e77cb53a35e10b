/*
 * outq.h — a connection's output queue: a list of chunks that leave in one writev.
 *
 * Two kinds of chunk: copies (small packets appended into a shared 4 KiB chunk, so ten acks
 * are one iovec) and references to an immutable buffer owned elsewhere (a build-once PUBLISH
 * body shared by many subscribers), released through a callback once written or dropped.
 *
 * Ownership: the queue owns its chunks; a reference chunk borrows its buffer until it calls
 * release(obj) exactly once (consumed, outq_cleanup, or at once when queuing fails).
 *
 * Copy chunks of the standard size (OUTQ_CHUNK) are not given back to malloc when written: up
 * to OUTQ_SPARE of them wait on a free list for the next copy. Under fan-out every subscriber
 * fills and drains chunks each loop pass; handing 16 KiB back each time let malloc trim and
 * regrow its heap, a page fault per 4 KiB (a tenth of the broker's CPU in fan-out of 1 KiB
 * messages). The list is the loop thread's (outq is used by conn.c only): not thread-safe.
 * outq_spare_release() empties it (at exit, and for leak checkers).
 */
#ifndef CAIRN_OUTQ_H
#define CAIRN_OUTQ_H

#include <stddef.h>
#include <sys/uio.h>

#define OUTQ_CHUNK 16384u
#define OUTQ_SPARE 64u /* written chunks kept for reuse: at most 1 MiB */

struct outq_chunk;

struct outq {
    struct outq_chunk *head;
    struct outq_chunk *tail;
    size_t bytes; /* queued, not yet consumed */
};

void outq_init(struct outq *q);
/* Drops everything queued, releasing references. */
void outq_cleanup(struct outq *q);
/* Append a copy of buf. 0 or -ENOMEM. */
int outq_copy(struct outq *q, const void *buf, size_t len) __attribute__((warn_unused_result));
/* Append a copy of a then b (a packet's patched header and its payload, without first joining
 * them): both or neither. 0 or -ENOMEM. */
int outq_copy2(struct outq *q, const void *a, size_t alen, const void *b, size_t blen)
    __attribute__((warn_unused_result));
/* Append a reference; release(obj) (may be NULL) runs once: when consumed, at cleanup, or
 * before returning -ENOMEM. */
int outq_ref(struct outq *q, const void *buf, size_t len, void (*release)(void *obj), void *obj);
/* Fill up to max iovecs from the head; returns how many. */
int outq_iov(const struct outq *q, struct iovec *iov, int max);
/* n bytes were written: drop them from the head (n <= bytes). */
void outq_consume(struct outq *q, size_t n);
/* Free the spare chunks; returns how many there were. */
size_t outq_spare_release(void);

#endif
