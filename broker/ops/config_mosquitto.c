/*
 * config_mosquitto.c — the second option table: the rest of Mosquitto 2.0's options
 * (mosquitto.conf(5) and conf.c of 2.0.11), so a mosquitto.conf never meets a bare "unknown
 * option". Each is one of:
 *
 *   - implemented with Mosquitto's meaning (the fields config.h marks as config_mosquitto.c's),
 *     through the generic kinds of config.c or, where the value has a syntax of its own, a
 *     K_SPECIAL handler below;
 *   - accepted with a warning saying why Cairn has no use for it (K_WARN);
 *   - refused with a sentence: K_NOTYET for an option of a feature Cairn does not have yet
 *     (none today: bridges' and WebSockets' rows became real options), K_REFUSE for what Cairn
 *     will not do (Mosquitto plugins, OpenSSL engines), pointing to what it does.
 *
 * The bridge options (connection, address, topic, bridge_*, ...) are K_SPECIAL rows here whose
 * handler is config_bridge.c's.
 *
 * config.c looks here for every name its own table lacks, and hands the K_SPECIAL options it
 * does not know to config_mosquitto_special(). Kept apart so that options added to config.c's
 * table and these rows never touch the same lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include "config_internal.h"
#include "log.h"
#include "mqtt.h"

#define CONFIG_M_PACKET_MIN 20 /* Mosquitto refuses a max_packet_size below this */
#define CONFIG_M_PREFIX_MAX 1024

#define G(field)  offsetof(struct config, field)
#define S(field)  offsetof(struct config_security, field)
#define LN(field) offsetof(struct config_security, line.field)
#define LS(field) offsetof(struct config_listener, field)

static const char config_m_plugin[] =
    "Cairn loads no Mosquitto plugins; password_file and acl_file read Mosquitto's password "
    "and ACL files as they are";
static const char config_m_engine[] =
    "OpenSSL engines are not in Cairn (its TLS is mbedTLS): give the key as a PEM keyfile";

static const struct config_option config_m_options[] = {
    /* ---- implemented ---------------------------------------------------------------------- */
    {"include_dir", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"allow_zero_length_clientid", K_SPECIAL, W_AUTH, 0, 0, NULL, 0},
    {"auto_id_prefix", K_SPECIAL, W_AUTH, 0, 0, NULL, 0},
    {"clientid_prefixes", K_STR, W_GLOBAL, G(clientid_prefixes), 0, NULL, 0},
    {"use_username_as_clientid", K_BOOL, W_LISTENER, LS(use_username_as_clientid), 0, NULL, 0},
    {"max_inflight_bytes", K_U64, W_GLOBAL, G(max_inflight_bytes), UINT64_MAX, NULL, 0},
    {"max_packet_size", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"max_qos", K_U8, W_LISTENER, LS(max_qos), 2, NULL, 0},
    {"maximum_qos", K_U8, W_LISTENER, LS(max_qos), 2, NULL, 0}, /* Mosquitto's other name */
    {"memory_limit", K_U64, W_GLOBAL, G(memory_limit), UINT64_MAX, NULL, 0},
    {"mount_point", K_SPECIAL, W_LISTENER, 0, 0, NULL, 0},
    {"upgrade_outgoing_qos", K_BOOL, W_GLOBAL, G(upgrade_outgoing_qos), 0, NULL, 0},
    {"check_retain_source", K_BOOL, W_GLOBAL, G(check_retain_source), 0, NULL, 0},
    {"socket_domain", K_SPECIAL, W_LISTENER, 0, 0, NULL, 0},
    {"bind_interface", K_STR, W_LISTENER, LS(bind_interface), 0, NULL, 0},
    {"user", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"log_facility", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"log_timestamp_format", K_STR, W_GLOBAL, G(log_timestamp_format), 0, NULL, 0},
    {"dhparamfile", K_STR, W_TLS, S(dhparamfile), 0, NULL, LN(dhparamfile)},
    {"tls_keyform", K_SPECIAL, W_TLS, 0, 0, NULL, 0},
    {"retained_persistence", K_BOOL, W_GLOBAL, G(persistence), 0, NULL, 0}, /* an old name */

    /* ---- accepted, with why they change nothing ------------------------------------------ */
    {"allow_duplicate_messages", K_WARN, W_GLOBAL, 0, 0,
     "Cairn sends a client one copy of a message that matches several of its subscriptions, "
     "at the highest of their QoS",
     0},
    {"retry_interval", K_WARN, W_GLOBAL, 0, 0,
     "MQTT 3.1.1 resends in-flight messages on reconnect, as Cairn does (Mosquitto 2.0 ignores "
     "the option too)",
     0},
    {"max_topic_alias", K_WARN, W_GLOBAL, 0, 0,
     "topic aliases are MQTT 5; Cairn speaks MQTT 3.1 and 3.1.1", 0},
    {"ciphers_tls1.3", K_WARN, W_GLOBAL, 0, 0,
     "mbedTLS 2.28 speaks TLS 1.2 only (its suites are set with ciphers)", 0},

    /* ---- refused: what Cairn will not do ------------------------------------------------- */
    {"plugin", K_REFUSE, W_GLOBAL, 0, 0, config_m_plugin, 0},
    {"auth_plugin", K_REFUSE, W_GLOBAL, 0, 0, config_m_plugin, 0},
    {"auth_plugin_deny_special_chars", K_REFUSE, W_GLOBAL, 0, 0, config_m_plugin, 0},
    {"auth_opt_", K_REFUSE, W_GLOBAL, 0, 0, config_m_plugin, 0},   /* a prefix */
    {"plugin_opt_", K_REFUSE, W_GLOBAL, 0, 0, config_m_plugin, 0}, /* a prefix */
    {"tls_engine", K_REFUSE, W_GLOBAL, 0, 0, config_m_engine, 0},
    {"tls_engine_kpass_sha1", K_REFUSE, W_GLOBAL, 0, 0, config_m_engine, 0},

    /* ---- bridges: config_bridge.c ------------------------------------------------------- */
    {"connection", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"address", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"addresses", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"topic", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"bridge_", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0}, /* a prefix: every bridge_* option */
    {"remote_clientid", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"remote_username", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"remote_password", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"clientid", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0}, /* old names of the remote_* three */
    {"username", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"password", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"local_clientid", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"local_username", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"local_password", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"local_cleansession", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"cleansession", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"notifications", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"notifications_local_only", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"notification_topic", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"start_type", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"try_private", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"round_robin", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"restart_timeout", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"idle_timeout", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"threshold", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
    {"keepalive_interval", K_SPECIAL, W_GLOBAL, 0, 0, NULL, 0},
};

const struct config_option *config_mosquitto_find(const char *name)
{
    for (size_t i = 0; i < sizeof(config_m_options) / sizeof(config_m_options[0]); i++) {
        const struct config_option *o = &config_m_options[i];
        size_t n = strlen(o->name);
        bool prefix = o->name[n - 1] == '_';
        if (prefix ? strncmp(o->name, name, n) == 0 : strcmp(o->name, name) == 0)
            return o;
    }
    return NULL;
}

int config_mosquitto_refuse(struct config_parser *p, const struct config_option *o,
                            const char *name)
{
    if (o->kind == K_NOTYET)
        return config_fail(p, "'%s' is a %s option: %ss are not in this Cairn yet", name, o->note,
                           o->note);
    return config_fail(p, "'%s': %s", name, o->note);
}

/* ---- options with a syntax of their own ------------------------------------------------- */

/* The security settings an auth option sets: the listener's with per_listener_settings. */
static struct config_security *config_m_security(struct config_parser *p)
{
    return p->cur && p->c->per_listener_settings ? &p->cur->sec : &p->c->sec;
}

static struct config_listener *config_m_listener(struct config_parser *p)
{
    return p->cur ? p->cur : config_default_listener(p);
}

static int config_m_mount_point(struct config_parser *p, const char *v)
{
    const uint8_t *t = (const uint8_t *)v;
    int rc;

    /* Mosquitto refuses it before any listener too: the default listener is not meant */
    if (!p->cur) {
        rc = config_fail(p, "mount_point: give it after the listener line it is for");
        goto out;
    }
    if (mqtt_topic_name_validate(t, strlen(v)) < 0) {
        rc = config_fail(p, "mount_point: '%s' is not a valid topic (no '+' or '#')", v);
        goto out;
    }
    rc = config_set_str(p, &p->cur->mount_point, v);
out:
    return rc;
}

static int config_m_facility(struct config_parser *p, const char *v)
{
    static const int local[] = {LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3,
                                LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7};
    uint64_t n;

    if (config_parse_u64(v, 7, &n) < 0)
        return config_fail(p, "log_facility: expected 0 to 7 (syslog's local0 to local7), got '%s'",
                           v);
    p->c->log_facility = local[n];
    return 0;
}

int config_mosquitto_special(struct config_parser *p, const char *opt, char *v)
{
    struct config *c = p->c;
    struct config_listener *l;
    uint64_t n;
    bool b;
    int rc = 0;

    if (strcmp(opt, "include_dir") == 0) {
        rc = config_include_dir(p, v);
    } else if (strcmp(opt, "allow_zero_length_clientid") == 0) {
        if (config_parse_bool(v, &b) < 0)
            rc = config_fail(p, "%s: expected true or false, got '%s'", opt, v);
        else
            config_m_security(p)->allow_zero_length_clientid = b;
    } else if (strcmp(opt, "auto_id_prefix") == 0) {
        if (strlen(v) > CONFIG_M_PREFIX_MAX)
            rc = config_fail(p, "auto_id_prefix: longer than %d bytes", CONFIG_M_PREFIX_MAX);
        else
            rc = config_set_str(p, &config_m_security(p)->auto_id_prefix, v);
    } else if (strcmp(opt, "max_packet_size") == 0) {
        if (config_parse_u64(v, UINT32_MAX, &n) < 0 || (n && n < CONFIG_M_PACKET_MIN))
            rc = config_fail(p,
                             "max_packet_size: expected 0 (no limit) or %d to 4294967295, "
                             "got '%s'",
                             CONFIG_M_PACKET_MIN, v);
        else
            c->max_packet_size = (uint32_t)n;
    } else if (strcmp(opt, "mount_point") == 0) {
        rc = config_m_mount_point(p, v);
    } else if (strcmp(opt, "socket_domain") == 0) {
        int d = strcmp(v, "ipv4") == 0 ? AF_INET : strcmp(v, "ipv6") == 0 ? AF_INET6 : -1;
        if (d < 0)
            rc = config_fail(p, "socket_domain: expected ipv4 or ipv6, got '%s'", v);
        else if (!(l = config_m_listener(p)))
            rc = config_fail(p, "out of memory");
        else
            l->socket_domain = d;
    } else if (strcmp(opt, "tls_keyform") == 0) {
        if (strcmp(v, "engine") == 0)
            rc = config_fail(p, "tls_keyform engine: %s", config_m_engine);
        else if (strcmp(v, "pem") != 0)
            rc = config_fail(p, "tls_keyform: expected pem, got '%s'", v);
    } else if (strcmp(opt, "user") == 0) {
        /* whether it exists is for start-up to check (user.c): it matters only as root */
        rc = config_set_str(p, &c->user, v);
        c->user_line = p->line;
    } else if (strcmp(opt, "log_facility") == 0) {
        rc = config_m_facility(p, v);
    } else {
        rc = config_bridge_option(p, opt, v);
    }
    return rc;
}

/* ---- defaults, cleanup, resolution ------------------------------------------------------ */

void config_mosquitto_defaults(struct config *c)
{
    c->check_retain_source = true;
    c->log_facility = LOG_DAEMON;
    c->sec.allow_zero_length_clientid = -1;
}

void config_mosquitto_listener_defaults(struct config_listener *l)
{
    l->max_qos = 2;
}

void config_mosquitto_listener_cleanup(struct config_listener *l)
{
    free(l->mount_point);
    free(l->bind_interface);
    l->mount_point = l->bind_interface = NULL;
}

void config_mosquitto_cleanup(struct config *c)
{
    for (size_t i = 0; i < c->n_spans; i++)
        free(c->spans[i].file);
    free(c->spans);
    free(c->clientid_prefixes);
    free(c->user);
    free(c->log_timestamp_format);
    config_bridge_cleanup(c);
}

/*
 * allow_zero_length_clientid and auto_id_prefix are auth settings, global unless
 * per_listener_settings (as Mosquitto's security options): each listener ends up with its
 * value, so handle_connect.c reads one place.
 */
int config_mosquitto_finish(struct config *c)
{
    const struct config_security *g = &c->sec;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < c->n_listeners; i++) {
        struct config_security *s = &c->listeners[i].sec;
        if (!c->per_listener_settings || s->allow_zero_length_clientid < 0)
            s->allow_zero_length_clientid = g->allow_zero_length_clientid != 0;
        if (!c->per_listener_settings || !s->auto_id_prefix) {
            free(s->auto_id_prefix);
            s->auto_id_prefix = NULL;
            if (g->auto_id_prefix && !(s->auto_id_prefix = strdup(g->auto_id_prefix)))
                rc = -ENOMEM;
        }
    }
    return rc;
}
