/*
 * persist_snapshot.c — a private copy of a store, so that inspecting it (cairn-db) cannot
 * change it: opening a LevelDB directory replays its log into new files, and that is a write.
 *
 * LevelDB locks DIR/LOCK with a POSIX record lock (fcntl F_SETLK). Taking the same lock while
 * copying keeps a broker from starting on the store half-way through, and a broker that holds
 * it makes the copy fail with the broker's pid. Table files (.ldb, .sst) are never modified once
 * written, so they are hard-linked when the copy is on the same file system.
 *
 * Note: record locks belong to the process and closing any descriptor of the file drops them,
 * so a process must not snapshot a store it also has open read-write.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist_internal.h"

static int lock_pid(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
        return 0;
    return (int)fl.l_pid;
}

void persist__lock_holder(const char *dir, char *out, size_t outlen)
{
    char path[4096];
    int pid = 0;
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        pid = lock_pid(fd);
        close(fd);
    }
    if (pid > 0)
        snprintf(out, outlen, "process %d", pid);
    else
        snprintf(out, outlen, "another process");
}

static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    int rc = 0;
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = -1;
    if (in < 0)
        return -errno;
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = -errno;
        goto out;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                goto out;
            }
            off += w;
        }
    }
out:
    if (out >= 0 && close(out) < 0 && rc == 0)
        rc = -errno;
    close(in);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t l = strlen(s), m = strlen(suffix);
    return l >= m && strcmp(s + l - m, suffix) == 0;
}

int persist__snapshot(const char *src, char **tmp, int *lock_fd, char *err, size_t errlen)
{
    char from[4096], to[4096];
    const char *base = getenv("TMPDIR");
    DIR *d = NULL;
    struct dirent *de;
    int rc = 0;
    int fd;

    *tmp = NULL;
    *lock_fd = -1;
    snprintf(from, sizeof from, "%s/LOCK", src);
    fd = open(from, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &fl) < 0) {
            int pid = lock_pid(fd);
            close(fd);
            if (pid > 0)
                snprintf(err, errlen,
                         "store %s is in use by process %d (a running cairn?): stop it first", src,
                         pid);
            else
                snprintf(err, errlen, "store %s is in use by another process: stop it first", src);
            return -EBUSY;
        }
        *lock_fd = fd;
    } else if (errno == EACCES || errno == EROFS) {
        /* an inspector without write access: it cannot lock, but it can see a lock */
        fd = open(from, O_RDONLY | O_CLOEXEC);
        int pid = fd >= 0 ? lock_pid(fd) : 0;
        if (fd >= 0)
            close(fd);
        if (pid > 0) {
            snprintf(err, errlen,
                     "store %s is in use by process %d (a running cairn?): stop it first", src,
                     pid);
            return -EBUSY;
        }
    } else if (errno != ENOENT) {
        rc = -errno;
        snprintf(err, errlen, "cannot open %s: %s", from, strerror(errno));
        return rc;
    }

    if (!base || !*base)
        base = "/tmp";
    size_t tl = strlen(base) + sizeof "/cairn-db.XXXXXX";
    *tmp = malloc(tl);
    if (!*tmp) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(*tmp, tl, "%s/cairn-db.XXXXXX", base);
    if (!mkdtemp(*tmp)) {
        rc = -errno;
        snprintf(err, errlen, "cannot create a temporary copy in %s: %s", base, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        goto fail;
    }
    d = opendir(src);
    if (!d) {
        rc = -errno;
        snprintf(err, errlen, "cannot read store %s: %s", src, strerror(errno));
        goto fail;
    }
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        struct stat st;
        if (strcmp(n, "LOCK") == 0 || strcmp(n, "LOG") == 0 || strcmp(n, "LOG.old") == 0)
            continue;
        snprintf(from, sizeof from, "%s/%s", src, n);
        snprintf(to, sizeof to, "%s/%s", *tmp, n);
        if (stat(from, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if ((ends_with(n, ".ldb") || ends_with(n, ".sst")) && link(from, to) == 0)
            continue;
        rc = copy_file(from, to);
        if (rc < 0) {
            snprintf(err, errlen, "cannot copy %s: %s", from, strerror(-rc));
            goto fail;
        }
    }
    closedir(d);
    return 0;
fail:
    if (d)
        closedir(d);
    persist__snapshot_remove(*tmp, *lock_fd);
    *tmp = NULL;
    *lock_fd = -1;
    return rc;
}

void persist__snapshot_remove(char *tmp, int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd);
    if (!tmp)
        return;
    DIR *d = opendir(tmp);
    if (d) {
        struct dirent *de;
        char path[4096];
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", tmp, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmp);
    free(tmp);
}
