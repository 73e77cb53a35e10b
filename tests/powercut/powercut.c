/*
 * powercut.c — an LD_PRELOAD library that turns "kill -9" into "power cut" for the files of one
 * directory, and can kill its process at an exact point of the store's commit.
 *
 * The model (the strictest one a power cut allows): bytes written to a file are lost unless an
 * fsync/fdatasync of that file followed them. So every write to a regular file under
 * $CAIRN_POWERCUT_DIR is held in this process's memory — not written — until an fsync or
 * fdatasync of the same open file writes the held bytes, in order, and syncs them. When the
 * process dies (kill -9, or the kill below), what is held dies with it: exactly what a power
 * cut at that moment would lose. Metadata (create, truncate at open, rename, unlink) is applied
 * at once, as a journaling file system would mostly keep it; LevelDB syncs the directory after
 * the renames that matter anyway.
 *
 * Data structures: one slot per file descriptor (fd < PC_MAX_FD) opened under the directory:
 * its path, its logical size and write position, and the held extents — (offset, bytes) in the
 * order written. A read through read()/pread() of such an fd sees the held bytes over the file's
 * own (the page cache would). fstat() is not adjusted: LevelDB only sizes files it has synced.
 *
 * Kill points, for deterministic crash tests ($CAIRN_POWERCUT_KILL = "sync:N" or "write:N"):
 * after the Nth successful fsync/fdatasync (sync) or write (write) of a LevelDB log file
 * ("*.log") under the directory, the process sends itself SIGKILL before returning — the batch
 * is durable (sync) or in the kernel (write), and the caller never learns it. With
 * $CAIRN_POWERCUT_HOLD=0 writes are not held (a plain kill -9 at an exact point).
 *
 * Not covered (LevelDB does not use them on its store files): writev, mmap writes, dup'ed fds,
 * fork. The library is single-threaded in spirit: a mutex guards its table because LevelDB's
 * compaction thread writes and syncs table files.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PC_MAX_FD 4096

struct pc_extent {
    off_t off;
    size_t len;
    char *data;
};

struct pc_file {
    bool used;
    char path[PATH_MAX];
    bool is_log; /* a LevelDB write-ahead log: "NNNNNN.log" */
    bool append;
    off_t pos;  /* write position (write()) */
    off_t size; /* logical size: the real file's plus what is held */
    struct pc_extent *ext;
    size_t n, cap;
};

static struct pc_file pc_files[PC_MAX_FD];
static pthread_mutex_t pc_lock = PTHREAD_MUTEX_INITIALIZER;
static char pc_dir[PATH_MAX];
static size_t pc_dirlen;
static bool pc_hold;      /* hold writes until synced (unless CAIRN_POWERCUT_HOLD=0) */
static char pc_kill_kind; /* 's' or 'w', 0 none */
static long pc_kill_at, pc_kill_count;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pread64)(int, void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static off_t (*real_lseek)(int, off_t, int);

__attribute__((constructor)) static void pc_init(void)
{
    const char *d = getenv("CAIRN_POWERCUT_DIR"), *k = getenv("CAIRN_POWERCUT_KILL");

    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_read = dlsym(RTLD_NEXT, "read");
    real_pread = dlsym(RTLD_NEXT, "pread");
    real_pread64 = dlsym(RTLD_NEXT, "pread64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_lseek = dlsym(RTLD_NEXT, "lseek");
    if (d && *d && !realpath(d, pc_dir)) /* not made yet: the name as given (absolute) */
        snprintf(pc_dir, sizeof(pc_dir), "%s", d);
    pc_dirlen = strlen(pc_dir);
    while (pc_dirlen > 1 && pc_dir[pc_dirlen - 1] == '/')
        pc_dir[--pc_dirlen] = '\0';
    pc_hold = pc_dirlen > 0 &&
              !(getenv("CAIRN_POWERCUT_HOLD") && strcmp(getenv("CAIRN_POWERCUT_HOLD"), "0") == 0);
    if (k && (strncmp(k, "sync:", 5) == 0 || strncmp(k, "write:", 6) == 0)) {
        pc_kill_kind = k[0];
        pc_kill_at = atol(strchr(k, ':') + 1);
    }
}

/* The absolute form of path (relative to dirfd), without resolving the last component. */
static bool pc_abs(int dirfd, const char *path, char *out)
{
    char base[PATH_MAX];

    if (path[0] == '/') {
        snprintf(out, PATH_MAX, "%s", path);
        return true;
    }
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof(base)))
            return false;
    } else {
        char link[64];
        ssize_t n;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
        n = readlink(link, base, sizeof(base) - 1);
        if (n < 0)
            return false;
        base[n] = '\0';
    }
    return snprintf(out, PATH_MAX, "%s/%s", base, path) < PATH_MAX;
}

static bool pc_under_dir(const char *abs)
{
    return pc_dirlen && strncmp(abs, pc_dir, pc_dirlen) == 0 && abs[pc_dirlen] == '/';
}

static void pc_forget(struct pc_file *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->ext[i].data);
    free(f->ext);
    memset(f, 0, sizeof(*f));
}

/* Start tracking fd, just opened on path with flags. */
static void pc_track(int fd, int dirfd, const char *path, int flags)
{
    char abs[PATH_MAX];
    struct stat st;
    struct pc_file *f;
    size_t l;

    if (fd < 0 || fd >= PC_MAX_FD || !(flags & (O_WRONLY | O_RDWR)))
        return;
    if (!pc_abs(dirfd, path, abs) || !pc_under_dir(abs) || fstat(fd, &st) != 0 ||
        !S_ISREG(st.st_mode))
        return;
    pthread_mutex_lock(&pc_lock);
    f = &pc_files[fd];
    pc_forget(f);
    snprintf(f->path, sizeof(f->path), "%s", abs);
    l = strlen(abs);
    f->is_log = l > 4 && strcmp(abs + l - 4, ".log") == 0;
    f->append = (flags & O_APPEND) != 0;
    f->size = st.st_size;
    f->pos = f->append ? st.st_size : 0;
    __atomic_store_n(&f->used, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&pc_lock);
}

static struct pc_file *pc_get(int fd)
{
    return fd >= 0 && fd < PC_MAX_FD && pc_files[fd].used ? &pc_files[fd] : NULL;
}

/*
 * Is fd one of ours? Read without the lock, so that a call on any other fd never takes it: a
 * signal handler writing to its self-pipe (the broker's) must not wait for a lock the thread it
 * interrupted holds. A store fd is only opened and closed by the thread that uses it.
 */
static bool pc_mine(int fd)
{
    return fd >= 0 && fd < PC_MAX_FD && __atomic_load_n(&pc_files[fd].used, __ATOMIC_ACQUIRE);
}

/* A log file was just written or synced: the kill point, if this is the Nth. */
static void pc_maybe_kill(bool is_log, char kind)
{
    if (pc_kill_kind == kind && is_log &&
        __atomic_add_fetch(&pc_kill_count, 1, __ATOMIC_SEQ_CST) == pc_kill_at)
        raise(SIGKILL);
}

/* Hold len bytes at off; returns len or -1 (ENOMEM). Called with the lock held. */
static ssize_t pc_hold_bytes(struct pc_file *f, const void *buf, size_t len, off_t off)
{
    struct pc_extent *e;

    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct pc_extent *v = realloc(f->ext, cap * sizeof(*v));
        if (!v)
            goto nomem;
        f->ext = v;
        f->cap = cap;
    }
    e = &f->ext[f->n];
    e->data = malloc(len ? len : 1);
    if (!e->data)
        goto nomem;
    memcpy(e->data, buf, len);
    e->off = off;
    e->len = len;
    f->n++;
    if (off + (off_t)len > f->size)
        f->size = off + (off_t)len;
    return (ssize_t)len;
nomem:
    errno = ENOMEM;
    return -1;
}

/* Write what f holds to the file, in order. 0 or -1 with errno. Lock held. */
static int pc_flush(int fd, struct pc_file *f)
{
    int rc = 0;

    for (size_t i = 0; i < f->n && rc == 0; i++) {
        const char *p = f->ext[i].data;
        size_t left = f->ext[i].len;
        off_t off = f->ext[i].off;
        while (left > 0) {
            ssize_t w = real_pwrite(fd, p, left, off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -1;
                break;
            }
            p += w;
            left -= (size_t)w;
            off += w;
        }
    }
    for (size_t i = 0; i < f->n; i++)
        free(f->ext[i].data);
    f->n = 0;
    return rc;
}

/* Overlay held bytes on buf, which holds n bytes read from the file at off. */
static size_t pc_overlay(const struct pc_file *f, char *buf, size_t want, size_t n, off_t off)
{
    off_t end = off + (off_t)want;

    if (f->size < end)
        end = f->size;
    if (end > off + (off_t)n) { /* held bytes past the real end: zero-fill, then overlay */
        memset(buf + n, 0, (size_t)(end - off) - n);
        n = (size_t)(end - off);
    }
    for (size_t i = 0; i < f->n; i++) {
        const struct pc_extent *e = &f->ext[i];
        off_t a = e->off > off ? e->off : off;
        off_t b = e->off + (off_t)e->len < off + (off_t)n ? e->off + (off_t)e->len : off + (off_t)n;
        if (a < b)
            memcpy(buf + (a - off), e->data + (a - e->off), (size_t)(b - a));
    }
    return n;
}

/* ---- the interposed calls --------------------------------------------------------------- */

static int pc_open_common(int (*fn)(const char *, int, ...), const char *path, int flags,
                          mode_t mode)
{
    int fd = fn(path, flags, mode);

    if (pc_dirlen)
        pc_track(fd, AT_FDCWD, path, flags);
    return fd;
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    va_start(ap, flags);
    if (flags & (O_CREAT | O_TMPFILE))
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    return pc_open_common(real_open, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    va_start(ap, flags);
    if (flags & (O_CREAT | O_TMPFILE))
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    return pc_open_common(real_open64 ? real_open64 : real_open, path, flags, mode);
}

static int pc_openat_common(int (*fn)(int, const char *, int, ...), int dirfd, const char *path,
                            int flags, mode_t mode)
{
    int fd = fn(dirfd, path, flags, mode);

    if (pc_dirlen)
        pc_track(fd, dirfd, path, flags);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    va_start(ap, flags);
    if (flags & (O_CREAT | O_TMPFILE))
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    return pc_openat_common(real_openat, dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    va_start(ap, flags);
    if (flags & (O_CREAT | O_TMPFILE))
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    return pc_openat_common(real_openat64 ? real_openat64 : real_openat, dirfd, path, flags, mode);
}

/* Closing does not sync: what is still held is lost, as unsynced page cache is in a power cut
 * (nothing reads a closed store file back in this process before syncing it). */
int close(int fd)
{
    struct pc_file *f;

    if (!pc_mine(fd))
        return real_close(fd);
    pthread_mutex_lock(&pc_lock);
    f = pc_get(fd);
    if (f)
        pc_forget(f);
    pthread_mutex_unlock(&pc_lock);
    return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    struct pc_file *f;
    ssize_t n;

    if (!pc_mine(fd))
        return real_write(fd, buf, len);
    pthread_mutex_lock(&pc_lock);
    f = pc_get(fd);
    if (!f || !pc_hold) {
        bool is_log = f && f->is_log;
        pthread_mutex_unlock(&pc_lock);
        n = real_write(fd, buf, len);
        if (n > 0)
            pc_maybe_kill(is_log, 'w');
        return n;
    }
    if (f->append)
        f->pos = f->size;
    n = pc_hold_bytes(f, buf, len, f->pos);
    if (n > 0)
        f->pos += n;
    bool is_log = f->is_log;
    pthread_mutex_unlock(&pc_lock);
    if (n > 0)
        pc_maybe_kill(is_log, 'w');
    return n;
}

static ssize_t pc_pwrite_common(ssize_t (*fn)(int, const void *, size_t, off_t), int fd,
                                const void *buf, size_t len, off_t off)
{
    struct pc_file *f;
    ssize_t n;

    if (!pc_mine(fd))
        return fn(fd, buf, len, off);
    pthread_mutex_lock(&pc_lock);
    f = pc_hold ? pc_get(fd) : NULL;
    if (!f) {
        pthread_mutex_unlock(&pc_lock);
        return fn(fd, buf, len, off);
    }
    n = pc_hold_bytes(f, buf, len, off);
    pthread_mutex_unlock(&pc_lock);
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    return pc_pwrite_common(real_pwrite, fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    return pc_pwrite_common(real_pwrite64 ? real_pwrite64 : real_pwrite, fd, buf, len, off);
}

static ssize_t pc_pread_common(ssize_t (*fn)(int, void *, size_t, off_t), int fd, void *buf,
                               size_t len, off_t off)
{
    struct pc_file *f;
    ssize_t n = fn(fd, buf, len, off);

    if (!pc_mine(fd))
        return n;
    pthread_mutex_lock(&pc_lock);
    f = pc_hold ? pc_get(fd) : NULL;
    if (f && n >= 0 && f->n)
        n = (ssize_t)pc_overlay(f, buf, len, (size_t)n, off);
    pthread_mutex_unlock(&pc_lock);
    return n;
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
    return pc_pread_common(real_pread, fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
    return pc_pread_common(real_pread64 ? real_pread64 : real_pread, fd, buf, len, off);
}

/* A tracked fd is opened for writing; LevelDB never reads through it, but be exact anyway. */
ssize_t read(int fd, void *buf, size_t len)
{
    struct pc_file *f;
    ssize_t n;

    if (!pc_mine(fd))
        return real_read(fd, buf, len);
    pthread_mutex_lock(&pc_lock);
    f = pc_hold ? pc_get(fd) : NULL;
    if (!f) {
        pthread_mutex_unlock(&pc_lock);
        return real_read(fd, buf, len);
    }
    n = real_pread(fd, buf, len, f->pos);
    if (n >= 0) {
        n = (ssize_t)pc_overlay(f, buf, len, (size_t)n, f->pos);
        f->pos += n;
    }
    pthread_mutex_unlock(&pc_lock);
    return n;
}

off_t lseek(int fd, off_t off, int whence)
{
    struct pc_file *f;
    off_t r;

    if (!pc_mine(fd))
        return real_lseek(fd, off, whence);
    pthread_mutex_lock(&pc_lock);
    f = pc_hold ? pc_get(fd) : NULL;
    if (!f) {
        pthread_mutex_unlock(&pc_lock);
        return real_lseek(fd, off, whence);
    }
    r = whence == SEEK_SET ? off : whence == SEEK_CUR ? f->pos + off : f->size + off;
    if (r < 0) {
        errno = EINVAL;
        r = -1;
    } else {
        f->pos = r;
    }
    pthread_mutex_unlock(&pc_lock);
    return r;
}

int ftruncate(int fd, off_t len)
{
    struct pc_file *f;
    int rc;

    if (!pc_mine(fd))
        return real_ftruncate(fd, len);
    pthread_mutex_lock(&pc_lock);
    f = pc_hold ? pc_get(fd) : NULL;
    if (f && pc_flush(fd, f) < 0) { /* keep it simple: a truncate syncs what came before */
        pthread_mutex_unlock(&pc_lock);
        return -1;
    }
    rc = real_ftruncate(fd, len);
    if (f && rc == 0)
        f->size = len;
    pthread_mutex_unlock(&pc_lock);
    return rc;
}

static int pc_sync_common(int (*fn)(int), int fd)
{
    struct pc_file *f;
    int rc = 0;

    bool is_log = false;

    if (!pc_mine(fd))
        return fn(fd);
    pthread_mutex_lock(&pc_lock);
    f = pc_get(fd);
    if (f) {
        is_log = f->is_log;
        if (pc_hold)
            rc = pc_flush(fd, f);
    }
    pthread_mutex_unlock(&pc_lock);
    if (rc == 0)
        rc = fn(fd);
    if (rc == 0)
        pc_maybe_kill(is_log, 's');
    return rc;
}

int fsync(int fd)
{
    return pc_sync_common(real_fsync, fd);
}

int fdatasync(int fd)
{
    return pc_sync_common(real_fdatasync, fd);
}
