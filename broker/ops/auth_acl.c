/*
 * auth_acl.c — parsing Mosquitto ACL files and answering read/write/subscribe. See auth_acl.h.
 *
 * Rules are kept as lists: anonymous "topic" rules, per-user "topic" rules (users sorted by name
 * for bsearch; repeated blocks of one user merged at load) and "pattern" rules. A check scans the
 * lists that apply twice at most (denies, then grants); files are small and rules few, so plain
 * arrays beat a tree here.
 */
#include "auth_acl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "mqtt.h"

#define AUTH_ACL_DENY      0 /* rule access value for "deny" */
#define AUTH_ACL_SUB_STACK 256

struct auth_acl_rule {
    int access; /* AUTH_ACL_READ | AUTH_ACL_WRITE, or AUTH_ACL_DENY */
    char *filter;
    size_t len;
    bool subst; /* a pattern with a "%c" or "%u" level */
};

struct auth_acl_list {
    struct auth_acl_rule *v;
    size_t n;
    size_t cap;
};

struct auth_acl_user {
    char *name;
    unsigned order; /* position in the file, so merging keeps the rules' order */
    struct auth_acl_list rules;
};

struct auth_acl {
    struct auth_acl_list anon;
    struct auth_acl_list patterns;
    struct auth_acl_user *users; /* sorted by name after loading */
    size_t n_users;
    size_t cap_users;
};

static void auth_acl_list_cleanup(struct auth_acl_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].filter);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Append r (taking its filter). 0 or -ENOMEM (the filter is freed then). */
static int auth_acl_list_take(struct auth_acl_list *l, struct auth_acl_rule r)
{
    int rc = 0;

    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        struct auth_acl_rule *nv = realloc(l->v, ncap * sizeof(*nv));

        if (!nv) {
            free(r.filter);
            rc = -ENOMEM;
            goto out;
        }
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = r;
out:
    return rc;
}

/* ---- matching ---------------------------------------------------------------------------- */

/* Is [s, s+n) exactly the level text lit? */
static bool auth_acl_level_is(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* An id that may stand for a whole level: present and without '/', '+' or '#'. */
static bool auth_acl_id_ok(const char *id)
{
    return id && !strpbrk(id, "/+#");
}

/*
 * Write rule r's filter into buf with "%c" / "%u" levels replaced. *out points at the result
 * (r->filter itself when nothing is substituted; buf, or a malloc'd buffer in *heap that the
 * caller frees, otherwise). 0, -EACCES when the rule cannot apply to this client, -ENOMEM.
 */
static int auth_acl_subst(const struct auth_acl_rule *r, const char *cid, const char *user,
                          char *buf, size_t cap, char **heap, const char **out, size_t *outlen)
{
    const char *s, *end = r->filter + r->len;
    size_t need = 0, pos = 0;
    int rc = 0;

    *heap = NULL;
    if (!r->subst) {
        *out = r->filter;
        *outlen = r->len;
        goto out;
    }
    /* Two passes over the levels: measure, then copy. */
    for (int pass = 0; pass < 2; pass++) {
        char *dst = pass ? (need <= cap ? buf : *heap) : NULL;

        if (pass == 1 && need > cap) {
            *heap = malloc(need);
            if (!*heap) {
                rc = -ENOMEM;
                goto out;
            }
            dst = *heap;
        }
        pos = 0;
        s = r->filter;
        while (s <= end) {
            const char *slash = memchr(s, '/', (size_t)(end - s));
            const char *le = slash ? slash : end;
            size_t n = (size_t)(le - s);
            const char *text = s;

            if (auth_acl_level_is(s, n, "%c") || auth_acl_level_is(s, n, "%u")) {
                const char *id = s[1] == 'c' ? cid : user;

                if (!auth_acl_id_ok(id)) {
                    rc = -EACCES;
                    goto out;
                }
                text = id;
                n = strlen(id);
            }
            if (dst)
                memcpy(dst + pos, text, n);
            pos += n;
            if (slash) {
                if (dst)
                    dst[pos] = '/';
                pos++;
            }
            s = le + 1;
        }
        need = pos;
        if (pass == 1)
            *out = dst;
    }
    *outlen = pos;
out:
    if (rc) {
        free(*heap);
        *heap = NULL;
    }
    return rc;
}

/* Next level of [*s, end): sets [*lv, *lv + *ln) and advances *s; false at the end. */
static bool auth_acl_next_level(const char **s, const char *end, bool *done, const char **lv,
                                size_t *ln)
{
    const char *slash;

    if (*done)
        return false;
    slash = memchr(*s, '/', (size_t)(end - *s));
    *lv = *s;
    *ln = (size_t)((slash ? slash : end) - *s);
    if (slash)
        *s = slash + 1;
    else
        *done = true;
    return true;
}

/*
 * Does filter R cover filter F: is every topic that F matches also matched by R? Both valid.
 * Level by level: "#" in R covers the rest (and the parent level, as "#" matches it); "+" in R
 * covers any one level of F but "#"; a literal covers only the same literal.
 */
static bool auth_acl_covers(const char *r, size_t rlen, const char *f, size_t flen)
{
    const char *re = r + rlen, *fe = f + flen, *rl, *fl;
    size_t rn, fn;
    bool rdone = false, fdone = false, first = true;

    for (;;) {
        bool rh = auth_acl_next_level(&r, re, &rdone, &rl, &rn);
        bool fh = auth_acl_next_level(&f, fe, &fdone, &fl, &fn);

        /* [MQTT-4.7.2-1]: a wildcard first level in R does not reach F's "$" topics. */
        if (first && fh && fn && fl[0] == '$' && rh &&
            (auth_acl_level_is(rl, rn, "#") || auth_acl_level_is(rl, rn, "+")))
            return false;
        first = false;
        if (rh && auth_acl_level_is(rl, rn, "#"))
            return true;
        if (!rh || !fh)
            return !rh && !fh;
        if (auth_acl_level_is(fl, fn, "#"))
            return false;
        if (auth_acl_level_is(rl, rn, "+"))
            continue;
        if (rn != fn || memcmp(rl, fl, rn) != 0 || auth_acl_level_is(fl, fn, "+"))
            return false;
    }
}

enum auth_acl_op { AUTH_ACL_OP_MATCH, AUTH_ACL_OP_COVER };

/*
 * Scan list l for a rule that applies: want AUTH_ACL_DENY finds deny rules, otherwise rules
 * granting that access. op: match a topic name, or cover a filter. -ENOMEM counts as found for
 * denies and as not found for grants: when memory runs out the answer is no.
 */
static bool auth_acl_scan(const struct auth_acl_list *l, int want, enum auth_acl_op op,
                          const char *cid, const char *user, const char *t, size_t tlen)
{
    char buf[AUTH_ACL_SUB_STACK], *heap;
    const char *rf;
    size_t rlen;
    bool hit = false;

    for (size_t i = 0; i < l->n && !hit; i++) {
        const struct auth_acl_rule *r = &l->v[i];
        int rc;

        if (want == AUTH_ACL_DENY ? r->access != AUTH_ACL_DENY : !(r->access & want))
            continue;
        rc = auth_acl_subst(r, cid, user, buf, sizeof(buf), &heap, &rf, &rlen);
        if (rc == -ENOMEM) {
            hit = want == AUTH_ACL_DENY;
            break;
        }
        if (rc)
            continue;
        if (op == AUTH_ACL_OP_MATCH)
            hit = mqtt_topic_match((const uint8_t *)rf, rlen, (const uint8_t *)t, tlen);
        else
            hit = auth_acl_covers(rf, rlen, t, tlen);
        free(heap);
    }
    return hit;
}

static int auth_acl_user_key_cmp(const void *key, const void *b)
{
    const struct auth_acl_user *u = b;

    return strcmp(key, u->name);
}

/* A user without a block of its own has no "topic" rules. */
static const struct auth_acl_list auth_acl_none;

/* The "topic" rules that apply to this username (NULL: anonymous). */
static const struct auth_acl_list *auth_acl_topics_for(const struct auth_acl *a,
                                                       const char *username)
{
    const struct auth_acl_user *u;

    if (!username)
        return &a->anon;
    u = a->n_users ? bsearch(username, a->users, a->n_users, sizeof(*u), auth_acl_user_key_cmp)
                   : NULL;
    return u ? &u->rules : &auth_acl_none;
}

static bool auth_acl_decide(const struct auth_acl *a, const char *cid, const char *user,
                            const char *t, size_t tlen, int access, enum auth_acl_op op)
{
    const struct auth_acl_list *topics = auth_acl_topics_for(a, user);
    bool ok = false;

    if (auth_acl_scan(topics, AUTH_ACL_DENY, op, cid, user, t, tlen))
        goto out;
    if (auth_acl_scan(&a->patterns, AUTH_ACL_DENY, op, cid, user, t, tlen))
        goto out;
    ok = auth_acl_scan(topics, access, op, cid, user, t, tlen) ||
         auth_acl_scan(&a->patterns, access, op, cid, user, t, tlen);
out:
    return ok;
}

bool auth_acl_check(const struct auth_acl *a, const char *client_id, const char *username,
                    const char *topic, size_t len, int access)
{
    return auth_acl_decide(a, client_id, username, topic, len, access, AUTH_ACL_OP_MATCH);
}

bool auth_acl_check_subscribe(const struct auth_acl *a, const char *client_id, const char *username,
                              const char *filter, size_t len)
{
    return auth_acl_decide(a, client_id, username, filter, len, AUTH_ACL_READ, AUTH_ACL_OP_COVER);
}

/* ---- parsing ----------------------------------------------------------------------------- */

static const char *auth_acl_skip_blank(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static const char *auth_acl_word_end(const char *s, const char *end)
{
    while (s < end && *s != ' ' && *s != '\t')
        s++;
    return s;
}

static bool auth_acl_word_is(const char *s, const char *e, const char *lit)
{
    return auth_acl_level_is(s, (size_t)(e - s), lit);
}

/* "[access] FILTER" after "topic" or "pattern" into *r. 0 or -EINVAL with *why. */
static int auth_acl_parse_rule(const char *s, const char *end, bool pattern,
                               struct auth_acl_rule *r, const char **why)
{
    const char *w = auth_acl_word_end(s, end), *f = s;
    int rc = -EINVAL;

    *why = "missing topic filter";
    if (s == end)
        goto out;
    r->access = AUTH_ACL_READ | AUTH_ACL_WRITE;
    if (auth_acl_word_is(s, w, "read") || auth_acl_word_is(s, w, "write") ||
        auth_acl_word_is(s, w, "readwrite") || auth_acl_word_is(s, w, "deny")) {
        if (auth_acl_word_is(s, w, "read"))
            r->access = AUTH_ACL_READ;
        else if (auth_acl_word_is(s, w, "write"))
            r->access = AUTH_ACL_WRITE;
        else if (auth_acl_word_is(s, w, "deny"))
            r->access = AUTH_ACL_DENY;
        f = auth_acl_skip_blank(w, end);
        if (f == end)
            goto out;
    } else if (w != end) {
        *why = "unknown access type (read, write, readwrite or deny)";
        goto out;
    }
    *why = "invalid topic filter";
    if (mqtt_topic_filter_validate((const uint8_t *)f, (size_t)(end - f)) != 0)
        goto out;
    *why = "out of memory";
    rc = -ENOMEM;
    r->len = (size_t)(end - f);
    r->filter = strndup(f, r->len);
    if (!r->filter)
        goto out;
    r->subst = false;
    if (pattern) {
        const char *p = r->filter, *pe = r->filter + r->len, *lv;
        bool done = false;
        size_t n;

        while (auth_acl_next_level(&p, pe, &done, &lv, &n))
            if (auth_acl_level_is(lv, n, "%c") || auth_acl_level_is(lv, n, "%u"))
                r->subst = true;
    }
    rc = 0;
out:
    return rc;
}

/* A new user block. 0 or -ENOMEM. */
static int auth_acl_add_user(struct auth_acl *a, const char *s, size_t n)
{
    int rc = -ENOMEM;

    if (a->n_users == a->cap_users) {
        size_t ncap = a->cap_users ? a->cap_users * 2 : 8;
        struct auth_acl_user *nv = realloc(a->users, ncap * sizeof(*nv));

        if (!nv)
            goto out;
        a->users = nv;
        a->cap_users = ncap;
    }
    a->users[a->n_users] = (struct auth_acl_user){.order = (unsigned)a->n_users};
    a->users[a->n_users].name = strndup(s, n);
    if (!a->users[a->n_users].name)
        goto out;
    a->n_users++;
    rc = 0;
out:
    return rc;
}

/* One non-blank, non-comment line. 0, or -EINVAL / -ENOMEM with *why. */
static int auth_acl_parse_line(struct auth_acl *a, const char *s, const char *end, const char **why)
{
    const char *w = auth_acl_word_end(s, end), *rest = auth_acl_skip_blank(w, end);
    struct auth_acl_rule r = {0};
    struct auth_acl_list *dst;
    int rc = -EINVAL;

    if (auth_acl_word_is(s, w, "user")) {
        *why = "user line without a name";
        if (rest == end)
            goto out;
        *why = "out of memory";
        rc = auth_acl_add_user(a, rest, (size_t)(end - rest));
        goto out;
    }
    if (!auth_acl_word_is(s, w, "topic") && !auth_acl_word_is(s, w, "pattern")) {
        *why = "unknown keyword (topic, pattern or user)";
        goto out;
    }
    rc = auth_acl_parse_rule(rest, end, s[0] == 'p', &r, why);
    if (rc)
        goto out;
    if (s[0] == 'p')
        dst = &a->patterns;
    else
        dst = a->n_users ? &a->users[a->n_users - 1].rules : &a->anon;
    *why = "out of memory";
    rc = auth_acl_list_take(dst, r);
out:
    return rc;
}

static int auth_acl_user_cmp(const void *x, const void *y)
{
    const struct auth_acl_user *a = x, *b = y;
    int c = strcmp(a->name, b->name);

    return c ? c : (a->order > b->order) - (a->order < b->order);
}

/* Sort users and fold repeated blocks of one user into the first. 0 or -ENOMEM. */
static int auth_acl_merge_users(struct auth_acl *a)
{
    size_t keep = 0;
    int rc = 0;

    if (a->n_users)
        qsort(a->users, a->n_users, sizeof(*a->users), auth_acl_user_cmp);
    for (size_t i = 0; i < a->n_users; i++) {
        struct auth_acl_user *u = &a->users[i];

        if (keep && strcmp(a->users[keep - 1].name, u->name) == 0) {
            struct auth_acl_list *dst = &a->users[keep - 1].rules;

            for (size_t j = 0; j < u->rules.n; j++) {
                if (rc == 0)
                    rc = auth_acl_list_take(dst, u->rules.v[j]);
                else
                    free(u->rules.v[j].filter);
            }
            free(u->rules.v);
            free(u->name);
            continue;
        }
        a->users[keep++] = *u;
    }
    a->n_users = keep;
    return rc;
}

struct auth_acl *auth_acl_parse(const char *name, const char *text, size_t len, char *err,
                                size_t errlen)
{
    struct auth_acl *a = calloc(1, sizeof(*a));
    const char *s = text, *end = text + len, *why = "out of memory";
    unsigned line = 0;

    if (!a)
        goto fail;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end, *b = auth_acl_skip_blank(s, e);

        line++;
        while (e > b && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (memchr(b, '\0', (size_t)(e - b))) {
            why = "NUL byte in line";
            goto fail;
        }
        if (b < e && *b != '#' && auth_acl_parse_line(a, b, e, &why))
            goto fail;
        s = nl ? nl + 1 : end;
    }
    why = "out of memory";
    if (auth_acl_merge_users(a))
        goto fail;
    return a;
fail:
    snprintf(err, errlen, "%s:%u: %s", name, line, why);
    auth_acl_free(a);
    return NULL;
}

struct auth_acl *auth_acl_load(const char *path, char *err, size_t errlen)
{
    struct auth_acl *a = NULL;
    char *text = NULL;
    size_t len;

    if (auth__read_file(path, &text, &len, err, errlen) == 0)
        a = auth_acl_parse(path, text, len, err, errlen);
    free(text);
    return a;
}

void auth_acl_free(struct auth_acl *a)
{
    if (!a)
        return;
    auth_acl_list_cleanup(&a->anon);
    auth_acl_list_cleanup(&a->patterns);
    for (size_t i = 0; i < a->n_users; i++) {
        auth_acl_list_cleanup(&a->users[i].rules);
        free(a->users[i].name);
    }
    free(a->users);
    free(a);
}
