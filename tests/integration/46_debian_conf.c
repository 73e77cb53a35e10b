/*
 * 46_debian_conf — Debian 12's stock /etc/mosquitto/mosquitto.conf runs Cairn unchanged but for
 * its paths, moved into a temp dir laid out as the package and its service lay them out
 * (/run/mosquitto, /var/lib/mosquitto, /var/log/mosquitto owned by the mosquitto user,
 * /etc/mosquitto/conf.d with the package's README and a local file giving the listener): pid
 * file, log file, store beside Mosquitto's mosquitto.db (left alone), include_dir, and clients
 * served; and `user` (Mosquitto's, default mosquitto): a broker started by root runs as that
 * user, checked in /proc/PID/status, and still writes its store, log and pid file.
 *
 * The stock file is read from /etc/mosquitto/mosquitto.conf, or from the copy in the config
 * fuzz corpus when the package is not installed. Cases that need root (CI runs as root) skip,
 * saying so, when the test is not root.
 */
#include "harness.h"
#include "harness_conf.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STOCK       "/etc/mosquitto/mosquitto.conf"
#define STOCK_COPY  CAIRN_ITEST_SRC "/../fuzz/corpus/config/debian_stock.conf"
#define WAIT_MS     10000
#define DEBIAN_USER "mosquitto"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    long n;

    if (!f)
        goto out;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = calloc(1, (size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
out:
    if (f)
        fclose(f);
    return buf;
}

/* s with every "from" replaced by "to" (malloc'd). */
static char *replace(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    char *out = malloc(strlen(s) * (tl > fl ? tl / fl + 2 : 1) + 1);
    const char *p;

    if (!out)
        return NULL;
    while ((p = strstr(s, from))) {
        memcpy(out + n, s, (size_t)(p - s));
        n += (size_t)(p - s);
        memcpy(out + n, to, tl);
        n += tl;
        s = p + fl;
    }
    strcpy(out + n, s);
    return out;
}

/* The account `user` names, when root can become it. */
static const struct passwd *debian_user(void)
{
    return hc_root() ? getpwnam(DEBIAN_USER) : NULL;
}

/* As the package and its service make them: owned by the user Mosquitto (and Cairn) become. */
static int give(const char *path)
{
    const struct passwd *pw = debian_user();

    return !pw || chown(path, pw->pw_uid, pw->pw_gid) == 0 ? 0 : -1;
}

/* Subscribe on one connection, publish QoS 1 retained on another, receive; -1 on failure. */
static int serve_round_trip(int port, const char *topic, const char *payload)
{
    struct raw_conn_opts so = {.id = "deb-sub", .keepalive = 60};
    struct raw_conn_opts po = {.id = "deb-pub", .keepalive = 60};
    struct raw_pkt p = {0};
    int sub = -1, pub = -1, rc = -1, code = -1;

    sub = raw_connect_addr("127.0.0.1", port);
    pub = raw_connect_addr("127.0.0.1", port);
    if (sub < 0 || pub < 0 || raw_mqtt_handshake(sub, &so, &code, NULL) != 0 || code != 0 ||
        raw_mqtt_handshake(pub, &po, &code, NULL) != 0 || code != 0)
        goto out;
    if (raw_subscribe(sub, 1, "deb/#", 1) != 1)
        goto out;
    if (raw_publish_flow(pub, topic, payload, 1, true, 7) != 0)
        goto out;
    if (raw_recv_publish(sub, &p, WAIT_MS, true) != 1 || strcmp(p.topic, topic) != 0 ||
        p.payload_len != strlen(payload) || memcmp(p.payload, payload, p.payload_len) != 0)
        goto out;
    rc = 0;
out:
    raw_pkt_free(&p);
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    return rc;
}

/* A new subscriber gets the retained message on topic. */
static int retained_there(int port, const char *topic, const char *payload)
{
    struct raw_conn_opts so = {.id = "deb-late", .keepalive = 60};
    struct raw_pkt p = {0};
    int fd = raw_connect_addr("127.0.0.1", port), code = -1, rc = -1;

    if (fd < 0 || raw_mqtt_handshake(fd, &so, &code, NULL) != 0 || code != 0 ||
        raw_subscribe(fd, 1, topic, 1) != 1)
        goto out;
    if (raw_recv_publish(fd, &p, WAIT_MS, true) == 1 && p.retain &&
        p.payload_len == strlen(payload) && memcmp(p.payload, payload, p.payload_len) == 0)
        rc = 0;
out:
    raw_pkt_free(&p);
    if (fd >= 0)
        close(fd);
    return rc;
}

static void test_stock_config_serves(void)
{
    struct hc_broker b = {0};
    char dir[256] = "", path[512], conf[512], local[256], *stock = NULL, *t1 = NULL, *t2 = NULL,
         *t3 = NULL, *t4 = NULL, *pid = NULL;
    struct stat st;
    int port = harness_free_port();

    if (harness_cairn_only("Cairn's reading of Debian's file is under test"))
        goto out;
    stock = slurp(STOCK);
    if (!stock) {
        t_note("%s is missing: the copy in the fuzz corpus stands in", STOCK);
        stock = slurp(STOCK_COPY);
    }
    T_ASSERT(stock && strstr(stock, "include_dir /etc/mosquitto/conf.d"));
    T_EQ(hc_mkdtemp(dir, sizeof(dir), "debian"), 0);
    T_EQ(chmod(dir, 0755), 0); /* like /etc, /run, /var: the user passes through */
    /* the layout the package and its service make */
    for (int i = 0; i < 4; i++) {
        static const char *const sub[] = {"run", "lib", "log", "conf.d"};
        snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
        T_EQ(mkdir(path, 0755), 0);
        if (i < 3)
            T_EQ(give(path), 0);
    }
    snprintf(path, sizeof(path), "%s/conf.d", dir);
    T_EQ(hc_write(path, "README",
                  "Any files placed in this directory that have a \".conf\" ending will be "
                  "loaded as config files by the broker. Use this to make your local config.\n",
                  NULL, 0),
         0);
    snprintf(local, sizeof(local), "listener %d 127.0.0.1\nallow_anonymous true\n", port);
    T_EQ(hc_write(path, "local.conf", local, NULL, 0), 0);
    snprintf(path, sizeof(path), "%s/lib", dir);
    T_EQ(hc_write(path, "mosquitto.db", "Mosquitto's own store\n", NULL, 0), 0);
    /* the stock file, its four paths moved */
    snprintf(path, sizeof(path), "%s/run/", dir);
    t1 = replace(stock, "/run/mosquitto/", path);
    snprintf(path, sizeof(path), "%s/lib/", dir);
    t2 = t1 ? replace(t1, "/var/lib/mosquitto/", path) : NULL;
    snprintf(path, sizeof(path), "%s/log/", dir);
    t3 = t2 ? replace(t2, "/var/log/mosquitto/", path) : NULL;
    snprintf(path, sizeof(path), "%s/conf.d", dir);
    t4 = t3 ? replace(t3, "/etc/mosquitto/conf.d", path) : NULL;
    T_ASSERT(t4 && !strstr(t4, "/var/") && !strstr(t4, "/etc/mosquitto/conf.d"));
    T_EQ(hc_write(dir, "mosquitto.conf", t4, conf, sizeof(conf)), 0);

    T_EQ(hc_start(&b, conf, port), 0);
    T_EQ(serve_round_trip(port, "deb/kitchen", "21.5"), 0);
    snprintf(path, sizeof(path), "%s/run/mosquitto.pid", dir);
    pid = slurp(path);
    T_ASSERTF(pid && atoi(pid) == (int)b.p.pid, "pid file %s: %s", path, pid ? pid : "(none)");
    snprintf(path, sizeof(path), "%s/lib/cairn.db/CURRENT", dir);
    T_EQ(stat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/log/mosquitto.log", dir);
    free(pid);
    pid = slurp(path);
    T_ASSERTF(pid && strstr(pid, "listening on 127.0.0.1:"), "log file %s: %s", path,
              pid ? pid : "(none)");
    if (debian_user())
        T_EQ(hc_uid(&b), (long)debian_user()->pw_uid);
    T_EQ(hc_stop(&b), 0);
    snprintf(path, sizeof(path), "%s/run/mosquitto.pid", dir);
    T_ASSERTF(access(path, F_OK) != 0, "the pid file is left after a clean stop");
    snprintf(path, sizeof(path), "%s/lib/mosquitto.db", dir);
    free(pid);
    pid = slurp(path);
    T_ASSERT(pid && strcmp(pid, "Mosquitto's own store\n") == 0);
    /* started again on the same files: the retained message is still there */
    hc_free(&b);
    T_EQ(hc_start(&b, conf, port), 0);
    T_EQ(retained_there(port, "deb/kitchen", "21.5"), 0);
    T_EQ(hc_stop(&b), 0);
out:
    hc_free(&b);
    free(stock);
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    free(pid);
    hc_rmtree(dir);
}

/* A config in a fresh dir the users can pass through: listener, store, log file, then extra. */
static int user_conf(char *dir, size_t dcap, int port, const char *extra, char *conf, size_t ccap)
{
    char text[1024];

    if (hc_mkdtemp(dir, dcap, "user") != 0 || chmod(dir, 0755) != 0)
        return -1;
    snprintf(text, sizeof(text),
             "listener %d 127.0.0.1\nallow_anonymous true\npersistence_location %s/data\n"
             "log_dest file %s/cairn.log\npid_file %s/cairn.pid\n%s",
             port, dir, dir, dir, extra);
    return hc_write(dir, "cairn.conf", text, conf, ccap);
}

static bool skip_unless_root(void)
{
    if (harness_cairn_only("Cairn's `user` is under test (Mosquitto 2.0 drops before binding)"))
        return true;
    if (!hc_root()) {
        t_skip("not root: a broker not started by root never changes user");
        return true;
    }
    return false;
}

static bool skip_unless_root_and(const struct passwd *pw, const char *who)
{
    if (skip_unless_root())
        return true;
    if (!pw) {
        char why[128];
        snprintf(why, sizeof(why), "no user %s here (the mosquitto package makes it)", who);
        t_skip(why);
        return true;
    }
    return false;
}

/*
 * Started by root without `user`: the broker runs as mosquitto (uid in /proc), and what it
 * writes after that — queue records, the log, a reload, the pid file's removal — works.
 */
static void test_user_default(void)
{
    const struct passwd *pw = debian_user();
    struct hc_broker b = {0};
    char dir[256] = "", conf[512], path[512], *log = NULL;
    struct stat st;
    int port = harness_free_port();

    if (skip_unless_root_and(pw, DEBIAN_USER))
        goto out;
    T_EQ(user_conf(dir, sizeof(dir), port, "", conf, sizeof(conf)), 0);
    T_EQ(hc_start(&b, conf, port), 0);
    T_EQ(hc_uid(&b), (long)pw->pw_uid);
    /* the store was made by root and handed over */
    snprintf(path, sizeof(path), "%s/data/cairn.db", dir);
    T_EQ(stat(path, &st), 0);
    T_EQ(st.st_uid, pw->pw_uid);
    snprintf(path, sizeof(path), "%s/data", dir);
    T_EQ(stat(path, &st), 0);
    T_EQ(st.st_uid, pw->pw_uid);
    T_EQ(serve_round_trip(port, "deb/a", "1"), 0);
    T_EQ(hc_stop(&b), 0);
    snprintf(path, sizeof(path), "%s/cairn.pid", dir);
    T_EQ(stat(path, &st), 0); /* its directory is root's: emptied, not removed */
    T_EQ(st.st_size, 0);
    snprintf(path, sizeof(path), "%s/cairn.log", dir);
    log = slurp(path);
    T_ASSERT(log && strstr(log, "running as user mosquitto"));
    T_ASSERT(strstr(log, "NOTICE stopped"));
    /* again, on the store the user owns now */
    hc_free(&b);
    T_EQ(hc_start(&b, conf, port), 0);
    T_EQ(hc_uid(&b), (long)pw->pw_uid);
    T_EQ(retained_there(port, "deb/a", "1"), 0);
    T_EQ(hc_stop(&b), 0);
out:
    free(log);
    hc_free(&b);
    hc_rmtree(dir);
}

/* user NAME: that user; user root: stays root. */
static void test_user_named(void)
{
    const struct passwd *pw = hc_root() ? getpwnam("nobody") : NULL;
    struct hc_broker b = {0};
    char dir[256] = "", conf[512];
    uid_t nobody = pw ? pw->pw_uid : 0;
    int port = harness_free_port();

    if (skip_unless_root_and(pw, "nobody"))
        goto out;
    T_EQ(user_conf(dir, sizeof(dir), port, "user nobody\n", conf, sizeof(conf)), 0);
    T_EQ(hc_start(&b, conf, port), 0);
    T_EQ(hc_uid(&b), (long)nobody);
    T_EQ(serve_round_trip(port, "deb/b", "2"), 0);
    T_EQ(hc_stop(&b), 0);
    hc_free(&b);
    hc_rmtree(dir);
    dir[0] = '\0';

    T_EQ(user_conf(dir, sizeof(dir), port, "user root\n", conf, sizeof(conf)), 0);
    T_EQ(hc_start(&b, conf, port), 0);
    T_EQ(hc_uid(&b), 0);
    T_EQ(hc_stop(&b), 0);
out:
    hc_free(&b);
    hc_rmtree(dir);
}

/* A user that does not exist is a config error (-t too), before anything is made. */
static void test_user_missing(void)
{
    char dir[256] = "", conf[512], want[600], path[600], *out = NULL;
    int rc;

    if (skip_unless_root())
        goto out;
    T_EQ(user_conf(dir, sizeof(dir), harness_free_port(), "\nuser no-such-user-cairn\n", conf,
                   sizeof(conf)),
         0);
    snprintf(want, sizeof(want), "%s:7: user no-such-user-cairn: no such user", conf);
    T_ASSERT(hc_check(conf, &out) > 0);
    T_ASSERTF(strstr(out, want), "want '%s' in: %s", want, out);
    free(out);
    out = NULL;
    {
        char *argv[] = {(char *)harness_cairn_bin(), "-c", conf, NULL};
        rc = proc_run(argv, WAIT_MS, &out);
    }
    T_ASSERT(rc > 0);
    T_ASSERTF(out && strstr(out, want), "want '%s' in: %s", want, out ? out : "");
    snprintf(path, sizeof(path), "%s/data", dir);
    T_ASSERTF(access(path, F_OK) != 0, "the store was made before the user was checked");
out:
    free(out);
    hc_rmtree(dir);
}

/*
 * A store an earlier start made as root (user root): the next start without `user` hands it
 * over — persistence_location holds nothing but the store, so it is Cairn's to give — and the
 * retained message is still there.
 */
static void test_user_after_root(void)
{
    const struct passwd *pw = debian_user();
    struct hc_broker b = {0};
    char dir[256] = "", conf[512], path[512];
    struct stat st;
    int port = harness_free_port();

    if (skip_unless_root_and(pw, DEBIAN_USER))
        goto out;
    T_EQ(user_conf(dir, sizeof(dir), port, "user root\n", conf, sizeof(conf)), 0);
    T_EQ(hc_start(&b, conf, port), 0);
    T_EQ(hc_uid(&b), 0);
    T_EQ(serve_round_trip(port, "deb/c", "3"), 0);
    T_EQ(hc_stop(&b), 0);
    hc_free(&b);
    snprintf(path, sizeof(path), "%s/data", dir);
    T_EQ(stat(path, &st), 0);
    T_EQ(st.st_uid, 0);
    T_EQ(st.st_mode & 0777, 0700); /* as made: the mosquitto user could not enter it */
    /* the same store, now without `user` */
    {
        char text[1024];
        snprintf(text, sizeof(text),
                 "listener %d 127.0.0.1\nallow_anonymous true\npersistence_location %s\n"
                 "log_dest file %s/cairn.log\n",
                 port, path, dir);
        T_EQ(hc_write(dir, "cairn.conf", text, conf, sizeof(conf)), 0);
    }
    T_EQ(hc_start(&b, conf, port), 0);
    T_EQ(hc_uid(&b), (long)pw->pw_uid);
    T_EQ(retained_there(port, "deb/c", "3"), 0);
    T_EQ(hc_stop(&b), 0);
out:
    hc_free(&b);
    hc_rmtree(dir);
}

/* A store the user cannot reach (a root-only directory on the way) stops start-up, saying so. */
static void test_user_store_unreachable(void)
{
    const struct passwd *pw = debian_user();
    char dir[256] = "", conf[512], path[512], text[1024], *out = NULL;
    int rc;

    if (skip_unless_root_and(pw, DEBIAN_USER))
        goto out;
    T_EQ(hc_mkdtemp(dir, sizeof(dir), "user"), 0); /* 0700, root's */
    snprintf(path, sizeof(path), "%s/data", dir);
    snprintf(text, sizeof(text),
             "listener %d 127.0.0.1\npersistence_location %s\nlog_dest stderr\n",
             harness_free_port(), path);
    T_EQ(hc_write(dir, "cairn.conf", text, conf, sizeof(conf)), 0);
    {
        char *argv[] = {(char *)harness_cairn_bin(), "-c", conf, NULL};
        rc = proc_run(argv, WAIT_MS, &out);
    }
    T_ASSERT(rc > 0);
    T_ASSERTF(out && strstr(out, "user mosquitto cannot use the store"), "%s", out ? out : "");
out:
    free(out);
    hc_rmtree(dir);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"stock_config_serves", test_stock_config_serves},
        {"user_default", test_user_default},
        {"user_named", test_user_named},
        {"user_missing", test_user_missing},
        {"user_after_root", test_user_after_root},
        {"user_store_unreachable", test_user_store_unreachable},
    };

    return T_MAIN(cases);
}
