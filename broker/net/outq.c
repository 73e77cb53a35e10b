/*
 * outq.c — chunks of output. A copy chunk keeps its bytes inline after the header; the tail copy
 * chunk takes further small writes until full, so packets queued in one iteration coalesce.
 */
#include "outq.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct outq_chunk {
    struct outq_chunk *next;
    const uint8_t *data;
    size_t len; /* bytes in data */
    size_t off; /* bytes already written */
    size_t cap; /* copy chunks: room in buf; 0 for references */
    void (*release)(void *obj);
    void *obj;
    uint8_t buf[];
};

void outq_init(struct outq *q)
{
    q->head = NULL;
    q->tail = NULL;
    q->bytes = 0;
}

/* Written standard-size copy chunks, linked through next (outq.h, "spare"). */
static struct outq_chunk *outq_spare;
static size_t outq_nspare;

static void outq_chunk_free(struct outq_chunk *ch)
{
    if (ch->cap == OUTQ_CHUNK && outq_nspare < OUTQ_SPARE) {
        ch->next = outq_spare;
        outq_spare = ch;
        outq_nspare++;
        return;
    }
    if (ch->cap == 0 && ch->release)
        ch->release(ch->obj);
    free(ch);
}

/* A copy chunk with room for cap bytes: a spare one when cap is the standard size. */
static struct outq_chunk *outq_chunk_new(size_t cap)
{
    struct outq_chunk *ch;

    if (cap == OUTQ_CHUNK && outq_spare) {
        ch = outq_spare;
        outq_spare = ch->next;
        outq_nspare--;
    } else {
        ch = malloc(sizeof(*ch) + cap);
    }
    return ch;
}

size_t outq_spare_release(void)
{
    size_t n = outq_nspare;

    while (outq_spare) {
        struct outq_chunk *ch = outq_spare;
        outq_spare = ch->next;
        free(ch);
    }
    outq_nspare = 0;
    return n;
}

void outq_cleanup(struct outq *q)
{
    struct outq_chunk *ch = q->head;

    while (ch) {
        struct outq_chunk *next = ch->next;
        outq_chunk_free(ch);
        ch = next;
    }
    outq_init(q);
}

static void outq_append(struct outq *q, struct outq_chunk *ch)
{
    ch->next = NULL;
    if (q->tail)
        q->tail->next = ch;
    else
        q->head = ch;
    q->tail = ch;
    q->bytes += ch->len;
}

int outq_copy2(struct outq *q, const void *a, size_t alen, const void *b, size_t blen)
{
    struct outq_chunk *t = q->tail;
    struct outq_chunk *ch;
    size_t len = alen + blen, cap;
    uint8_t *to;
    int rc = 0;

    if (len == 0)
        goto out;
    if (t && t->cap && t->cap - t->len >= len) {
        to = t->buf + t->len;
        t->len += len;
        q->bytes += len;
    } else {
        cap = len > OUTQ_CHUNK ? len : OUTQ_CHUNK;
        ch = outq_chunk_new(cap);
        if (!ch) {
            rc = -ENOMEM;
            goto out;
        }
        ch->data = ch->buf;
        ch->len = len;
        ch->off = 0;
        ch->cap = cap;
        ch->release = NULL;
        ch->obj = NULL;
        outq_append(q, ch);
        to = ch->buf;
    }
    if (alen)
        memcpy(to, a, alen);
    if (blen)
        memcpy(to + alen, b, blen);
out:
    return rc;
}

int outq_copy(struct outq *q, const void *buf, size_t len)
{
    return outq_copy2(q, buf, len, NULL, 0);
}

int outq_ref(struct outq *q, const void *buf, size_t len, void (*release)(void *obj), void *obj)
{
    struct outq_chunk *ch = NULL;
    int rc = 0;

    if (len == 0) {
        if (release)
            release(obj);
        goto out;
    }
    ch = malloc(sizeof(*ch));
    if (!ch) {
        if (release)
            release(obj);
        rc = -ENOMEM;
        goto out;
    }
    ch->data = buf;
    ch->len = len;
    ch->off = 0;
    ch->cap = 0;
    ch->release = release;
    ch->obj = obj;
    outq_append(q, ch);
out:
    return rc;
}

int outq_iov(const struct outq *q, struct iovec *iov, int max)
{
    int n = 0;

    for (const struct outq_chunk *ch = q->head; ch && n < max; ch = ch->next) {
        iov[n].iov_base = (void *)(uintptr_t)(ch->data + ch->off);
        iov[n].iov_len = ch->len - ch->off;
        n++;
    }
    return n;
}

void outq_consume(struct outq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0 && q->head) {
        struct outq_chunk *ch = q->head;
        size_t left = ch->len - ch->off;

        if (n < left) {
            ch->off += n;
            break;
        }
        n -= left;
        q->head = ch->next;
        if (!q->head)
            q->tail = NULL;
        outq_chunk_free(ch);
    }
}
