/*
 * test_powercut.c — the power-cut layer (powercut.c) does what the crash tests rely on.
 *
 *   test_powercut LIBPOWERCUT.so
 *
 * Each case runs a child under LD_PRELOAD of the layer; the child writes files, checks what it
 * reads back itself (the page cache view), and dies by SIGKILL; the parent then checks what the
 * "disk" kept: synced bytes only, files outside the directory untouched, and the kill points
 * firing exactly after the Nth log write or sync.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* In the child: a failed check exits 1 instead of reaching the kill. */
#define CHILD_CHECK(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "child %s:%d: check failed: %s\n", __FILE__, __LINE__, #c);            \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

static char dir[64], outside[96];

static int wr(const char *name, int flags)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return open(p, O_CREAT | (flags & O_RDWR ? 0 : O_WRONLY) | flags, 0644);
}

static void put(int fd, const char *s)
{
    CHILD_CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
}

/* The content of dir/name ("" when empty, "<none>" when missing). */
static const char *slurp(const char *name)
{
    static char buf[256];
    char p[160];
    int fd;
    ssize_t n;

    snprintf(p, sizeof(p), "%s/%s", name[0] == '/' ? "" : dir, name);
    fd = open(name[0] == '/' ? name : p, O_RDONLY);
    if (fd < 0)
        return "<none>";
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* ---- children ------------------------------------------------------------------------------ */

static void child_hold(void)
{
    int a = wr("a.dat", O_TRUNC), b = wr("b.dat", O_TRUNC | O_RDWR), c = wr("c.dat", O_APPEND);
    int o = open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buf[16] = {0};

    CHILD_CHECK(a >= 0 && b >= 0 && c >= 0 && o >= 0);
    put(a, "never synced");
    put(b, "xyz");
    CHILD_CHECK(fdatasync(b) == 0);
    CHILD_CHECK(pwrite(b, "Q", 1, 1) == 1); /* held over synced bytes */
    put(b, "tail");                         /* held past the synced end */
    CHILD_CHECK(pread(b, buf, sizeof(buf) - 1, 0) == 7);
    CHILD_CHECK(strcmp(buf, "xQztail") == 0); /* the process sees what it wrote */
    put(c, "app1");
    CHILD_CHECK(fsync(c) == 0);
    put(c, "app2");
    CHILD_CHECK(lseek(c, 0, SEEK_CUR) == 8);
    put(o, "outside"); /* not under the directory: written at once */
    raise(SIGKILL);
}

static void child_kill_sync(void)
{
    int fd = wr("000007.log", O_TRUNC);

    CHILD_CHECK(fd >= 0);
    put(fd, "1");
    CHILD_CHECK(fdatasync(fd) == 0);
    put(fd, "2");
    CHILD_CHECK(fdatasync(fd) == 0); /* the kill point: after this sync */
    put(fd, "3");
    CHILD_CHECK(fdatasync(fd) == 0);
    _exit(2); /* not reached */
}

static void child_kill_write(void)
{
    int fd = wr("000009.log", O_TRUNC), other = wr("x.dat", O_TRUNC);

    CHILD_CHECK(fd >= 0 && other >= 0);
    put(other, "not a log");
    put(fd, "a");
    put(fd, "b"); /* the kill point: after this write, nothing held */
    put(fd, "c");
    _exit(2);
}

/* ---- parent -------------------------------------------------------------------------------- */

static int run_child(const char *self, const char *lib, const char *scenario, const char *kill,
                     const char *hold)
{
    pid_t pid = fork();
    int st = 0;

    if (pid == 0) {
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];

        /* under ASan this test's runtime wants to be first; the layer goes before it */
        snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        setenv("LD_PRELOAD", lib, 1);
        setenv("CAIRN_POWERCUT_DIR", dir, 1);
        if (kill)
            setenv("CAIRN_POWERCUT_KILL", kill, 1);
        if (hold)
            setenv("CAIRN_POWERCUT_HOLD", hold, 1);
        execl(self, self, "--child", scenario, dir, outside, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFSIGNALED(st) ? WTERMSIG(st) : 1000 + WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
    char cmd[256];

    if (argc == 5 && strcmp(argv[1], "--child") == 0) {
        snprintf(dir, sizeof(dir), "%s", argv[3]);
        snprintf(outside, sizeof(outside), "%s", argv[4]);
        if (strcmp(argv[2], "hold") == 0)
            child_hold();
        else if (strcmp(argv[2], "kill-sync") == 0)
            child_kill_sync();
        else if (strcmp(argv[2], "kill-write") == 0)
            child_kill_write();
        _exit(3);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBPOWERCUT.so\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof(dir), "/tmp/cairn-powercut-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    snprintf(outside, sizeof(outside), "%s.outside", dir);

    CHECK(run_child(argv[0], argv[1], "hold", NULL, NULL) == SIGKILL);
    CHECK(strcmp(slurp("a.dat"), "") == 0);    /* created, content lost */
    CHECK(strcmp(slurp("b.dat"), "xyz") == 0); /* the synced bytes only */
    CHECK(strcmp(slurp("c.dat"), "app1") == 0);
    CHECK(strcmp(slurp(outside), "outside") == 0);
    printf(
        "# hold: unsynced bytes lost, synced kept, reads see held bytes, other files untouched\n");

    CHECK(run_child(argv[0], argv[1], "kill-sync", "sync:2", NULL) == SIGKILL);
    CHECK(strcmp(slurp("000007.log"), "12") == 0);
    printf("# kill at sync:2: the log holds what the second sync made durable\n");

    CHECK(run_child(argv[0], argv[1], "kill-write", "write:2", "0") == SIGKILL);
    CHECK(strcmp(slurp("000009.log"), "ab") == 0);
    CHECK(strcmp(slurp("x.dat"), "not a log") == 0); /* not held with CAIRN_POWERCUT_HOLD=0 */
    printf("# kill at write:2 without holding: the log holds the first two writes\n");

    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, outside);
    if (system(cmd) != 0)
        failures++;
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
