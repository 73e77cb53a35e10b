/*
 * user.h — who the broker runs as: Mosquitto's `user` option.
 *
 * Started by root, Cairn becomes `user` before it serves a client: the default is "mosquitto"
 * when the option is absent and that account exists (Debian's mosquitto package makes it);
 * "user root" stays root; without a "mosquitto" account and without the option it stays root,
 * with a warning. Not started by root, the option changes nothing (as in Mosquitto). An explicit
 * user that does not exist is a configuration error, found by `cairn -t` too.
 *
 * When. Mosquitto 2.0 drops privileges right after reading its config, so everything it opens
 * must already be the user's. Cairn drops later, as Mosquitto 1.x did and as the deployment
 * notes in README.md expect: after the store is opened, the pid file and log file are written
 * and every listener is bound — so ports below 1024 and keys readable by root alone work — and
 * before the listeners listen, so whoever finds a port accepting finds the broker running as
 * the user, and no client is ever served by root.
 *
 * Files the unprivileged process keeps writing are handed over to it first (user_hand_over),
 * when root owns them — files another account owns are never taken from it:
 *   - the store: LevelDB keeps creating files in its directory (new logs, tables, MANIFEST),
 *     so the directory and LevelDB's files in it are given to the user (chown), and so is
 *     persistence_location when this start created it or it holds nothing but the store; a
 *     store the user cannot reach (a root-only directory on the way) stops start-up with the
 *     reason rather than failing later on the first new table;
 *   - the log file: given to the user, so that it can be reopened after rotation;
 *   - the pid file: given to the user; removed at exit when its directory lets the user (Debian's
 *     /run/mosquitto, made by the service, belongs to mosquitto), else emptied.
 * What is only read stays as it is: the config, certificates, password, ACL and PSK files are
 * read again as the user on SIGHUP, which keeps the running ones when it cannot (logged).
 */
#ifndef CAIRN_USER_H
#define CAIRN_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;

struct user_plan {
    bool drop; /* started by root and becoming someone else */
    uid_t uid;
    gid_t gid;
    char name[64];
};

/*
 * What `user` means for this process. 0, or -EINVAL with "FILE:LINE: user NAME: ..." in err.
 * Looks the account up; changes nothing.
 */
int user_resolve(const struct config *cfg, struct user_plan *plan, char *err, size_t errlen);

/*
 * Give plan's user the files named above: store_dir (the store's own directory, NULL without
 * persistence), location (persistence_location: chowned when made_location, or when it holds
 * only the store), the open log file (log.h) and pid_file (may be NULL). Nothing when
 * !plan->drop. 0, or -errno with err.
 */
int user_hand_over(const struct user_plan *plan, const char *store_dir, const char *location,
                   bool made_location, const char *pid_file, char *err, size_t errlen);

/*
 * Become plan's user (supplementary groups, gid, uid: for good), then check that the store
 * directory is still usable. Nothing when !plan->drop. 0, or -errno with err.
 */
int user_drop(const struct user_plan *plan, const char *store_dir, char *err, size_t errlen);

#endif
