/*
 * user.c — resolving, handing files over to, and becoming the `user` (user.h).
 */
#define _GNU_SOURCE /* initgroups */
#include "user.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "persist.h"

#define USER_DEFAULT "mosquitto" /* Mosquitto's default, and the Debian package's account */

int user_resolve(const struct config *cfg, struct user_plan *plan, char *err, size_t errlen)
{
    const char *name = cfg->user ? cfg->user : USER_DEFAULT;
    struct passwd *pw;
    char at[320];
    int rc = 0;

    memset(plan, 0, sizeof(*plan));
    if (geteuid() != 0 || strcmp(name, "root") == 0)
        goto out;
    errno = 0;
    pw = getpwnam(name);
    if (!pw && cfg->user) {
        rc = -EINVAL;
        snprintf(err, errlen, "%s: user %s: %s", config_where(cfg, cfg->user_line, at, sizeof(at)),
                 name, errno ? strerror(errno) : "no such user");
        goto out;
    }
    if (!pw) {
        log_write(CAIRN_LOG_WARNING,
                  "running as root: there is no user '%s' to become (give `user NAME`, or `user "
                  "root` to say root is meant)",
                  USER_DEFAULT);
        goto out;
    }
    if (pw->pw_uid == 0)
        goto out; /* another name for root */
    if (strlen(name) >= sizeof(plan->name)) {
        rc = -EINVAL;
        snprintf(err, errlen, "%s: user %s: name too long",
                 config_where(cfg, cfg->user_line, at, sizeof(at)), name);
        goto out;
    }
    plan->drop = true;
    plan->uid = pw->pw_uid;
    plan->gid = pw->pw_gid;
    strcpy(plan->name, name);
out:
    return rc;
}

/* LevelDB's own files (persist_open.c's list): the only ones chowned in a shared directory. */
static bool user_leveldb_file(const char *n)
{
    size_t l = strlen(n);

    if (!strcmp(n, "CURRENT") || !strcmp(n, "LOCK") || !strcmp(n, "LOG") || !strcmp(n, "LOG.old") ||
        !strncmp(n, "MANIFEST-", 9))
        return true;
    return (l > 4 && (!strcmp(n + l - 4, ".log") || !strcmp(n + l - 4, ".ldb") ||
                      !strcmp(n + l - 4, ".sst"))) ||
           (l > 6 && !strcmp(n + l - 6, ".dbtmp"));
}

/*
 * Give path to the user — if root owns it: what another account owns (a store the packaged
 * service's "cairn" user made, say) is not taken from it; if the user cannot use it, the check
 * after the drop says so and start-up stops.
 */
static int user_chown(const char *path, const struct user_plan *plan, char *err, size_t errlen)
{
    struct stat st;
    int rc = 0;

    if (lstat(path, &st) == 0 && st.st_uid != 0)
        goto out;
    if (lchown(path, plan->uid, plan->gid) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot give %s to user %s: %s", path, plan->name, strerror(errno));
    }
out:
    return rc;
}

/*
 * The store directory and LevelDB's files in it. Its own directory (".../cairn.db") holds
 * nothing else; a store an earlier Cairn made right in persistence_location may share it with
 * other files, which stay as they are.
 */
static int user_chown_store(const char *dir, const struct user_plan *plan, char *err, size_t errlen)
{
    DIR *d = NULL;
    struct dirent *de;
    char path[4096];
    int rc = user_chown(dir, plan, err, errlen);

    if (rc < 0)
        goto out;
    d = opendir(dir);
    if (!d) {
        rc = -errno;
        snprintf(err, errlen, "cannot give store %s to user %s: %s", dir, plan->name,
                 strerror(errno));
        goto out;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!user_leveldb_file(de->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        rc = user_chown(path, plan, err, errlen);
    }
out:
    if (d)
        closedir(d);
    return rc;
}

/*
 * Is location Cairn's to give away: a directory holding nothing but its store (made by this
 * start, or by an earlier one as root: an upgrade to a Cairn that drops root must not leave
 * the store behind a directory only root may enter)? A location shared with other files (Debian's
 * /var/lib/mosquitto holds mosquitto.db) is not.
 */
static bool user_only_store(const char *location)
{
    DIR *d = opendir(location);
    struct dirent *de;
    bool only = d != NULL;

    while (only && (de = readdir(d)) != NULL)
        only = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
               !strcmp(de->d_name, PERSIST_STORE_NAME);
    if (d)
        closedir(d);
    return only;
}

int user_hand_over(const struct user_plan *plan, const char *store_dir, const char *location,
                   bool made_location, const char *pid_file, char *err, size_t errlen)
{
    int fd = log_file_fd();
    struct stat st;
    int rc = 0;

    if (!plan->drop)
        goto out;
    if (location && store_dir && (made_location || user_only_store(location)) &&
        (rc = user_chown(location, plan, err, errlen)) < 0)
        goto out;
    if (store_dir && (rc = user_chown_store(store_dir, plan, err, errlen)) < 0)
        goto out;
    if (pid_file && (rc = user_chown(pid_file, plan, err, errlen)) < 0)
        goto out;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == 0 && fchown(fd, plan->uid, plan->gid) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot give the log file to user %s: %s", plan->name,
                 strerror(errno));
    }
out:
    return rc;
}

int user_drop(const struct user_plan *plan, const char *store_dir, char *err, size_t errlen)
{
    int rc = 0;

    if (!plan->drop)
        goto out;
    if (initgroups(plan->name, plan->gid) < 0 || setgid(plan->gid) < 0 || setuid(plan->uid) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot become user %s: %s", plan->name, strerror(errno));
        goto out;
    }
    if (getuid() != plan->uid || geteuid() != plan->uid || getegid() != plan->gid) {
        rc = -EPERM;
        snprintf(err, errlen, "cannot become user %s: still uid %ld", plan->name, (long)geteuid());
        goto out;
    }
    /* LevelDB creates files there by path from now on: the way must be open to the user */
    if (store_dir && access(store_dir, R_OK | W_OK | X_OK) < 0) {
        rc = -errno;
        snprintf(err, errlen,
                 "user %s cannot use the store %s (%s): let it reach persistence_location, or "
                 "choose another user",
                 plan->name, store_dir, strerror(errno));
        goto out;
    }
    log_write(CAIRN_LOG_NOTICE, "running as user %s (uid %ld, gid %ld)", plan->name,
              (long)plan->uid, (long)plan->gid);
out:
    return rc;
}
