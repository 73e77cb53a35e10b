/*
 * auth.c — the per-listener view of password file, ACL file and allow_anonymous. See auth.h.
 */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_acl.h"
#include "auth_passwd.h"
#include "config.h"
#include "log.h"

#define AUTH_FILE_MAX (64u * 1024u * 1024u)

struct auth_listener {
    const struct auth_passwd *pw; /* NULL: no password file */
    const struct auth_acl *acl;   /* NULL: no ACL file, everything allowed */
    bool allow_anonymous;
    bool identity_is_username; /* use_identity_as_username or use_subject_as_username */
};

struct auth {
    struct auth_listener *v;
    size_t n;
    /* Every loaded file, owned here; listeners point into these. */
    struct auth_passwd **pws;
    struct auth_acl **acls;
    size_t n_files;
};

int auth__read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc;

    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        size_t got;

        if (cap - n < 4096) {
            char *nb;

            rc = -EFBIG;
            if (cap >= AUTH_FILE_MAX) {
                snprintf(err, errlen, "%s: file too large", path);
                goto out;
            }
            cap = cap ? cap * 2 : 8192;
            nb = realloc(buf, cap + 1);
            rc = -ENOMEM;
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

/*
 * err = "CONF:LINE: OPTION: " + why when the config file names the option's line (config.h
 * records it), else why alone (why is the file's own "FILE:LINE: reason" or "FILE: reason").
 */
static void auth_fail(const struct config *cfg, unsigned line, const char *opt, const char *why,
                      char *err, size_t errlen)
{
    char at[320];

    if (cfg->path && line) /* the line may be in a file include_dir read */
        snprintf(err, errlen, "%s: %s: %s", config_where(cfg, line, at, sizeof(at)), opt, why);
    else
        snprintf(err, errlen, "%s", why);
}

/* Load the files sec names, recording them in a. 0 or -1 with err set. */
static int auth_load_files(struct auth *a, const struct config *cfg,
                           const struct config_security *sec, struct auth_listener *l, char *err,
                           size_t errlen)
{
    struct auth_passwd *pw = NULL;
    struct auth_acl *acl = NULL;
    size_t n = a->n_files;
    char why[512];
    int rc = -1;

    if (sec->password_file) {
        pw = auth_passwd_load(sec->password_file, why, sizeof(why));
        if (!pw) {
            auth_fail(cfg, sec->line.password_file, "password_file", why, err, errlen);
            goto out;
        }
    }
    if (sec->acl_file) {
        acl = auth_acl_load(sec->acl_file, why, sizeof(why));
        if (!acl) {
            auth_fail(cfg, sec->line.acl_file, "acl_file", why, err, errlen);
            goto out;
        }
    }
    a->pws[n] = pw;
    a->acls[n] = acl;
    a->n_files++;
    l->pw = pw;
    l->acl = acl;
    pw = NULL;
    acl = NULL;
    rc = 0;
out:
    auth_passwd_free(pw);
    auth_acl_free(acl);
    return rc;
}

struct auth *auth_new(const struct config *cfg, char *err, size_t errlen)
{
    struct auth *a = calloc(1, sizeof(*a));
    size_t n = cfg->n_listeners;

    if (!a)
        goto nomem;
    a->v = calloc(n ? n : 1, sizeof(*a->v));
    a->pws = calloc(n + 1, sizeof(*a->pws));
    a->acls = calloc(n + 1, sizeof(*a->acls));
    if (!a->v || !a->pws || !a->acls)
        goto nomem;
    a->n = n;
    if (!cfg->per_listener_settings) {
        struct auth_listener shared = {0};

        if (auth_load_files(a, cfg, &cfg->sec, &shared, err, errlen))
            goto fail;
        for (size_t i = 0; i < n; i++)
            a->v[i] = shared;
    }
    for (size_t i = 0; i < n; i++) {
        const struct config_security *ls = &cfg->listeners[i].sec;

        if (cfg->per_listener_settings && auth_load_files(a, cfg, ls, &a->v[i], err, errlen))
            goto fail;
        /* Same rule as config_allow_anonymous(): the listener's own value when it set one
         * (only meaningful with per_listener_settings; the parser leaves -1 otherwise). */
        a->v[i].allow_anonymous =
            ls->allow_anonymous < 0 ? cfg->allow_anonymous : ls->allow_anonymous != 0;
        a->v[i].identity_is_username = ls->use_identity_as_username || ls->use_subject_as_username;
    }
    return a;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    auth_free(a);
    return NULL;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_files; i++) {
        auth_passwd_free(a->pws[i]);
        auth_acl_free(a->acls[i]);
    }
    free(a->pws);
    free(a->acls);
    free(a->v);
    free(a);
}

int auth_reload(struct auth **a, const struct config *cfg, char *err, size_t errlen)
{
    char buf[512];
    struct auth *na = auth_new(cfg, buf, sizeof(buf));
    int rc = -EINVAL;

    if (!na) {
        log_write(CAIRN_LOG_ERR, "reload: keeping the previous passwords and ACLs: %s", buf);
        if (err)
            snprintf(err, errlen, "%s", buf);
        goto out;
    }
    auth_free(*a);
    *a = na;
    rc = 0;
out:
    return rc;
}

static const struct auth_listener *auth_listener_get(const struct auth *a, int listener)
{
    return (listener >= 0 && (size_t)listener < a->n) ? &a->v[listener] : NULL;
}

int auth_check_connect(const struct auth *a, int listener, const char *identity,
                       const char *username, const void *password, size_t pwlen,
                       const char **username_out, bool *verified)
{
    const struct auth_listener *l = auth_listener_get(a, listener);
    int rc = 5;

    *username_out = NULL;
    *verified = false;
    if (!l)
        goto out;
    if (l->identity_is_username) {
        if (!identity)
            goto out;
        *username_out = identity;
        *verified = true;
        rc = 0;
        goto out;
    }
    if (!username) {
        rc = l->allow_anonymous ? 0 : 5;
        goto out;
    }
    if (l->pw) {
        rc = auth_passwd_check(l->pw, username, password ? password : "", password ? pwlen : 0) ? 4
                                                                                                : 0;
        *verified = rc == 0;
        /* A user in the file who sent no password is refused too: the file has a hash for
         * every user, and an empty password is a password. */
    } else {
        rc = l->allow_anonymous ? 0 : 5;
    }
    if (rc == 0)
        *username_out = username;
out:
    return rc;
}

static bool auth_topic(const struct auth *a, int listener, const char *client_id,
                       const char *username, const char *topic, size_t len, int access)
{
    const struct auth_listener *l = auth_listener_get(a, listener);

    if (listener == AUTH_LISTENER_BRIDGE)
        return true;
    if (!l)
        return false;
    if (!l->acl)
        return true;
    if (access == 0)
        return auth_acl_check_subscribe(l->acl, client_id, username, topic, len);
    return auth_acl_check(l->acl, client_id, username, topic, len, access);
}

bool auth_can_read(const struct auth *a, int listener, const char *client_id, const char *username,
                   const char *topic, size_t len)
{
    return auth_topic(a, listener, client_id, username, topic, len, AUTH_ACL_READ);
}

bool auth_can_write(const struct auth *a, int listener, const char *client_id, const char *username,
                    const char *topic, size_t len)
{
    return auth_topic(a, listener, client_id, username, topic, len, AUTH_ACL_WRITE);
}

bool auth_can_subscribe(const struct auth *a, int listener, const char *client_id,
                        const char *username, const char *filter, size_t len)
{
    return auth_topic(a, listener, client_id, username, filter, len, 0);
}
