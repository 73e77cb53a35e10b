/*
 * config_bridge.c — the bridge blocks of cairn.conf: "connection NAME" and the options that
 * follow it in the same file, with Mosquitto 2.0's names, defaults and meaning (its conf.c and
 * bridge_topic.c of 2.0.11), checked as hard as the rest of Cairn's config: a bad value is
 * "FILE:LINE: reason", where Mosquitto sometimes logs and goes on.
 *
 * Departures, each for a reason the README gives: local_clientid defaults to "$bridge/NAME"
 * (Mosquitto: "local.HOSTNAME.NAME"), so the durable queue keeps its name when the host is
 * renamed; "restart_timeout N" alone is a constant wait, as Mosquitto documents it (2.0.11
 * still applies its default backoff then); bridge_max_queued_messages and
 * bridge_max_queued_bytes are Cairn's own.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_internal.h"
#include "log.h"
#include "mqtt.h"

#define BRIDGE_NOTIFY_FMT "$SYS/broker/connection/%s/state"

/* The block being read, or NULL (an error then names the option). */
static struct config_bridge *cb_cur(struct config_parser *p)
{
    return p->bridge ? &p->c->bridges[p->bridge - 1] : NULL;
}

static int cb_new(struct config_parser *p, const char *name)
{
    struct config *c = p->c;
    struct config_bridge *v, *b;
    char *copy;
    int rc = -EINVAL;

    if (strpbrk(name, " \t")) {
        rc = config_fail(p, "connection: expected one name, got '%s'", name);
        goto out;
    }
    if (strpbrk(name, "/+#")) {
        rc = config_fail(p,
                         "connection: '%s': a bridge name holds no '/', '+' or '#' (it is a level "
                         "of $SYS/broker/bridge/NAME/)",
                         name);
        goto out;
    }
    for (size_t i = 0; i < c->n_bridges; i++) {
        if (strcmp(c->bridges[i].name, name) == 0) {
            rc = config_fail(p, "connection: a bridge named '%s' is already configured", name);
            goto out;
        }
    }
    copy = strdup(name);
    v = copy ? realloc(c->bridges, (c->n_bridges + 1) * sizeof(*v)) : NULL;
    if (!v) {
        free(copy);
        rc = config_fail(p, "out of memory");
        goto out;
    }
    c->bridges = v;
    b = &v[c->n_bridges++];
    memset(b, 0, sizeof(*b));
    b->name = copy;
    b->line = p->line;
    b->local_cleansession = -1;
    b->keepalive = 60;
    b->idle_timeout = 60;
    b->backoff_base = 5;
    b->backoff_cap = 30;
    b->restart_timeout = 5;
    b->threshold = 10;
    b->notifications = true;
    b->try_private = true;
    b->protocol_version = 4;
    b->attempt_unsubscribe = true;
    b->outgoing_retain = true;
    b->max_queued_messages = -1;
    b->max_queued_bytes = -1;
    p->bridge = c->n_bridges;
    rc = 0;
out:
    return rc;
}

/* "host[:port]" or "[v6]:port" ("[v6]"), port 1883 when absent, as Mosquitto reads them. */
static int cb_address(struct config_parser *p, struct config_bridge *b, char *v)
{
    char *tok, *save = NULL;
    int rc = 0;

    if (b->n_addresses) {
        rc = config_fail(p,
                         "address: bridge '%s' has its addresses already (give them all on one "
                         "line)",
                         b->name);
        goto out;
    }
    for (tok = strtok_r(v, " \t", &save); tok && rc == 0; tok = strtok_r(NULL, " \t", &save)) {
        struct config_bridge_address *a;
        char *host = tok, *port = NULL, *end;
        unsigned long n = 1883;

        if (tok[0] == '#')
            break; /* the rest is a comment, as Mosquitto reads it */
        if (tok[0] == '[' && (end = strchr(tok, ']'))) {
            host = tok + 1;
            *end = '\0';
            port = end[1] == ':' ? end + 2 : end[1] ? end + 1 : NULL;
        } else if ((port = strrchr(tok, ':'))) {
            *port++ = '\0';
        }
        if (port && (n = strtoul(port, &end, 10),
                     *port < '0' || *port > '9' || *end || n < 1 || n > 65535)) {
            rc = config_fail(p, "address: bad port '%s' (1 to 65535)", port);
        } else if (!*host) {
            rc = config_fail(p, "address: empty host in '%s'", tok);
        } else if (!(a = realloc(b->addresses, (b->n_addresses + 1) * sizeof(*a)))) {
            rc = config_fail(p, "out of memory");
        } else {
            b->addresses = a;
            a += b->n_addresses;
            a->port = (uint16_t)n;
            if ((a->host = strdup(host)))
                b->n_addresses++;
            else
                rc = config_fail(p, "out of memory");
        }
    }
    if (rc == 0 && b->n_addresses == 0)
        rc = config_fail(p, "address: no address given");
out:
    return rc;
}

/* Mosquitto's "" means empty; NULL for the prefixes, "" for the pattern. */
static bool cb_empty(const char *t)
{
    return strcmp(t, "\"\"") == 0;
}

static char *cb_cat(const char *a, const char *b)
{
    size_t la = a ? strlen(a) : 0, lb = strlen(b);
    char *s = malloc(la + lb + 1);

    if (s) {
        if (la)
            memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

/* "topic PATTERN [out|in|both] [QOS] [LOCAL-PREFIX] [REMOTE-PREFIX]" (bridge_topic.c). */
/* The words after the pattern: direction, QoS, prefixes (copied into tp). */
static int cb_topic_words(struct config_parser *p, struct config_bridge_topic *tp, char **tok)
{
    int rc = 0;

    if (!tok[1] || strcasecmp(tok[1], "out") == 0)
        tp->dir = CONFIG_BRIDGE_OUT;
    else if (strcasecmp(tok[1], "in") == 0)
        tp->dir = CONFIG_BRIDGE_IN;
    else if (strcasecmp(tok[1], "both") == 0)
        tp->dir = CONFIG_BRIDGE_BOTH;
    else
        rc = config_fail(p, "topic: direction '%s' is not out, in or both", tok[1]);
    if (rc == 0 && tok[2] && (strlen(tok[2]) != 1 || tok[2][0] < '0' || tok[2][0] > '2'))
        rc = config_fail(p, "topic: QoS '%s' is not 0, 1 or 2", tok[2]);
    else if (rc == 0 && tok[2])
        tp->qos = (uint8_t)(tok[2][0] - '0');
    for (int k = 3; rc == 0 && k < 5; k++) {
        char **slot = k == 3 ? &tp->local_prefix : &tp->remote_prefix;
        if (!tok[k] || cb_empty(tok[k]))
            continue;
        if (mqtt_topic_name_validate((const uint8_t *)tok[k], strlen(tok[k])) < 0)
            rc = config_fail(p, "topic: %s prefix '%s' is not a topic (no '+' or '#')",
                             k == 3 ? "local" : "remote", tok[k]);
        else if (!(*slot = strdup(tok[k])))
            rc = config_fail(p, "out of memory");
    }
    return rc;
}

/* "topic PATTERN [out|in|both] [QOS] [LOCAL-PREFIX] [REMOTE-PREFIX]" (bridge_topic.c). */
static int cb_topic(struct config_parser *p, struct config_bridge *b, char *v)
{
    char *tok[5] = {0}, *save = NULL, *t;
    struct config_bridge_topic *v2, *tp;
    size_t n = 0;
    int rc = -EINVAL;

    for (t = strtok_r(v, " \t", &save); t && n < 5; t = strtok_r(NULL, " \t", &save)) {
        if (n > 0 && t[0] == '#')
            break; /* a comment after the pattern */
        tok[n++] = t;
    }
    if (t && n == 5 && t[0] != '#') {
        rc = config_fail(p, "topic: unexpected '%s' after the remote prefix", t);
        goto out;
    }
    if (!(v2 = realloc(b->topics, (b->n_topics + 1) * sizeof(*v2)))) {
        rc = config_fail(p, "out of memory");
        goto out;
    }
    b->topics = v2;
    tp = &v2[b->n_topics++]; /* from here cleanup frees what it holds */
    memset(tp, 0, sizeof(*tp));
    tp->line = p->line;
    if ((rc = cb_topic_words(p, tp, tok)) < 0)
        goto out;
    tp->pattern = strdup(cb_empty(tok[0]) ? "" : tok[0]);
    if (tp->pattern && !tp->pattern[0] && (!tp->local_prefix || !tp->remote_prefix)) {
        rc = config_fail(p, "topic: an empty pattern (\"\") needs both prefixes");
        goto out;
    }
    tp->local = tp->pattern ? cb_cat(tp->local_prefix, tp->pattern) : NULL;
    tp->remote = tp->pattern ? cb_cat(tp->remote_prefix, tp->pattern) : NULL;
    if (!tp->local || !tp->remote) {
        rc = config_fail(p, "out of memory");
        goto out;
    }
    for (int k = 0; rc == 0 && k < 2; k++) {
        const char *f = k ? tp->remote : tp->local;
        if (mqtt_topic_filter_validate((const uint8_t *)f, strlen(f)) < 0)
            rc = config_fail(p, "topic: '%s' (%s prefix and pattern) is not a valid filter", f,
                             k ? "remote" : "local");
    }
out:
    return rc;
}

/* "restart_timeout N" (constant) or "restart_timeout BASE CAP" (backoff with jitter). */
static int cb_restart(struct config_parser *p, struct config_bridge *b, char *v)
{
    char *cap = config_split(v);
    uint64_t n, m = 0;
    int rc = -EINVAL;

    if (config_parse_u64(v, 86400, &n) < 0 ||
        (cap && (config_split(cap) || config_parse_u64(cap, 86400, &m) < 0))) {
        rc = config_fail(p, "restart_timeout: expected SECONDS or BASE CAP (up to 86400)");
        goto out;
    }
    if (n < 1) {
        log_write(CAIRN_LOG_WARNING, "%s:%u: restart_timeout 0 raised to 1 second", p->name,
                  p->fline);
        n = 1;
    }
    if (cap && m < n) {
        rc = config_fail(p, "restart_timeout: the cap %llu is below the base %llu",
                         (unsigned long long)m, (unsigned long long)n);
        goto out;
    }
    b->restart_timeout = (uint32_t)n;
    b->backoff_base = cap ? (uint32_t)n : 0;
    b->backoff_cap = cap ? (uint32_t)m : 0;
    rc = 0;
out:
    return rc;
}

/* A number with Mosquitto's floor: below it, raised with a warning (as Mosquitto does). */
static int cb_number(struct config_parser *p, const char *opt, const char *v, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    int rc = 0;

    if (config_parse_u64(v, max, out) < 0) {
        rc = config_fail(p, "%s: expected a number up to %llu, got '%s'", opt,
                         (unsigned long long)max, v);
    } else if (*out < min) {
        log_write(CAIRN_LOG_WARNING, "%s:%u: %s %s raised to %llu", p->name, p->fline, opt, v,
                  (unsigned long long)min);
        *out = min;
    }
    return rc;
}

static int cb_bool(struct config_parser *p, const char *opt, const char *v, bool *out)
{
    return config_parse_bool(v, out) < 0
               ? config_fail(p, "%s: expected true or false, got '%s'", opt, v)
               : 0;
}

/* A string option; TLS ones record their line. Certificates and PSK do not mix (Mosquitto). */
static int cb_string(struct config_parser *p, struct config_bridge *b, const char *opt,
                     const char *v)
{
    static const struct {
        const char *name;
        size_t off;
        size_t line;
        int tls; /* 1 certificate option, 2 PSK option */
    } strs[] = {
#define F(f)  offsetof(struct config_bridge, f)
#define LN(f) offsetof(struct config_bridge, lines.f)
        {"remote_clientid", F(remote_clientid), 0, 0},
        {"clientid", F(remote_clientid), 0, 0},
        {"remote_username", F(remote_username), 0, 0},
        {"username", F(remote_username), 0, 0},
        {"remote_password", F(remote_password), 0, 0},
        {"password", F(remote_password), 0, 0},
        {"local_clientid", F(local_clientid), 0, 0},
        {"notification_topic", F(notification_topic), 0, 0},
        {"bridge_bind_address", F(bind_address), LN(bind_address), 0},
        {"bridge_cafile", F(cafile), LN(cafile), 1},
        {"bridge_capath", F(capath), LN(capath), 1},
        {"bridge_certfile", F(certfile), LN(certfile), 1},
        {"bridge_keyfile", F(keyfile), LN(keyfile), 1},
        {"bridge_psk", F(psk), LN(psk), 2},
        {"bridge_identity", F(identity), LN(identity), 2},
        {"bridge_alpn", F(alpn), LN(alpn), 0},
        {"bridge_tls_version", F(tls_version), LN(tls_version), 0},
#undef F
#undef LN
    };

    size_t i = 0;
    int rc = 1; /* not a string option */

    while (i < sizeof(strs) / sizeof(strs[0]) && strcmp(strs[i].name, opt) != 0)
        i++;
    if (i == sizeof(strs) / sizeof(strs[0]))
        goto out;
    if ((strs[i].tls == 1 && (b->psk || b->identity)) ||
        (strs[i].tls == 2 && (b->cafile || b->capath || b->certfile || b->keyfile))) {
        rc = config_fail(p, "%s: a bridge uses certificates or a PSK, not both", opt);
        goto out;
    }
    if (strs[i].line)
        *(unsigned *)((char *)b + strs[i].line) = p->line;
    rc = config_set_str(p, (char **)((char *)b + strs[i].off), v);
out:
    return rc;
}

static int cb_enum(struct config_parser *p, struct config_bridge *b, const char *opt, const char *v)
{
    bool x;
    int rc = 0;

    if (strcmp(opt, "start_type") == 0) {
        if (strcmp(v, "automatic") == 0)
            b->start_type = CONFIG_BRIDGE_AUTOMATIC;
        else if (strcmp(v, "lazy") == 0)
            b->start_type = CONFIG_BRIDGE_LAZY;
        else if (strcmp(v, "once") == 0)
            b->start_type = CONFIG_BRIDGE_ONCE;
        else
            rc = config_fail(p, "start_type: expected automatic, lazy or once, got '%s'%s", v,
                             strcmp(v, "manual") == 0 ? " (manual is not supported, as in "
                                                        "Mosquitto)"
                                                      : "");
    } else if (strcmp(opt, "bridge_protocol_version") == 0) {
        if (strcmp(v, "mqttv311") == 0)
            b->protocol_version = 4;
        else if (strcmp(v, "mqttv31") == 0)
            b->protocol_version = 3;
        else if (strcmp(v, "mqttv50") == 0)
            rc = config_fail(p, "bridge_protocol_version mqttv50: Cairn speaks MQTT 3.1 and "
                                "3.1.1 (mqttv311, mqttv31)");
        else
            rc = config_fail(p, "bridge_protocol_version: expected mqttv311 or mqttv31, got '%s'",
                             v);
    } else if (strcmp(opt, "local_cleansession") == 0) {
        if ((rc = cb_bool(p, opt, v, &x)) == 0)
            b->local_cleansession = x;
    } else {
        rc = 1;
    }
    return rc;
}

/* Booleans and numbers of the block. 1 when opt is none of them. */
static int cb_scalar(struct config_parser *p, struct config_bridge *b, const char *opt,
                     const char *v)
{
    static const struct {
        const char *name;
        size_t off;
    } bools[] = {
        {"round_robin", offsetof(struct config_bridge, round_robin)},
        {"cleansession", offsetof(struct config_bridge, cleansession)},
        {"notifications", offsetof(struct config_bridge, notifications)},
        {"notifications_local_only", offsetof(struct config_bridge, notifications_local_only)},
        {"try_private", offsetof(struct config_bridge, try_private)},
        {"bridge_attempt_unsubscribe", offsetof(struct config_bridge, attempt_unsubscribe)},
        {"bridge_outgoing_retain", offsetof(struct config_bridge, outgoing_retain)},
        {"bridge_insecure", offsetof(struct config_bridge, insecure)},
    };
    uint64_t n;
    size_t i = 0;
    int rc = 0;

    while (i < sizeof(bools) / sizeof(bools[0]) && strcmp(bools[i].name, opt) != 0)
        i++;
    if (i < sizeof(bools) / sizeof(bools[0])) {
        rc = cb_bool(p, opt, v, (bool *)((char *)b + bools[i].off));
    } else if (strcmp(opt, "keepalive_interval") == 0) {
        if ((rc = cb_number(p, opt, v, 5, 65535, &n)) == 0)
            b->keepalive = (uint16_t)n;
    } else if (strcmp(opt, "idle_timeout") == 0) {
        if ((rc = cb_number(p, opt, v, 1, UINT32_MAX, &n)) == 0)
            b->idle_timeout = (uint32_t)n;
    } else if (strcmp(opt, "threshold") == 0) {
        if ((rc = cb_number(p, opt, v, 1, UINT32_MAX, &n)) == 0)
            b->threshold = (uint32_t)n;
    } else if (strcmp(opt, "bridge_max_packet_size") == 0) {
        if ((rc = cb_number(p, opt, v, 0, UINT32_MAX, &n)) == 0)
            b->max_packet_size = (uint32_t)n;
    } else if (strcmp(opt, "bridge_max_queued_messages") == 0) {
        if ((rc = cb_number(p, opt, v, 0, UINT32_MAX, &n)) == 0)
            b->max_queued_messages = (int64_t)n;
    } else if (strcmp(opt, "bridge_max_queued_bytes") == 0) {
        if ((rc = cb_number(p, opt, v, 0, INT64_MAX, &n)) == 0)
            b->max_queued_bytes = (int64_t)n;
    } else {
        rc = 1;
    }
    return rc;
}

int config_bridge_option(struct config_parser *p, const char *opt, char *v)
{
    struct config_bridge *b = cb_cur(p);
    int rc = 0;

    if (strcmp(opt, "connection") == 0) {
        rc = cb_new(p, v);
    } else if (strcmp(opt, "bridge_require_ocsp") == 0) {
        rc = config_fail(p, "bridge_require_ocsp: OCSP is not in Cairn (its TLS is mbedTLS)");
    } else if (!b) {
        rc = config_fail(p, "'%s' is a bridge option: give it after a \"connection NAME\" line",
                         opt);
    } else if (strcmp(opt, "address") == 0 || strcmp(opt, "addresses") == 0) {
        rc = cb_address(p, b, v);
    } else if (strcmp(opt, "topic") == 0) {
        rc = cb_topic(p, b, v);
    } else if (strcmp(opt, "restart_timeout") == 0) {
        rc = cb_restart(p, b, v);
    } else if (strcmp(opt, "local_username") == 0 || strcmp(opt, "local_password") == 0) {
        log_write(CAIRN_LOG_WARNING,
                  "%s:%u: %s ignored: a bridge's own side is not checked against the local "
                  "password file and ACL (as in Mosquitto 2.0)",
                  p->name, p->fline, opt);
    } else if ((rc = cb_scalar(p, b, opt, v)) > 0 && (rc = cb_enum(p, b, opt, v)) > 0 &&
               (rc = cb_string(p, b, opt, v)) > 0) {
        rc = config_fail(p, "unknown option '%s'", opt);
    }
    if (rc == 0 && b && strcmp(opt, "bridge_insecure") == 0 && b->insecure)
        log_write(CAIRN_LOG_WARNING,
                  "%s:%u: bridge %s: bridge_insecure true: the remote's certificate is not "
                  "checked against its name",
                  p->name, p->fline, b->name);
    return rc;
}

/* ---- after the last line ------------------------------------------------------------------ */

static int cb_fail_at(struct config_parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "FILE:LINE: reason" for a line read earlier (the finish runs after the last one). */
static int cb_fail_at(struct config_parser *p, unsigned line, const char *fmt, ...)
{
    char at[320];
    size_t n;
    va_list ap;

    snprintf(p->err, p->errlen, "%s: ", config_where(p->c, line, at, sizeof(at)));
    n = strlen(p->err);
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Mosquitto's remote_clientid default. */
static char *cb_default_remote_id(const char *name)
{
    char host[256] = "";
    char *s = NULL;

    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "localhost");
    if (asprintf(&s, "%s.%s", host, name) < 0)
        s = NULL;
    return s;
}

static int cb_finish_one(struct config_parser *p, struct config_bridge *b)
{
    int rc = 0;

    if (b->n_addresses == 0)
        rc = cb_fail_at(p, b->line, "bridge '%s' has no address", b->name);
    else if (b->n_topics == 0)
        rc = cb_fail_at(p, b->line, "bridge '%s' has no topic", b->name);
    else if ((b->psk != NULL) != (b->identity != NULL))
        rc = cb_fail_at(p, b->line, "bridge '%s': %s", b->name,
                        b->psk ? "bridge_psk without bridge_identity"
                               : "bridge_identity without bridge_psk");
    else if ((b->certfile != NULL) != (b->keyfile != NULL))
        rc = cb_fail_at(p, b->certfile ? b->lines.certfile : b->lines.keyfile, "bridge '%s': %s",
                        b->name,
                        b->certfile ? "bridge_certfile without bridge_keyfile"
                                    : "bridge_keyfile without bridge_certfile");
    else if (b->certfile && !b->cafile && !b->capath)
        rc = cb_fail_at(p, b->lines.certfile, "bridge '%s': %s", b->name,
                        "bridge_certfile needs bridge_cafile or bridge_capath (TLS is on with "
                        "them)");
    if (rc < 0)
        goto out;
    if (!b->remote_clientid && !(b->remote_clientid = cb_default_remote_id(b->name))) {
        rc = config_fail(p, "out of memory");
        goto out;
    }
    if (!b->local_clientid && asprintf(&b->local_clientid, "$bridge/%s", b->name) < 0) {
        b->local_clientid = NULL;
        rc = config_fail(p, "out of memory");
        goto out;
    }
    if (strlen(b->remote_clientid) > 65535 || strlen(b->local_clientid) > 65535)
        rc = cb_fail_at(p, b->line, "bridge '%s': %s", b->name, "client id over 65535 bytes");
    else if (b->local_cleansession < 0)
        b->local_cleansession = b->cleansession;
out:
    return rc;
}

int config_bridge_finish(struct config_parser *p)
{
    struct config *c = p->c;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < c->n_bridges; i++)
        rc = cb_finish_one(p, &c->bridges[i]);
    for (size_t i = 0; rc == 0 && i < c->n_bridges; i++)
        for (size_t j = i + 1; rc == 0 && j < c->n_bridges; j++)
            if (strcmp(c->bridges[i].local_clientid, c->bridges[j].local_clientid) == 0)
                rc = cb_fail_at(p, c->bridges[j].line,
                                "bridge '%s': local_clientid '%s' is another bridge's too",
                                c->bridges[j].name, c->bridges[j].local_clientid);
    return rc;
}

/* ---- comparing, cleanup ------------------------------------------------------------------- */

static bool cb_same(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

/* The string options of a bridge block, one list for comparing and freeing them. */
#define CB_NSTR 15u

static void cb_strings(const struct config_bridge *b, char *out[CB_NSTR])
{
    char *const v[CB_NSTR] = {b->name,
                              b->remote_clientid,
                              b->local_clientid,
                              b->remote_username,
                              b->remote_password,
                              b->notification_topic,
                              b->bind_address,
                              b->cafile,
                              b->capath,
                              b->certfile,
                              b->keyfile,
                              b->psk,
                              b->identity,
                              b->alpn,
                              b->tls_version};

    memcpy(out, v, sizeof(v));
}

bool config_bridge_equal(const struct config_bridge *a, const struct config_bridge *b)
{
    char *sa[CB_NSTR], *sb[CB_NSTR];

    cb_strings(a, sa);
    cb_strings(b, sb);
    for (size_t i = 0; i < CB_NSTR; i++)
        if (!cb_same(sa[i], sb[i]))
            return false;
    if (a->n_addresses != b->n_addresses || a->n_topics != b->n_topics ||
        a->round_robin != b->round_robin || a->cleansession != b->cleansession ||
        a->local_cleansession != b->local_cleansession || a->keepalive != b->keepalive ||
        a->idle_timeout != b->idle_timeout || a->restart_timeout != b->restart_timeout ||
        a->backoff_base != b->backoff_base || a->backoff_cap != b->backoff_cap ||
        a->start_type != b->start_type || a->threshold != b->threshold ||
        a->notifications != b->notifications ||
        a->notifications_local_only != b->notifications_local_only ||
        a->try_private != b->try_private || a->protocol_version != b->protocol_version ||
        a->attempt_unsubscribe != b->attempt_unsubscribe ||
        a->outgoing_retain != b->outgoing_retain || a->max_packet_size != b->max_packet_size ||
        a->insecure != b->insecure || a->max_queued_messages != b->max_queued_messages ||
        a->max_queued_bytes != b->max_queued_bytes)
        return false;
    for (size_t i = 0; i < a->n_addresses; i++)
        if (strcmp(a->addresses[i].host, b->addresses[i].host) != 0 ||
            a->addresses[i].port != b->addresses[i].port)
            return false;
    for (size_t i = 0; i < a->n_topics; i++) {
        const struct config_bridge_topic *x = &a->topics[i], *y = &b->topics[i];
        if (strcmp(x->pattern, y->pattern) != 0 || x->dir != y->dir || x->qos != y->qos ||
            !cb_same(x->local_prefix, y->local_prefix) ||
            !cb_same(x->remote_prefix, y->remote_prefix))
            return false;
    }
    return true;
}

const char *config_bridge_notification_topic(const struct config_bridge *b, char *buf, size_t len)
{
    if (b->notification_topic)
        return b->notification_topic;
    snprintf(buf, len, BRIDGE_NOTIFY_FMT, b->remote_clientid);
    return buf;
}

void config_bridge_cleanup(struct config *c)
{
    for (size_t i = 0; i < c->n_bridges; i++) {
        struct config_bridge *b = &c->bridges[i];
        char *strs[CB_NSTR];
        cb_strings(b, strs);
        for (size_t k = 0; k < CB_NSTR; k++)
            free(strs[k]);
        for (size_t k = 0; k < b->n_addresses; k++)
            free(b->addresses[k].host);
        free(b->addresses);
        for (size_t k = 0; k < b->n_topics; k++) {
            struct config_bridge_topic *t = &b->topics[k];
            free(t->pattern);
            free(t->local_prefix);
            free(t->remote_prefix);
            free(t->local);
            free(t->remote);
        }
        free(b->topics);
    }
    free(c->bridges);
    c->bridges = NULL;
    c->n_bridges = 0;
}
