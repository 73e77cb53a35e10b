/*
 * auth_passwd.c — reading and checking Mosquitto password files. See auth_passwd.h.
 */
#include "auth_passwd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/sha512.h>

#include "auth.h"

#define AUTH_PASSWD_SALT_MAX 64         /* longest salt accepted when reading */
#define AUTH_PASSWD_ITER_MAX 100000000u /* refuse absurd counts: each CONNECT pays them */

enum { AUTH_PASSWD_SHA512 = 6, AUTH_PASSWD_PBKDF2 = 7 };

struct auth_passwd_entry {
    char *user;
    unsigned line;
    int type;
    unsigned iterations;
    size_t salt_len;
    uint8_t salt[AUTH_PASSWD_SALT_MAX];
    uint8_t hash[AUTH_PASSWD_HASH_LEN];
};

struct auth_passwd {
    struct auth_passwd_entry *v; /* sorted by user for bsearch */
    size_t n;
};

/*
 * The stand-in an unknown user is checked against: the same work as a real $7$ entry, so the
 * time of a refusal does not say whether the user exists.
 */
static const struct auth_passwd_entry auth_passwd_dummy = {
    .user = NULL,
    .type = AUTH_PASSWD_PBKDF2,
    .iterations = AUTH_PASSWD_ITERATIONS,
    .salt_len = AUTH_PASSWD_SALT_LEN,
};

/* Equal, in time that depends only on len. */
static bool auth_passwd_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    volatile uint8_t diff = 0;

    for (size_t i = 0; i < len; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

static int auth_passwd_digest(const struct auth_passwd_entry *e, const void *password, size_t pwlen,
                              uint8_t out[AUTH_PASSWD_HASH_LEN])
{
    int rc = -ENOMEM;

    if (e->type == AUTH_PASSWD_SHA512) {
        mbedtls_sha512_context sha;

        mbedtls_sha512_init(&sha);
        if (mbedtls_sha512_starts_ret(&sha, 0) == 0 &&
            mbedtls_sha512_update_ret(&sha, password, pwlen) == 0 &&
            mbedtls_sha512_update_ret(&sha, e->salt, e->salt_len) == 0 &&
            mbedtls_sha512_finish_ret(&sha, out) == 0)
            rc = 0;
        mbedtls_sha512_free(&sha);
    } else {
        mbedtls_md_context_t md;

        mbedtls_md_init(&md);
        if (mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), 1) == 0 &&
            mbedtls_pkcs5_pbkdf2_hmac(&md, password, pwlen, e->salt, e->salt_len, e->iterations,
                                      AUTH_PASSWD_HASH_LEN, out) == 0)
            rc = 0;
        mbedtls_md_free(&md);
    }
    return rc;
}

/* Decode base64 text [s, s+len) into exactly want bytes (want 0: 1..cap bytes). */
static int auth_passwd_b64(const char *s, size_t len, uint8_t *out, size_t cap, size_t want,
                           size_t *got)
{
    size_t n = 0;
    int rc = -EINVAL;

    if (len == 0)
        goto out;
    if (mbedtls_base64_decode(out, cap, &n, (const unsigned char *)s, len) != 0)
        goto out;
    if (n == 0 || (want && n != want))
        goto out;
    *got = n;
    rc = 0;
out:
    return rc;
}

/*
 * Parse the hash text of one line into e. 0, or -EINVAL with a reason in *why.
 */
static int auth_passwd_parse_hash(const char *h, size_t len, struct auth_passwd_entry *e,
                                  const char **why)
{
    const char *end = h + len, *salt, *dollar;
    size_t got;
    int rc = -EINVAL;

    *why = "not a hashed password (convert the file with cairn-passwd -U)";
    if (len < 3 || h[0] != '$' || h[2] != '$')
        goto out;
    *why = "unknown password hash type (Cairn reads $6$ and $7$)";
    if (h[1] == '7') {
        char *num_end;
        unsigned long it;

        e->type = AUTH_PASSWD_PBKDF2;
        *why = "bad iteration count in $7$ hash";
        if (h + 3 >= end || h[3] < '0' || h[3] > '9')
            goto out;
        errno = 0;
        it = strtoul(h + 3, &num_end, 10);
        if (errno || num_end >= end || *num_end != '$' || it == 0 || it > AUTH_PASSWD_ITER_MAX)
            goto out;
        e->iterations = (unsigned)it;
        salt = num_end + 1;
    } else if (h[1] == '6') {
        e->type = AUTH_PASSWD_SHA512;
        salt = h + 3;
    } else {
        goto out;
    }
    *why = "malformed salt or hash (expected $SALT$HASH in base64)";
    dollar = memchr(salt, '$', (size_t)(end - salt));
    if (!dollar)
        goto out;
    if (auth_passwd_b64(salt, (size_t)(dollar - salt), e->salt, sizeof(e->salt), 0, &got))
        goto out;
    e->salt_len = got;
    if (auth_passwd_b64(dollar + 1, (size_t)(end - dollar - 1), e->hash, sizeof(e->hash),
                        AUTH_PASSWD_HASH_LEN, &got))
        goto out;
    rc = 0;
out:
    return rc;
}

int auth_passwd_verify(const char *hash, const void *password, size_t pwlen)
{
    struct auth_passwd_entry e = {0};
    uint8_t got[AUTH_PASSWD_HASH_LEN];
    const char *why;
    int rc;

    rc = auth_passwd_parse_hash(hash, strlen(hash), &e, &why);
    if (rc)
        goto out;
    rc = auth_passwd_digest(&e, password, pwlen, got);
    if (rc)
        goto out;
    rc = auth_passwd_equal(got, e.hash, sizeof(got)) ? 0 : -EACCES;
out:
    return rc;
}

static int auth_passwd_cmp(const void *a, const void *b)
{
    const struct auth_passwd_entry *x = a, *y = b;

    return strcmp(x->user, y->user);
}

static int auth_passwd_key_cmp(const void *key, const void *b)
{
    const struct auth_passwd_entry *y = b;

    return strcmp(key, y->user);
}

/* Append a parsed line. 0 or -ENOMEM / -EINVAL (with *why). */
static int auth_passwd_add_line(struct auth_passwd *p, size_t *cap, const char *s, size_t len,
                                unsigned line, const char **why)
{
    const char *colon = memchr(s, ':', len);
    struct auth_passwd_entry e = {.line = line};
    int rc = -EINVAL;

    *why = "expected username:hash";
    if (!colon || colon == s)
        goto out;
    rc = auth_passwd_parse_hash(colon + 1, (size_t)(s + len - colon - 1), &e, why);
    if (rc)
        goto out;
    rc = -ENOMEM;
    *why = "out of memory";
    if (p->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct auth_passwd_entry *nv = realloc(p->v, ncap * sizeof(*nv));

        if (!nv)
            goto out;
        p->v = nv;
        *cap = ncap;
    }
    e.user = strndup(s, (size_t)(colon - s));
    if (!e.user)
        goto out;
    p->v[p->n++] = e;
    rc = 0;
out:
    return rc;
}

struct auth_passwd *auth_passwd_parse(const char *name, const char *text, size_t len, char *err,
                                      size_t errlen)
{
    struct auth_passwd *p = calloc(1, sizeof(*p));
    const char *s = text, *end = text + len, *why = "out of memory";
    size_t cap = 0;
    unsigned line = 0;

    if (!p)
        goto fail;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        size_t n;

        line++;
        /* Trailing spaces and a CR (files edited on Windows) are not part of the hash. */
        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        n = (size_t)(e - s);
        if (memchr(s, '\0', n)) {
            why = "NUL byte in line";
            goto fail;
        }
        if (n && s[0] != '#' && auth_passwd_add_line(p, &cap, s, n, line, &why) != 0)
            goto fail;
        s = nl ? nl + 1 : end;
    }
    if (p->n)
        qsort(p->v, p->n, sizeof(*p->v), auth_passwd_cmp);
    for (size_t i = 1; i < p->n; i++) {
        if (strcmp(p->v[i - 1].user, p->v[i].user) == 0) {
            unsigned a = p->v[i - 1].line, b = p->v[i].line;

            snprintf(err, errlen, "%s:%u: duplicate user \"%s\" (also at line %u)", name,
                     a > b ? a : b, p->v[i].user, a > b ? b : a);
            goto free;
        }
    }
    return p;
fail:
    snprintf(err, errlen, "%s:%u: %s", name, line, why);
free:
    auth_passwd_free(p);
    return NULL;
}

struct auth_passwd *auth_passwd_load(const char *path, char *err, size_t errlen)
{
    struct auth_passwd *p = NULL;
    char *text = NULL;
    size_t len;

    if (auth__read_file(path, &text, &len, err, errlen) == 0)
        p = auth_passwd_parse(path, text, len, err, errlen);
    free(text);
    return p;
}

void auth_passwd_free(struct auth_passwd *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].user);
    free(p->v);
    free(p);
}

size_t auth_passwd_count(const struct auth_passwd *p)
{
    return p->n;
}

int auth_passwd_check(const struct auth_passwd *p, const char *username, const void *password,
                      size_t pwlen)
{
    const struct auth_passwd_entry *e = NULL;
    uint8_t got[AUTH_PASSWD_HASH_LEN];
    int rc;

    if (username && p->n)
        e = bsearch(username, p->v, p->n, sizeof(*p->v), auth_passwd_key_cmp);
    rc = auth_passwd_digest(e ? e : &auth_passwd_dummy, password, pwlen, got);
    if (rc)
        goto out;
    rc = (e && auth_passwd_equal(got, e->hash, sizeof(got))) ? 0 : -EACCES;
out:
    return rc;
}

int auth_passwd_format(char *out, size_t outlen, const void *password, size_t pwlen,
                       const uint8_t salt[AUTH_PASSWD_SALT_LEN], unsigned iterations)
{
    struct auth_passwd_entry e = {
        .type = AUTH_PASSWD_PBKDF2, .iterations = iterations, .salt_len = AUTH_PASSWD_SALT_LEN};
    unsigned char salt64[32], hash64[100];
    size_t n1, n2;
    int rc = -EINVAL, w;

    if (iterations == 0 || iterations > AUTH_PASSWD_ITER_MAX)
        goto out;
    memcpy(e.salt, salt, AUTH_PASSWD_SALT_LEN);
    rc = auth_passwd_digest(&e, password, pwlen, e.hash);
    if (rc)
        goto out;
    rc = -EINVAL;
    if (mbedtls_base64_encode(salt64, sizeof(salt64), &n1, e.salt, e.salt_len) ||
        mbedtls_base64_encode(hash64, sizeof(hash64), &n2, e.hash, sizeof(e.hash)))
        goto out;
    w = snprintf(out, outlen, "$7$%u$%.*s$%.*s", iterations, (int)n1, (const char *)salt64, (int)n2,
                 (const char *)hash64);
    if (w < 0 || (size_t)w >= outlen)
        goto out;
    rc = 0;
out:
    return rc;
}
