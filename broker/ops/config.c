/*
 * config.c — the cairn.conf parser.
 *
 * Table-driven: each option names its kind (bool, number, duration, string, or a handler of its
 * own) and where it lands: the global struct, the current listener (TLS options; outside any
 * listener block they configure the default listener), or the auth settings (global unless
 * per_listener_settings was set earlier in the file, as in Mosquitto, where the option is
 * order-sensitive too). After the last line, a file without listeners gets 127.0.0.1:1883 and
 * every listener's auth settings are resolved, so tls.c and auth.c read one struct per listener.
 *
 * A name this table lacks is looked up in config_mosquitto.c's (the rest of Mosquitto's
 * options: implemented, ignored with a reason, or refused naming the missing feature), and
 * include_dir reads more files through config_include.c; config_internal.h is what they share.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "log.h"

#define CONFIG_PROTOCOL_MAX 268435455u

#define G(field) offsetof(struct config, field)
#define S(field) offsetof(struct config_security, field)
#define L(field) offsetof(struct config_security, line.field)

static const struct config_option config_options[] = {
    {"listener", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"port", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"bind_address", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"max_connections", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"protocol", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"http_dir", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"websockets_headers_size", K_U16, W_GLOBAL, G(websockets_headers_size), 65535, NULL, 0},
    {"websockets_log_level", K_U32, W_GLOBAL, G(websockets_log_level), INT32_MAX, NULL, 0},
    {"log_dest", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"log_type", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"allow_anonymous", K_SPECIAL, W_AUTH, 0, 0, NULL, 0},
    {"per_listener_settings", K_BOOL, W_GLOBAL, G(per_listener_settings), 0, NULL, 0},
    {"allow_session_takeover_across_users", K_BOOL, W_GLOBAL,
     G(allow_session_takeover_across_users), 0, NULL, 0},
    {"max_inflight_messages", K_U32, W_GLOBAL, G(max_inflight_messages), 65535, NULL, 0},
    {"max_queued_messages", K_U32, W_GLOBAL, G(max_queued_messages), UINT32_MAX, NULL, 0},
    {"max_queued_bytes", K_U64, W_GLOBAL, G(max_queued_bytes), UINT64_MAX, NULL, 0},
    {"queue_qos0_messages", K_BOOL, W_GLOBAL, G(queue_qos0_messages), 0, NULL, 0},
    {"message_size_limit", K_U32, W_GLOBAL, G(message_size_limit), CONFIG_PROTOCOL_MAX, NULL, 0},
    {"max_keepalive", K_U16, W_GLOBAL, G(max_keepalive), 65535, NULL, 0},
    {"persistent_client_expiration", K_DURATION, W_GLOBAL, G(persistent_client_expiration), 0, NULL,
     0},
    {"retain_available", K_BOOL, W_GLOBAL, G(retain_available), 0, NULL, 0},
    {"sys_interval", K_U32, W_GLOBAL, G(sys_interval), UINT32_MAX, NULL, 0},
    {"connection_messages", K_BOOL, W_GLOBAL, G(connection_messages), 0, NULL, 0},
    {"connect_timeout", K_U32, W_GLOBAL, G(connect_timeout), 86400, NULL, 0},
    {"connect_memory_limit", K_U64, W_GLOBAL, G(connect_memory_limit), UINT64_MAX, NULL, 0},
    {"max_subscriptions", K_U32, W_GLOBAL, G(max_subscriptions), UINT32_MAX, NULL, 0},
    {"log_timestamp", K_BOOL, W_GLOBAL, G(log_timestamp), 0, NULL, 0},
    {"pid_file", K_STR, W_GLOBAL, G(pid_file), 0, NULL, 0},
    {"persistence", K_BOOL, W_GLOBAL, G(persistence), 0, NULL, 0},
    {"persistence_location", K_STR, W_GLOBAL, G(persistence_location), 0, NULL, 0},
    {"persistence_sync", K_BOOL, W_GLOBAL, G(persistence_sync), 0, NULL, 0},
    {"password_file", K_STR, W_AUTH, S(password_file), 0, NULL, L(password_file)},
    {"acl_file", K_STR, W_AUTH, S(acl_file), 0, NULL, L(acl_file)},
    {"psk_file", K_STR, W_AUTH, S(psk_file), 0, NULL, L(psk_file)},
    {"cafile", K_STR, W_TLS, S(cafile), 0, NULL, L(cafile)},
    {"capath", K_STR, W_TLS, S(capath), 0, NULL, L(capath)},
    {"certfile", K_STR, W_TLS, S(certfile), 0, NULL, L(certfile)},
    {"keyfile", K_STR, W_TLS, S(keyfile), 0, NULL, L(keyfile)},
    {"crlfile", K_STR, W_TLS, S(crlfile), 0, NULL, L(crlfile)},
    {"tls_version", K_STR, W_TLS, S(tls_version), 0, NULL, L(tls_version)},
    {"ciphers", K_STR, W_TLS, S(ciphers), 0, NULL, L(ciphers)},
    {"psk_hint", K_STR, W_TLS, S(psk_hint), 0, NULL, L(psk_hint)},
    {"require_certificate", K_BOOL, W_TLS, S(require_certificate), 0, NULL, L(require_certificate)},
    {"use_identity_as_username", K_BOOL, W_TLS, S(use_identity_as_username), 0, NULL,
     L(use_identity_as_username)},
    {"use_subject_as_username", K_BOOL, W_TLS, S(use_subject_as_username), 0, NULL,
     L(use_subject_as_username)},
    {"autosave_interval", K_WARN, W_GLOBAL, 0, 0,
     "Cairn commits every loop iteration before acknowledging", 0},
    {"autosave_on_changes", K_WARN, W_GLOBAL, 0, 0,
     "Cairn commits every loop iteration before acknowledging", 0},
    {"persistence_file", K_WARN, W_GLOBAL, 0, 0,
     "Cairn keeps a database directory (persistence_location)", 0},
    {"set_tcp_nodelay", K_WARN, W_GLOBAL, 0, 0, "Cairn always sets TCP_NODELAY", 0},
};

int config_fail(struct config_parser *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->fline);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static void config_security_cleanup(struct config_security *s)
{
    free(s->password_file);
    free(s->acl_file);
    free(s->psk_file);
    free(s->cafile);
    free(s->capath);
    free(s->certfile);
    free(s->keyfile);
    free(s->crlfile);
    free(s->tls_version);
    free(s->ciphers);
    free(s->psk_hint);
    free(s->dhparamfile);
    free(s->auto_id_prefix);
    memset(s, 0, sizeof(*s));
    s->allow_anonymous = -1;
    s->allow_zero_length_clientid = -1;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->allow_anonymous = true;
    c->sec.allow_anonymous = -1;
    c->max_connections = -1;
    c->max_inflight_messages = 20;
    c->max_queued_messages = 1000;
    c->max_keepalive = 65535;
    c->retain_available = true;
    c->sys_interval = 10;
    c->connection_messages = true;
    c->connect_timeout = 10;
    c->connect_memory_limit = 32u * 1024u * 1024u;
    c->log_dest = CAIRN_LOG_DEST_STDERR;
    c->log_type = CAIRN_LOG_MASK_DEFAULT;
    c->log_timestamp = true;
    c->persistence = true;
    config_mosquitto_defaults(c);
}

void config_cleanup(struct config *c)
{
    for (size_t i = 0; i < c->n_listeners; i++) {
        free(c->listeners[i].bind_address);
        free(c->listeners[i].http_dir);
        config_security_cleanup(&c->listeners[i].sec);
        config_mosquitto_listener_cleanup(&c->listeners[i]);
    }
    free(c->listeners);
    config_security_cleanup(&c->sec);
    free(c->path);
    free(c->log_file);
    free(c->pid_file);
    free(c->persistence_location);
    config_mosquitto_cleanup(c);
    config_defaults(c);
}

/* The default persistence_location is applied at the end so cleanup can always free it. */
static int config_finish_defaults(struct config *c)
{
    if (c->persistence_location)
        return 0;
    c->persistence_location = strdup("./cairn-data");
    return c->persistence_location ? 0 : -ENOMEM;
}

static struct config_listener *config_new_listener(struct config *c, uint16_t port,
                                                   const char *addr)
{
    struct config_listener *v = realloc(c->listeners, (c->n_listeners + 1) * sizeof(*v));
    struct config_listener *l = NULL;

    if (!v)
        goto out;
    c->listeners = v;
    l = &v[c->n_listeners];
    memset(l, 0, sizeof(*l));
    l->port = port;
    l->max_connections = -1;
    l->sec.allow_anonymous = -1;
    l->sec.allow_zero_length_clientid = -1;
    config_mosquitto_listener_defaults(l);
    if (addr) {
        l->bind_address = strdup(addr);
        if (!l->bind_address) {
            l = NULL;
            goto out;
        }
    }
    c->n_listeners++;
out:
    return l;
}

int config_add_default_listener(struct config *c)
{
    int rc = 0;

    if (c->n_listeners == 0 && !config_new_listener(c, CAIRN_DEFAULT_PORT, CAIRN_DEFAULT_BIND))
        rc = -ENOMEM;
    if (rc == 0)
        rc = config_finish_defaults(c);
    return rc;
}

/* ---- value parsers ---------------------------------------------------------------------- */

int config_parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0)
        *out = false;
    else
        return -EINVAL;
    return 0;
}

int config_parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long n;

    if (*v < '0' || *v > '9')
        return -EINVAL;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno || *end || n > max)
        return -EINVAL;
    *out = n;
    return 0;
}

int config_parse_duration(const char *s, uint64_t *out)
{
    static const struct {
        char unit;
        uint64_t seconds;
    } units[] = {{'s', 1},      {'h', 3600},    {'d', 86400},
                 {'w', 604800}, {'m', 2592000}, {'y', 31536000}};
    char buf[32];
    size_t len = strlen(s);
    uint64_t mult = 1;
    uint64_t n;
    int rc = -EINVAL;

    if (len == 0 || len >= sizeof(buf))
        goto out;
    memcpy(buf, s, len + 1);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (buf[len - 1] == units[i].unit) {
            mult = units[i].seconds;
            buf[--len] = '\0';
            break;
        }
    }
    if (len == 0 || config_parse_u64(buf, UINT64_MAX / mult, &n) < 0)
        goto out;
    *out = n * mult;
    rc = 0;
out:
    return rc;
}

int config_set_str(struct config_parser *p, char **slot, const char *v)
{
    char *s = strdup(v);

    if (!s)
        return config_fail(p, "out of memory");
    free(*slot);
    *slot = s;
    return 0;
}

/* ---- options with their own syntax ------------------------------------------------------ */

char *config_split(char *s)
{
    char *sp = strpbrk(s, " \t");

    if (!sp)
        return NULL;
    *sp++ = '\0';
    while (*sp == ' ' || *sp == '\t')
        sp++;
    return *sp ? sp : NULL;
}

static int config_port(struct config_parser *p, const char *opt, const char *v, uint16_t *out)
{
    uint64_t n;

    if (config_parse_u64(v, 65535, &n) < 0)
        return config_fail(p, "%s: bad port '%s' (0-65535)", opt, v);
    *out = (uint16_t)n;
    return 0;
}

/*
 * The listener that "port", "bind_address" and TLS options outside any block configure, made
 * on first use (Mosquitto's default listener: every address unless bind_address says).
 */
struct config_listener *config_default_listener(struct config_parser *p)
{
    struct config_parser *t = p->top; /* one default listener for every file */
    struct config_listener *l;

    if (t->default_index >= 0)
        return &p->c->listeners[t->default_index];
    l = config_new_listener(p->c, CAIRN_DEFAULT_PORT, NULL);
    if (l) {
        t->default_index = (long)(p->c->n_listeners - 1);
        l->line = p->line;
    }
    return l;
}

static int config_listener_opt(struct config_parser *p, char *v)
{
    char *addr = config_split(v);
    uint16_t port = 0;
    int rc;

    rc = config_port(p, "listener", v, &port);
    if (rc < 0)
        goto out;
    if (addr && config_split(addr)) {
        rc = config_fail(p, "listener: expected 'listener PORT [ADDRESS]'");
        goto out;
    }
    p->cur = config_new_listener(p->c, port, addr);
    if (!p->cur)
        rc = config_fail(p, "out of memory");
    else
        p->cur->line = p->line;
out:
    return rc;
}

static int config_log_dest(struct config_parser *p, char *v)
{
    char *arg = config_split(v);
    unsigned bit = 0;

    if (!p->top->log_dest_seen) {
        p->c->log_dest = 0;
        p->top->log_dest_seen = true;
    }
    if (strcmp(v, "stdout") == 0)
        bit = CAIRN_LOG_DEST_STDOUT;
    else if (strcmp(v, "stderr") == 0)
        bit = CAIRN_LOG_DEST_STDERR;
    else if (strcmp(v, "syslog") == 0)
        bit = CAIRN_LOG_DEST_SYSLOG;
    else if (strcmp(v, "none") == 0)
        p->c->log_dest = 0;
    else if (strcmp(v, "file") == 0) {
        if (!arg)
            return config_fail(p, "log_dest file: needs a path");
        bit = CAIRN_LOG_DEST_FILE;
        if (config_set_str(p, &p->c->log_file, arg) < 0)
            return -EINVAL;
        arg = NULL;
    } else if (strcmp(v, "topic") == 0) {
        bit = CAIRN_LOG_DEST_TOPIC;
    } else if (strcmp(v, "dlt") == 0) {
        log_write(CAIRN_LOG_WARNING, "%s:%u: log_dest %s is not supported by Cairn; ignored",
                  p->name, p->fline, v);
    } else {
        return config_fail(p,
                           "log_dest: unknown destination '%s' (stdout, stderr, file PATH, "
                           "syslog, topic, none)",
                           v);
    }
    if (arg)
        return config_fail(p, "log_dest %s: unexpected '%s'", v, arg);
    p->c->log_dest |= bit;
    return 0;
}

static int config_log_type(struct config_parser *p, const char *v)
{
    static const struct {
        const char *name;
        unsigned mask;
    } types[] = {
        {"error", CAIRN_LOG_MASK(CAIRN_LOG_ERR)},
        {"warning", CAIRN_LOG_MASK(CAIRN_LOG_WARNING)},
        {"notice", CAIRN_LOG_MASK(CAIRN_LOG_NOTICE)},
        {"information", CAIRN_LOG_MASK(CAIRN_LOG_INFO)},
        {"debug", CAIRN_LOG_MASK(CAIRN_LOG_DEBUG)},
        {"all", CAIRN_LOG_MASK_ALL},
        {"none", 0},
        /* Mosquitto's per-event types: Cairn logs those events at information. */
        {"subscribe", CAIRN_LOG_MASK(CAIRN_LOG_INFO)},
        {"unsubscribe", CAIRN_LOG_MASK(CAIRN_LOG_INFO)},
        {"websockets", 0},
        {"internal", 0},
    };

    if (!p->top->log_type_seen) {
        p->c->log_type = 0;
        p->top->log_type_seen = true;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(v, types[i].name) == 0) {
            if (types[i].mask == 0 && strcmp(v, "none") == 0)
                p->c->log_type = 0;
            p->c->log_type |= types[i].mask;
            return 0;
        }
    }
    return config_fail(p,
                       "log_type: unknown type '%s' (error, warning, notice, information, "
                       "debug, all, none)",
                       v);
}

/*
 * "protocol mqtt|websockets|http_metrics" and "http_dir DIR" for the listener being configured
 * (outside a block: the default listener, as Mosquitto). TLS options under a websockets or
 * http_metrics listener make it wss:// or https:// with the same rules as for MQTT.
 */
static int config_listener_kind(struct config_parser *p, const char *opt, const char *v)
{
    static const char *const names[] = {"mqtt", "websockets", "http_metrics"};
    struct config_listener *l = p->cur ? p->cur : config_default_listener(p);

    if (!l)
        return config_fail(p, "out of memory");
    if (opt[0] == 'h')
        return config_set_str(p, &l->http_dir, v);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(v, names[i]) == 0) {
            l->protocol = (enum config_protocol)i;
            return 0;
        }
    }
    return config_fail(p, "protocol: unknown protocol '%s' (mqtt, websockets, http_metrics)", v);
}

static int config_special(struct config_parser *p, const char *opt, char *v)
{
    struct config *c = p->c;
    struct config_listener *l;
    uint64_t n;
    bool b;
    int rc = 0;

    if (strcmp(opt, "listener") == 0) {
        rc = config_listener_opt(p, v);
    } else if (strcmp(opt, "port") == 0 || strcmp(opt, "bind_address") == 0) {
        uint16_t port = CAIRN_DEFAULT_PORT;
        if (opt[0] == 'p' && (rc = config_port(p, opt, v, &port)) < 0)
            goto out;
        l = p->cur ? p->cur : config_default_listener(p);
        if (!l) {
            rc = config_fail(p, "out of memory");
            goto out;
        }
        if (opt[0] == 'p')
            l->port = port;
        else
            rc = config_set_str(p, &l->bind_address, v);
    } else if (strcmp(opt, "max_connections") == 0) {
        if (strcmp(v, "-1") == 0)
            n = (uint64_t)-1;
        else if (config_parse_u64(v, INT32_MAX, &n) < 0) {
            rc = config_fail(p, "max_connections: bad value '%s' (-1 or 0-%d)", v, INT32_MAX);
            goto out;
        }
        if (p->cur)
            p->cur->max_connections = (int)n;
        else
            c->max_connections = (int)n;
    } else if (strcmp(opt, "protocol") == 0 || strcmp(opt, "http_dir") == 0) {
        rc = config_listener_kind(p, opt, v);
    } else if (strcmp(opt, "log_dest") == 0) {
        rc = config_log_dest(p, v);
    } else if (strcmp(opt, "log_type") == 0) {
        rc = config_log_type(p, v);
    } else if (strcmp(opt, "allow_anonymous") == 0) {
        if (config_parse_bool(v, &b) < 0) {
            rc = config_fail(p, "allow_anonymous: expected true or false, got '%s'", v);
            goto out;
        }
        if (p->cur && c->per_listener_settings) {
            p->cur->sec.allow_anonymous = b;
            p->cur->sec.line.allow_anonymous = p->line;
        } else {
            c->allow_anonymous = b;
            c->sec.line.allow_anonymous = p->line;
        }
    } else {
        rc = config_mosquitto_special(p, opt, v);
    }
out:
    return rc;
}

/* ---- one line ------------------------------------------------------------------------- */

static const struct config_option *config_find(const char *name)
{
    for (size_t i = 0; i < sizeof(config_options) / sizeof(config_options[0]); i++)
        if (strcmp(config_options[i].name, name) == 0)
            return &config_options[i];
    return config_mosquitto_find(name);
}

/* Where a table option's value goes. TLS options outside a block go to the default listener. */
static void *config_target(struct config_parser *p, const struct config_option *o)
{
    struct config_listener *l = p->cur;

    switch (o->where) {
    case W_GLOBAL:
        return (char *)p->c + o->offset;
    case W_AUTH:
        if (l && p->c->per_listener_settings)
            return (char *)&l->sec + o->offset;
        return (char *)&p->c->sec + o->offset;
    case W_TLS:
        if (!l)
            l = config_default_listener(p);
        if (!l)
            return NULL;
        return (char *)&l->sec + o->offset;
    case W_LISTENER:
        if (!l)
            l = config_default_listener(p);
        return l ? (char *)l + o->offset : NULL;
    }
    return NULL;
}

static int config_line(struct config_parser *p, char *s)
{
    const struct config_option *o;
    char *v;
    uint64_t n;
    void *dst;
    int rc = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    for (char *e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r');)
        *--e = '\0';
    if (*s == '\0' || *s == '#')
        goto out;
    v = config_split(s);
    o = config_find(s);
    if (!o) {
        rc = config_fail(p, "unknown option '%s'", s);
        goto out;
    }
    if (o->kind == K_REFUSE || o->kind == K_NOTYET) {
        rc = config_mosquitto_refuse(p, o, s);
        goto out;
    }
    if (!v) {
        rc = config_fail(p, "option '%s' needs a value", s);
        goto out;
    }
    if (o->kind == K_WARN) {
        log_write(CAIRN_LOG_WARNING, "%s:%u: %s ignored: %s", p->name, p->fline, s, o->note);
        goto out;
    }
    if (o->kind == K_SPECIAL) {
        rc = config_special(p, s, v);
        goto out;
    }
    if (o->kind != K_STR && strpbrk(v, " \t")) {
        rc = config_fail(p, "%s: expected one value, got '%s'", s, v);
        goto out;
    }
    dst = config_target(p, o);
    if (!dst) {
        rc = config_fail(p, "out of memory");
        goto out;
    }
    switch (o->kind) {
    case K_BOOL:
        if (config_parse_bool(v, dst) < 0)
            rc = config_fail(p, "%s: expected true or false, got '%s'", s, v);
        break;
    case K_U8:
    case K_U16:
    case K_U32:
    case K_U64:
        if (config_parse_u64(v, o->max, &n) < 0) {
            rc = config_fail(p, "%s: expected a number from 0 to %" PRIu64 ", got '%s'", s, o->max,
                             v);
            break;
        }
        if (o->kind == K_U8)
            *(uint8_t *)dst = (uint8_t)n;
        else if (o->kind == K_U16)
            *(uint16_t *)dst = (uint16_t)n;
        else if (o->kind == K_U32)
            *(uint32_t *)dst = (uint32_t)n;
        else
            *(uint64_t *)dst = n;
        break;
    case K_DURATION:
        if (config_parse_duration(v, dst) < 0)
            rc = config_fail(p,
                             "%s: expected a duration (seconds, or N followed by h, d, w, m "
                             "or y), got '%s'",
                             s, v);
        break;
    case K_STR:
        rc = config_set_str(p, dst, v);
        break;
    case K_WARN:
    case K_SPECIAL:
    case K_REFUSE:
    case K_NOTYET:
        break;
    }
    if (rc == 0 && (o->where == W_TLS || o->where == W_AUTH))
        *(unsigned *)((char *)dst - o->offset + o->line_off) = p->line;
out:
    return rc;
}

/* A listener without its own auth file takes the global one, and its line. */
static int config_dup_opt(char **dst, unsigned *dst_line, const char *src, unsigned src_line)
{
    if (*dst || !src)
        return 0;
    *dst = strdup(src);
    *dst_line = src_line;
    return *dst ? 0 : -ENOMEM;
}

/*
 * After the last line: the default listener when none was configured, and each listener's auth
 * settings filled in from the global ones unless per_listener_settings gave it its own.
 */
static int config_finish(struct config_parser *p)
{
    struct config *c = p->c;
    const struct config_security *g = &c->sec;
    int rc;

    /*
     * Secure by default, as Mosquitto 2.0: anonymous clients are welcome on the loopback-only
     * listener Cairn adds when the file names none, and refused on any listener the file
     * configures unless allow_anonymous says otherwise (a listener on every address with no
     * auth would be an open broker by accident).
     */
    if (!g->line.allow_anonymous)
        c->allow_anonymous = c->n_listeners == 0;
    rc = config_add_default_listener(c);

    for (size_t i = 0; rc == 0 && i < c->n_listeners; i++) {
        struct config_security *s = &c->listeners[i].sec;
        if (c->listeners[i].http_dir && c->listeners[i].protocol != CONFIG_PROTO_WEBSOCKETS)
            log_write(CAIRN_LOG_WARNING,
                      "%s: listener %zu: http_dir ignored: not a websockets "
                      "listener",
                      p->name, i);
        if (!c->per_listener_settings) {
            free(s->password_file);
            free(s->acl_file);
            free(s->psk_file);
            s->password_file = s->acl_file = s->psk_file = NULL;
            s->allow_anonymous = -1;
        }
        if (s->allow_anonymous < 0) {
            s->allow_anonymous = c->allow_anonymous;
            s->line.allow_anonymous = g->line.allow_anonymous;
        }
        rc = config_dup_opt(&s->password_file, &s->line.password_file, g->password_file,
                            g->line.password_file);
        if (rc == 0)
            rc = config_dup_opt(&s->acl_file, &s->line.acl_file, g->acl_file, g->line.acl_file);
        if (rc == 0)
            rc = config_dup_opt(&s->psk_file, &s->line.psk_file, g->psk_file, g->line.psk_file);
    }
    if (rc == 0)
        rc = config_mosquitto_finish(c);
    if (rc < 0)
        rc = config_fail(p, "out of memory");
    if (rc == 0)
        rc = config_bridge_finish(p);
    return rc;
}

int config_span_open(struct config_parser *p)
{
    struct config *c = p->c;
    struct config_span *v = realloc(c->spans, (c->n_spans + 1) * sizeof(*v));
    int rc = 0;

    if (!v) {
        rc = config_fail(p, "out of memory");
        goto out;
    }
    c->spans = v;
    v += c->n_spans;
    v->file = strdup(p->name);
    if (!v->file) {
        rc = config_fail(p, "out of memory");
        goto out;
    }
    v->first_pos = *p->pos + 1;
    v->first_line = p->fline + 1;
    c->n_spans++;
out:
    return rc;
}

int config_parse_text(struct config_parser *p, const char *text)
{
    char *copy = strdup(text);
    char *line;
    char *next;
    int rc = 0;

    if (!copy) {
        rc = config_fail(p, "out of memory");
        goto out;
    }
    rc = config_span_open(p);
    for (line = copy; line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        p->line = ++*p->pos;
        p->fline++;
        rc = config_line(p, line);
    }
out:
    free(copy);
    return rc;
}

int config_parse(const char *name, const char *text, struct config *out, char *err, size_t errlen)
{
    struct config c;
    unsigned pos = 0;
    struct config_parser p = {
        .name = name, .c = &c, .default_index = -1, .err = err, .errlen = errlen, .pos = &pos};
    int rc;

    p.top = &p;
    config_defaults(&c);
    rc = config_parse_text(&p, text);
    if (rc == 0)
        rc = config_finish(&p);
    if (rc < 0) {
        config_cleanup(&c);
    } else {
        *out = c;
    }
    return rc;
}

/* Whole file in memory; config files are small. */
int config_read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    size_t cap = 0;
    int rc = 0;

    if (!f) {
        rc = -errno;
        goto out;
    }
    for (;;) {
        size_t n;
        if (cap - len < 4096) {
            char *b = realloc(buf, cap + 65536);
            if (!b) {
                rc = -ENOMEM;
                goto out;
            }
            buf = b;
            cap += 65536;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = -EIO;
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        rc = -EILSEQ;
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
out:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

int config_load(const char *path, struct config *out, char *err, size_t errlen)
{
    char *text = NULL;
    int rc = config_read_file(path, &text);

    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path,
                 rc == -EILSEQ ? "not a text file (NUL byte)" : strerror(-rc));
        goto out;
    }
    rc = config_parse(path, text, out, err, errlen);
    if (rc < 0)
        goto out;
    out->path = strdup(path);
    if (!out->path) {
        config_cleanup(out);
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -ENOMEM;
    }
out:
    free(text);
    return rc;
}

const struct config_security *config_security_for(const struct config *c, size_t i)
{
    return i < c->n_listeners ? &c->listeners[i].sec : &c->sec;
}

const char *config_where(const struct config *c, unsigned pos, char *buf, size_t len)
{
    const struct config_span *sp = NULL;

    for (size_t i = 0; pos && i < c->n_spans; i++)
        if (c->spans[i].first_pos <= pos)
            sp = &c->spans[i];
    if (sp)
        snprintf(buf, len, "%s:%u", sp->file, sp->first_line + (pos - sp->first_pos));
    else
        snprintf(buf, len, "%s", c->path ? c->path : c->n_spans ? c->spans[0].file : "config");
    return buf;
}

bool config_allow_anonymous(const struct config *c, size_t i)
{
    if (i < c->n_listeners && c->listeners[i].sec.allow_anonymous >= 0)
        return c->listeners[i].sec.allow_anonymous != 0;
    return c->allow_anonymous;
}
