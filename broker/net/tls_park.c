/*
 * tls_park.c — an idle TLS connection keeps no record buffers.
 *
 * mbedTLS 2.28 as Debian builds it (no MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH) gives each
 * connection an input and an output record buffer of 16.7 KB for its whole life. Between
 * records their contents are dead but for one thing: the 8-byte sequence number of the next
 * incoming record, kept in front of the input record (in_ctr; the outgoing one lives in the
 * context, cur_out_ctr). So when a connection has nothing half-read, undecrypted, unread or
 * unsent, both buffers go back (parked) and come back (unparked) before mbedTLS is next called
 * on it, with in_ctr restored and the record pointers set as mbedtls_ssl_reset_in_out_pointers
 * and mbedtls_ssl_update_out_pointers set them (exported by Debian's libmbedtls14,
 * ssl_internal.h). An idle connection then costs its mbedTLS context, session and keys: a few KB
 * instead of 34 (and the 11 KB of the earlier madvise trim, whose partial pages stayed).
 *
 * The buffers come from mmap (one pair per mapping), so a park gives memory back to the kernel
 * at once, as glibc's heap would not for chunks in its middle. A few pairs stay cached for the
 * next unpark, so a busy connection parking between events costs a list operation, not two
 * system calls. Before a pair is cached or unmapped, the bytes it held are wiped (as
 * mbedtls_ssl_free wipes its own): up to the high-water mark the caller tracked.
 *
 * A new connection starts parked (mbedtls_ssl_setup's buffers go back at once), so a storm's
 * accepted connections hold nothing until their ClientHello comes, and the heap keeps no holes
 * where handshake buffers were. Loop thread only: the buffers are unparked before a handshake
 * step goes to a handshake thread, and parked again after the handshake.
 */
#include <string.h>
#include <sys/mman.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/ssl_internal.h>

#include "tls_internal.h"

#define TLS_PARK_CACHE 32 /* pairs kept mapped for the next unpark */

/* One mapping: the input buffer, then the output buffer (cache-line aligned). */
#define TLS_PARK_OUT_OFF (((size_t)MBEDTLS_SSL_IN_BUFFER_LEN + 63) & ~(size_t)63)
#define TLS_PARK_LEN     (TLS_PARK_OUT_OFF + MBEDTLS_SSL_OUT_BUFFER_LEN)

struct tls_park_free {
    struct tls_park_free *next;
};

static struct tls_park_free *tls_park_cache;
static unsigned tls_park_cached;

static unsigned char *tls_park_get(void)
{
    struct tls_park_free *f = tls_park_cache;
    void *p;

    if (f) {
        tls_park_cache = f->next;
        tls_park_cached--;
        return (unsigned char *)f;
    }
    p = mmap(NULL, TLS_PARK_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void tls_park_put(unsigned char *base)
{
    struct tls_park_free *f = (struct tls_park_free *)base;

    if (tls_park_cached >= TLS_PARK_CACHE) {
        munmap(base, TLS_PARK_LEN);
        return;
    }
    f->next = tls_park_cache;
    tls_park_cache = f;
    tls_park_cached++;
}

static size_t tls_park_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

bool tls__park_idle(const mbedtls_ssl_context *ssl)
{
    return ssl->in_left == 0 && ssl->in_msglen == 0 && ssl->in_offt == NULL && ssl->out_left == 0 &&
           mbedtls_ssl_check_pending(ssl) == 0;
}

void tls__park(mbedtls_ssl_context *ssl, struct tls_park *p)
{
    if (p->parked || !ssl->in_buf || !ssl->out_buf)
        return;
    memcpy(p->in_ctr, ssl->in_ctr, sizeof(p->in_ctr));
    if (p->ours) {
        mbedtls_platform_zeroize(ssl->in_buf, tls_park_min(p->in_hi, MBEDTLS_SSL_IN_BUFFER_LEN));
        mbedtls_platform_zeroize(ssl->out_buf, tls_park_min(p->out_hi, MBEDTLS_SSL_OUT_BUFFER_LEN));
        tls_park_put(ssl->in_buf);
    } else {
        /* mbedTLS's own, from mbedtls_ssl_setup */
        mbedtls_platform_zeroize(ssl->in_buf, MBEDTLS_SSL_IN_BUFFER_LEN);
        mbedtls_platform_zeroize(ssl->out_buf, MBEDTLS_SSL_OUT_BUFFER_LEN);
        free(ssl->in_buf);
        free(ssl->out_buf);
    }
    ssl->in_buf = ssl->out_buf = NULL;
    ssl->in_hdr = ssl->in_ctr = ssl->in_len = ssl->in_iv = ssl->in_msg = NULL;
    ssl->out_hdr = ssl->out_ctr = ssl->out_len = ssl->out_iv = ssl->out_msg = NULL;
    p->parked = true;
    p->ours = false;
    p->in_hi = p->out_hi = 0;
}

void tls__park_setup(mbedtls_ssl_context *ssl, struct tls_park *p)
{
    /* fresh from mbedtls_ssl_setup: nothing to wipe, the counter is zero */
    free(ssl->in_buf);
    free(ssl->out_buf);
    ssl->in_buf = ssl->out_buf = NULL;
    memset(p, 0, sizeof(*p));
    p->parked = true;
}

int tls__unpark(mbedtls_ssl_context *ssl, struct tls_park *p)
{
    unsigned char *base;

    if (!p->parked)
        return 0;
    base = tls_park_get();
    if (!base)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    ssl->in_buf = base;
    ssl->out_buf = base + TLS_PARK_OUT_OFF;
    ssl->in_hdr = ssl->in_buf + 8;
    ssl->out_hdr = ssl->out_buf + 8;
    mbedtls_ssl_update_out_pointers(ssl, ssl->transform_out);
    mbedtls_ssl_update_in_pointers(ssl);
    memcpy(ssl->in_ctr, p->in_ctr, sizeof(p->in_ctr));
    p->parked = false;
    p->ours = true;
    return 0;
}

void tls__park_release(mbedtls_ssl_context *ssl, struct tls_park *p)
{
    if (!p->ours)
        return; /* parked (nothing held) or mbedTLS's own (mbedtls_ssl_free frees them) */
    mbedtls_platform_zeroize(ssl->in_buf, tls_park_min(p->in_hi, MBEDTLS_SSL_IN_BUFFER_LEN));
    mbedtls_platform_zeroize(ssl->out_buf, tls_park_min(p->out_hi, MBEDTLS_SSL_OUT_BUFFER_LEN));
    tls_park_put(ssl->in_buf);
    ssl->in_buf = ssl->out_buf = NULL;
    p->ours = false;
}

void tls__park_track(const mbedtls_ssl_context *ssl, struct tls_park *p, const unsigned char *buf,
                     size_t n, bool in)
{
    const unsigned char *base = in ? ssl->in_buf : ssl->out_buf;
    size_t len = in ? MBEDTLS_SSL_IN_BUFFER_LEN : MBEDTLS_SSL_OUT_BUFFER_LEN;
    size_t *hi = in ? &p->in_hi : &p->out_hi;

    if (p->ours && buf >= base && buf < base + len && (size_t)(buf - base) + n > *hi)
        *hi = (size_t)(buf - base) + n;
}
