/*
 * config_include.c — include_dir DIR, with Mosquitto 2.0's rules (its conf_includedir.c and
 * conf.c, checked against the 2.0.11 binary):
 *
 *   - the files are the entries of DIR whose name is longer than ".conf" and ends in ".conf";
 *   - they are read in the order Mosquitto sorts them: letter by letter case-insensitively,
 *     a tie broken by case ("A.conf" < "a.conf" < "B.conf"), a shorter name first;
 *   - each is a config file of its own: it starts outside any listener block, and its errors
 *     name it and its line; what it sets stays set for the files after it and for the rest of
 *     the file that included it, which carries on in the listener block it was in;
 *   - include_dir is read in the main file only. Mosquitto ignores it silently in an included
 *     file; Cairn ignores it too (a config that starts under Mosquitto starts here) but says so.
 *
 * A DIR that cannot be opened, and a file in it that cannot be read, stop start-up with the
 * include_dir line named.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "log.h"

#define CONFIG_INCLUDE_EXT ".conf"

/* Mosquitto's order: case-insensitive first, then by case. */
static int config_include_cmp(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a;
    const unsigned char *y = *(const unsigned char *const *)b;

    for (; *x && *y; x++, y++) {
        int d = toupper(*x) - toupper(*y);
        if (d == 0)
            d = *x - *y;
        if (d != 0)
            return d;
    }
    return *x - *y;
}

static bool config_include_wanted(const char *name)
{
    size_t n = strlen(name), e = strlen(CONFIG_INCLUDE_EXT);

    return n > e && strcmp(name + n - e, CONFIG_INCLUDE_EXT) == 0;
}

/* The names of the files to read, sorted, into *out (*n of them). 0 or -errno. */
static int config_include_list(const char *dir, char ***out, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL;
    size_t cnt = 0;
    int rc = 0;

    if (!d) {
        rc = -errno;
        goto out;
    }
    while ((de = readdir(d)) != NULL) {
        char **nv;
        if (!config_include_wanted(de->d_name))
            continue;
        nv = realloc(v, (cnt + 1) * sizeof(*v));
        if (!nv) {
            rc = -ENOMEM;
            goto out;
        }
        v = nv;
        v[cnt] = strdup(de->d_name);
        if (!v[cnt]) {
            rc = -ENOMEM;
            goto out;
        }
        cnt++;
    }
    if (cnt)
        qsort(v, cnt, sizeof(*v), config_include_cmp);
    *out = v;
    *n = cnt;
    v = NULL;
    cnt = 0;
out:
    for (size_t i = 0; i < cnt; i++)
        free(v[i]);
    free(v);
    if (d)
        closedir(d);
    return rc;
}

/* Read and parse one file of the directory: DIR/name. */
static int config_include_file(struct config_parser *p, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    char *path = realloc(NULL, dl + 1 + strlen(name) + 1);
    char *text = NULL;
    struct config_parser q = {.c = p->c,
                              .default_index = -1,
                              .err = p->err,
                              .errlen = p->errlen,
                              .pos = p->pos,
                              .depth = p->depth + 1,
                              .top = p->top};
    int rc;

    if (!path) {
        rc = config_fail(p, "out of memory");
        goto out;
    }
    memcpy(path, dir, dl);
    if (!slash)
        path[dl++] = '/';
    strcpy(path + dl, name);
    rc = config_read_file(path, &text);
    if (rc == -ENOMEM) {
        rc = config_fail(p, "out of memory");
        goto out;
    } else if (rc < 0) {
        rc = config_fail(p, "include_dir: cannot read %s: %s", path,
                         rc == -EILSEQ ? "not a text file (NUL byte)" : strerror(-rc));
        goto out;
    }
    q.name = path;
    rc = config_parse_text(&q, text);
out:
    free(text);
    free(path);
    return rc;
}

int config_include_dir(struct config_parser *p, const char *dir)
{
    char **names = NULL;
    ptrdiff_t cur;
    size_t n = 0;
    int rc = 0;

    if (p->depth > 0) {
        log_write(CAIRN_LOG_WARNING,
                  "%s:%u: include_dir ignored: it is read in the main config file only (as "
                  "Mosquitto does)",
                  p->name, p->fline);
        goto out;
    }
    rc = config_include_list(dir, &names, &n);
    if (rc == -ENOMEM) {
        rc = config_fail(p, "out of memory");
        goto out;
    } else if (rc < 0) {
        rc = config_fail(p, "include_dir: cannot read directory %s: %s", dir, strerror(-rc));
        goto out;
    }
    /* the files may add listeners, and so move the array p->cur points into */
    cur = p->cur ? p->cur - p->c->listeners : -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = config_include_file(p, dir, names[i]);
    p->cur = cur >= 0 ? &p->c->listeners[cur] : NULL;
    if (rc == 0)
        rc = config_span_open(p); /* the rest of this file */
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
