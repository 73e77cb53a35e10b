/*
 * httpd_file.c — which file of http_dir a GET names (httpd.h). As Mosquitto: "/" is
 * index.html, the path is resolved with realpath() and must stay inside the directory, and only
 * regular files are served. Stricter than Mosquitto where it costs nothing: a ".." segment
 * (escaped or not) is refused before the file system is asked, and the containment check is on
 * whole path components ("/srv/www" does not contain "/srv/www2/...").
 */
#define _GNU_SOURCE
#include "httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int httpd_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode the path part of target into out (cap bytes, NUL-terminated). 0, 400, 414. */
static int httpd_decode_path(const char *target, size_t len, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < len && target[i] != '?' && target[i] != '#'; i++) {
        char c = target[i];
        if (c == '%') {
            int hi = i + 2 < len ? httpd_hex(target[i + 1]) : -1;
            int lo = hi >= 0 ? httpd_hex(target[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return 400; /* a bad escape, or a NUL */
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return 414;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Does the decoded path hold a "." or ".." segment (or a backslash, for good measure)? */
static bool httpd_escapes(const char *path)
{
    const char *s = path;

    if (strchr(path, '\\'))
        return true;
    while (*s) {
        const char *e;
        size_t n;

        while (*s == '/')
            s++;
        e = strchr(s, '/');
        n = e ? (size_t)(e - s) : strlen(s);
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return true;
        s += n;
    }
    return false;
}

static const char *httpd_ctype(const char *path)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript"},
        {".mjs", "text/javascript"},
        {".css", "text/css"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".ico", "image/x-icon"},
        {".wasm", "application/wasm"},
    };
    const char *dot = strrchr(path, '.');

    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

int httpd_file_open(const char *dir, const char *target, size_t target_len, int *fd,
                    long long *size, const char **ctype)
{
    char path[PATH_MAX], full[PATH_MAX + 16];
    char *real = NULL;
    size_t dlen = strlen(dir);
    struct stat st;
    int status;

    *fd = -1;
    status = httpd_decode_path(target, target_len, path, sizeof(path));
    if (status)
        goto out;
    status = 403;
    if (path[0] != '/' || httpd_escapes(path))
        goto out;
    status = 414;
    if ((size_t)snprintf(full, sizeof(full), "%s%s%s", dir, path,
                         path[strlen(path) - 1] == '/' ? "index.html" : "") >= sizeof(full))
        goto out;
    real = realpath(full, NULL);
    if (!real) {
        status = errno == ENOENT || errno == ENOTDIR ? 404
                 : errno == EACCES                   ? 403
                 : errno == ENAMETOOLONG             ? 414
                                                     : 500;
        goto out;
    }
    status = 403; /* outside the directory (through a symbolic link) */
    if (strncmp(real, dir, dlen) != 0 || (real[dlen] != '/' && !(dlen == 1 && dir[0] == '/')))
        goto out;
    *fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) {
        status = errno == EACCES ? 403 : 404;
        goto out;
    }
    if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        goto out; /* 403: a directory, a device, a fifo */
    }
    *size = (long long)st.st_size;
    *ctype = httpd_ctype(real);
    status = 200;
out:
    free(real);
    return status;
}
