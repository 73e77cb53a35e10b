/*
 * 48_mosquitto_listeners_log — the rest of Mosquitto's options Cairn implements, with a real
 * broker: log_dest topic ($SYS/broker/log/...), log_dest syslog with log_facility (read from a
 * /dev/log socket the test binds when the machine has none), log_timestamp_format,
 * socket_domain, bind_interface, include_dir (the order its files are read in, and errors
 * naming the included file), dhparamfile (a DHE handshake); and configuration errors found
 * before any side effect (a bad TLS line beside a running broker on the same store is reported
 * as itself, with no pid or log file made).
 */
#define _GNU_SOURCE
#include "harness.h"
#include "harness_conf.h"
#include "harness_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#define WAIT_MS 5000

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---- logging ----------------------------------------------------------------------------- */

/* log_dest topic: a client connecting makes a notice, published on $SYS/broker/log/N. */
static void test_log_dest_topic(void)
{
    struct broker *b = broker_start(&(struct broker_opts){
        .no_persistence = true, .config = "log_dest topic", .cairn_config = "log_dest stderr"});
    struct raw_conn_opts so = {.id = "log-reader", .keepalive = 60};
    struct raw_conn_opts no = {.id = "newcomer-42", .keepalive = 60};
    struct raw_pkt p = {0};
    int sub = -1, fd = -1, rc = -1;
    bool seen = false;

    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, NULL);
    T_ASSERT(sub >= 0);
    T_EQ(raw_subscribe(sub, 1, "$SYS/broker/log/#", 0), 0);
    fd = raw_mqtt_connect(b, &no, &rc, NULL);
    T_ASSERT(fd >= 0);
    /* other lines may come first (the reader's own subscription, ...): read until it */
    for (int i = 0; i < 50 && !seen; i++) {
        raw_pkt_free(&p);
        T_EQ(raw_recv_publish(sub, &p, WAIT_MS, false), 1);
        seen = strcmp(p.topic, "$SYS/broker/log/N") == 0 &&
               memmem(p.payload, p.payload_len, "newcomer-42", 11) != NULL;
    }
    T_ASSERT(seen);
    T_EQ(p.qos, 0); /* the subscription's QoS; Mosquitto publishes them at QoS 2 */
out:
    raw_pkt_free(&p);
    close_fd(&sub);
    close_fd(&fd);
    broker_free(b);
}

/*
 * log_dest syslog, log_facility 5: datagrams on /dev/log with LOG_LOCAL5's priority. Only where
 * nothing listens on /dev/log already (the test binds it, so it needs root, and removes it).
 */
static void test_log_dest_syslog(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
    struct broker *b = NULL;
    char want[64], buf[2048];
    bool bound = false, seen = false;
    uint64_t deadline;
    int fd = -1;

    if (harness_cairn_only("the line format differs; Cairn's is under test"))
        goto out;
    if (!hc_root() || access("/dev/log", F_OK) == 0) {
        t_skip(hc_root() ? "/dev/log exists: a syslog daemon owns it, not replaced by a test"
                         : "not root: cannot bind /dev/log");
        goto out;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0);
    T_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    bound = true;
    b = broker_start(&(struct broker_opts){
        .no_persistence = true, .config = "log_dest syslog\nlog_dest stderr\nlog_facility 5"});
    T_ASSERT(b);
    snprintf(want, sizeof(want), "<%d>", LOG_LOCAL5 | LOG_NOTICE);
    deadline = t_now_ms() + WAIT_MS;
    while (!seen && t_now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&pfd, 1, 100) <= 0)
            continue;
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        seen = strncmp(buf, want, strlen(want)) == 0 && strstr(buf, "cairn[") &&
               strstr(buf, "listening on 127.0.0.1:");
    }
    T_ASSERTF(seen, "no %s line from cairn on /dev/log", want);
out:
    broker_free(b);
    if (fd >= 0)
        close(fd);
    if (bound)
        unlink("/dev/log");
}

/* log_timestamp_format: every line starts with that strftime format. */
static void test_log_timestamp_format(void)
{
    struct broker *b = broker_start(&(struct broker_opts){
        .no_persistence = true, .config = "log_timestamp_format %Y/%m/%d@%H:%M"});
    char *log = NULL;
    regex_t re;
    bool compiled = false;

    T_ASSERT(b);
    T_EQ(broker_wait_log(b, harness_is_mosquitto() ? "running" : "listening on", WAIT_MS), 0);
    log = broker_log(b);
    T_ASSERT(log);
    T_EQ(regcomp(&re, "^[0-9]{4}/[0-9]{2}/[0-9]{2}@[0-9]{2}:[0-9]{2}[: ]",
                 REG_EXTENDED | REG_NEWLINE),
         0);
    compiled = true;
    T_ASSERTF(regexec(&re, log, 0, NULL, 0) == 0, "log: %s", log);
    T_ASSERTF(!strstr(log, "Z NOTICE"), "a line kept the default format: %s", log);
out:
    if (compiled)
        regfree(&re);
    free(log);
    broker_free(b);
}

/* ---- listeners --------------------------------------------------------------------------- */

static bool have_ipv6_loopback(void)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

/* Does addr:port accept a TCP connection? */
static bool accepts(const char *addr, int port)
{
    int fd = raw_connect_addr(addr, port);

    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

static void test_socket_domain(void)
{
    char conf[128];
    struct broker *b = NULL;
    int p = harness_free_port();
    bool v6 = have_ipv6_loopback();

    snprintf(conf, sizeof(conf), "listener %d\nsocket_domain ipv4", p);
    b = broker_start(&(struct broker_opts){.no_persistence = true, .config = conf});
    T_ASSERT(b);
    T_ASSERT(accepts("127.0.0.1", p));
    if (v6)
        T_ASSERT(!accepts("::1", p));
    broker_free(b);
    b = NULL;
    if (!v6) {
        t_note("no IPv6 loopback here: socket_domain ipv6 not tried");
        goto out;
    }
    snprintf(conf, sizeof(conf), "listener %d\nsocket_domain ipv6", p);
    b = broker_start(&(struct broker_opts){.no_persistence = true, .config = conf});
    T_ASSERT(b);
    T_ASSERT(accepts("::1", p));
    T_ASSERT(!accepts("127.0.0.1", p)); /* an IPv6-only socket */
out:
    broker_free(b);
}

/* An IPv4 address of this machine that is not a loopback one, or "" when there is none. */
static void other_ipv4(char *out, size_t cap)
{
    struct ifaddrs *ifs = NULL;

    out[0] = '\0';
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i && !out[0]; i = i->ifa_next) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)i->ifa_addr;
        if (a && a->sin_family == AF_INET && (ntohl(a->sin_addr.s_addr) >> 24) != 127)
            inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)cap);
    }
    freeifaddrs(ifs);
}

/* bind_interface lo: the loopback addresses only, as Mosquitto binds the interface's own. */
static void test_bind_interface(void)
{
    char conf[128], other[64];
    struct broker *b = NULL;
    int p = harness_free_port();

    snprintf(conf, sizeof(conf), "listener %d\nbind_interface lo", p);
    b = broker_start(&(struct broker_opts){.no_persistence = true, .config = conf});
    T_ASSERT(b);
    T_ASSERT(accepts("127.0.0.1", p));
    other_ipv4(other, sizeof(other));
    if (other[0])
        T_ASSERTF(!accepts(other, p), "%s:%d accepts: not bound to lo only", other, p);
    else
        t_note("no non-loopback IPv4 address here: only the loopback side is checked");
    if (!harness_is_mosquitto()) {
        T_EQ(harness_expect_refused(broker_tmp_dir(b), "listener 0\nbind_interface no-such-if0\n",
                                    "cairn.conf:3: listener 1: bind_interface no-such-if0: no such "
                                    "interface"),
             0);
        /* Mosquitto's Unix socket listener: not in Cairn, said so */
        T_EQ(harness_expect_refused(broker_tmp_dir(b), "listener 0 /tmp/mosquitto.sock\n",
                                    "cairn.conf:3: listener 0 /tmp/mosquitto.sock: Unix socket "
                                    "listeners are not in this Cairn yet"),
             0);
    }
out:
    broker_free(b);
}

/* ---- include_dir ------------------------------------------------------------------------- */

/* The listeners of the included files open in the order Mosquitto reads the files. */
static void test_include_dir(void)
{
    static const char *const names[] = {"b.conf", "A.conf", "a.conf", "B.conf"};
    char dir[256] = "", conf[512], text[64], needle[80], *log = NULL;
    struct broker *b = NULL;
    int ports[4];
    const char *at = NULL;

    T_EQ(hc_mkdtemp(dir, sizeof(dir), "incl"), 0);
    T_EQ(chmod(dir, 0755), 0);
    for (int i = 0; i < 4; i++) {
        ports[i] = harness_free_port();
        snprintf(text, sizeof(text), "listener %d 127.0.0.1\n", ports[i]);
        T_EQ(hc_write(dir, names[i], text, NULL, 0), 0);
    }
    T_EQ(hc_write(dir, "notes.txt", "not a config\n", NULL, 0), 0);
    snprintf(conf, sizeof(conf), "include_dir %s", dir);
    b = broker_start(&(struct broker_opts){.no_persistence = true, .config = conf});
    T_ASSERT(b);
    for (int i = 0; i < 4; i++)
        T_ASSERTF(accepts("127.0.0.1", ports[i]), "%s's listener", names[i]);
    log = broker_log(b);
    T_ASSERT(log);
    /* A.conf, a.conf, B.conf, b.conf: by letter, then upper case first */
    {
        static const int by_name[] = {1, 2, 3, 0};
        for (int k = 0; k < 4; k++) {
            const char *found;
            snprintf(needle, sizeof(needle),
                     harness_is_mosquitto() ? "listen socket on port %d" : "127.0.0.1:%d",
                     ports[by_name[k]]);
            found = strstr(log, needle);
            T_ASSERTF(found && (!at || found > at), "%s not after the one before it:\n%s",
                      names[by_name[k]], log);
            at = found;
        }
    }
    if (!harness_is_mosquitto()) {
        char want[512];
        T_EQ(hc_write(dir, "c.conf", "sys_interval 3\n\nno_such_option 1\n", NULL, 0), 0);
        snprintf(want, sizeof(want), "%s/c.conf:3: unknown option 'no_such_option'", dir);
        T_EQ(harness_expect_refused(broker_tmp_dir(b), conf, want), 0);
    }
out:
    free(log);
    broker_free(b);
    hc_rmtree(dir);
}

/* ---- TLS --------------------------------------------------------------------------------- */

/* dhparamfile: a DHE suite handshakes with those parameters; a bad file names its line. */
static void test_dhparamfile(void)
{
    static const char tmpl[] = "listener @P 127.0.0.1\ncertfile @D/server-rsa.crt\n"
                               "keyfile @D/server-rsa.key\ndhparamfile @D/dh.pem\n";
    static const char *const rest[] = {
        "--ciphers", "DHE-RSA-AES128-GCM-SHA256", "-t", "dh/t", "-m", "x", NULL};
    struct tls_env e = {0};
    char bad[1024], *out = NULL;
    int rc;

    if (harness_cairn_only("Cairn's mbedTLS reading of the file is under test"))
        goto out;
    T_EQ(tls_env_certs(&e), 0);
    T_EQ(hc_write(e.dir, "dh.pem", hc_dhparams_pem, NULL, 0), 0);
    T_EQ(tls_env_launch(&e, tmpl, NULL), 0);
    rc = proc_run(tls_env_argv(&e, "mosquitto_pub", NULL, rest), WAIT_MS, &out);
    T_ASSERTF(rc == 0, "DHE handshake: %d %s", rc, out ? out : "");
    T_EQ(hc_write(e.dir, "bad.pem", "not DH parameters\n", NULL, 0), 0);
    tls_env_expand(bad, sizeof(bad),
                   "listener 0 127.0.0.1\ncertfile @D/server-rsa.crt\nkeyfile @D/server-rsa.key\n"
                   "dhparamfile @D/bad.pem\n",
                   &e);
    T_EQ(harness_expect_refused(e.dir, bad, "cairn.conf:6: cannot load dhparamfile"), 0);
out:
    free(out);
    tls_env_stop(&e);
}

/*
 * A config error is found before anything is done: beside a broker running on the same store,
 * a bad TLS line is reported as itself (not as the store being locked), and neither the pid
 * file nor the log file is made.
 */
static void test_errors_before_side_effects(void)
{
    struct broker *b = NULL;
    char dir[256] = "", text[1024], conf[512], path[600], want[600], *out = NULL;
    int rc;

    if (harness_cairn_only("Cairn's start-up order is under test"))
        goto out;
    b = broker_start(NULL);
    T_ASSERT(b);
    T_EQ(hc_mkdtemp(dir, sizeof(dir), "early"), 0);
    snprintf(text, sizeof(text),
             "user root\npid_file %s/c.pid\nlog_dest file %s/c.log\npersistence_location %s\n"
             "listener 0 127.0.0.1\ncertfile %s/nope.crt\n",
             dir, dir, broker_data_dir(b), dir);
    T_EQ(hc_write(dir, "c.conf", text, conf, sizeof(conf)), 0);
    {
        char *argv[] = {(char *)harness_cairn_bin(), "-c", conf, NULL};
        rc = proc_run(argv, WAIT_MS, &out);
    }
    T_ASSERT(rc > 0);
    snprintf(want, sizeof(want), "%s:6: certfile without keyfile", conf);
    T_ASSERTF(out && strstr(out, want), "want '%s' in: %s", want, out ? out : "");
    T_ASSERTF(!strstr(out, "locked"), "%s", out);
    snprintf(path, sizeof(path), "%s/c.pid", dir);
    T_ASSERT(access(path, F_OK) != 0);
    snprintf(path, sizeof(path), "%s/c.log", dir);
    T_ASSERT(access(path, F_OK) != 0);
    /* with the TLS line fixed, the lock is what stops it */
    snprintf(text, sizeof(text), "user root\npersistence_location %s\nlistener 0 127.0.0.1\n",
             broker_data_dir(b));
    T_EQ(hc_write(dir, "c.conf", text, conf, sizeof(conf)), 0);
    free(out);
    out = NULL;
    {
        char *argv[] = {(char *)harness_cairn_bin(), "-c", conf, NULL};
        rc = proc_run(argv, WAIT_MS, &out);
    }
    T_ASSERT(rc > 0);
    T_ASSERTF(out && strstr(out, "lock"), "%s", out ? out : "");
out:
    free(out);
    broker_free(b);
    hc_rmtree(dir);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"log_dest_topic", test_log_dest_topic},
        {"log_dest_syslog", test_log_dest_syslog},
        {"log_timestamp_format", test_log_timestamp_format},
        {"socket_domain", test_socket_domain},
        {"bind_interface", test_bind_interface},
        {"include_dir", test_include_dir},
        {"dhparamfile", test_dhparamfile},
        {"errors_before_side_effects", test_errors_before_side_effects},
    };

    return T_MAIN(cases);
}
