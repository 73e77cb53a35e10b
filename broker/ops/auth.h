/*
 * auth.h — who may connect, and what they may read, write and subscribe to: the password file,
 * the ACL file and allow_anonymous of every listener in one object.
 *
 * With per_listener_settings false (the default) every listener shares the global password and
 * ACL files (loaded once); with true each listener has its own (a listener without a
 * password_file checks no passwords; one without an acl_file restricts no topics), as in
 * Mosquitto. allow_anonymous is per listener either way (the listener's value when it set one).
 *
 * CONNECT (auth_check_connect), in order:
 *   - a listener with use_identity_as_username / use_subject_as_username takes the TLS identity
 *     (certificate CN or subject, PSK identity) as the username and checks no password; with no
 *     identity the answer is 5 (not authorised), as Mosquitto does;
 *   - no username: 0 when anonymous clients are allowed, else 5;
 *   - a password file: the username and password must match an entry, else 4 (bad username or
 *     password; Mosquitto 2.0.11 answers 5 here, Cairn follows its issue and MQTT 3.1.1's 4);
 *   - no password file: 0 when anonymous clients are allowed, else 5 (a username alone proves
 *     nothing, so it is treated as anonymous would be — Mosquitto does the same).
 *
 * Topic checks need the username the CONNECT check settled on (*username_out) and the client id.
 * With no acl_file everything is allowed. The broker must check READ for every message it
 * delivers — live, retained and queued — because a reload can take rights away from sessions
 * that subscribed earlier.
 *
 * Reload (SIGHUP): auth_reload() builds a new object from the new config and swaps it in only
 * when every file parses; otherwise the old rules stay and the reason is logged.
 *
 * Ownership: auth_new returns an object the caller frees with auth_free. Strings passed in are
 * borrowed for the call. The object is immutable, so a check may run anywhere on the loop.
 */
#ifndef CAIRN_AUTH_H
#define CAIRN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct auth;
struct config;

/*
 * The listener index of Cairn's own bridges (bridge.h): their link to the remote is checked
 * against no password file or ACL — what they forward the configuration chose — as in
 * Mosquitto. The topic checks below allow everything for it.
 */
#define AUTH_LISTENER_BRIDGE (-2)

/* Build from cfg (its listeners must be final: config_add_default_listener done). NULL on
 * failure with "CONF:LINE: OPTION: FILE:LINE: reason" in err: the config line of the option
 * (when cfg was loaded from a file), then where in the named file. */
struct auth *auth_new(const struct config *cfg, char *err, size_t errlen);
void auth_free(struct auth *a);

/*
 * Replace *a with a new object built from cfg. 0 on success (the old object is freed); a
 * negative code when a file does not parse: *a is untouched and the reason is logged (and
 * written to err when err is not NULL).
 */
int auth_reload(struct auth **a, const struct config *cfg, char *err, size_t errlen);

/*
 * A CONNECT on listener (index into cfg->listeners): identity is conn_identity() (NULL for plain
 * TCP or no certificate), username NULL when the CONNECT had none, password NULL/0 likewise.
 * Returns the CONNACK code (0, 4 or 5; see above) and, when 0, the username the client has from
 * now on in *username_out (username or identity, borrowed from the arguments: copy it; NULL for
 * an anonymous client), and in *verified whether something vouched for it (the password file,
 * or the certificate / PSK identity used as username) rather than the client's word alone.
 */
int auth_check_connect(const struct auth *a, int listener, const char *identity,
                       const char *username, const void *password, size_t pwlen,
                       const char **username_out, bool *verified);

/* May this client receive a message on topic name [topic, topic+len)? */
bool auth_can_read(const struct auth *a, int listener, const char *client_id, const char *username,
                   const char *topic, size_t len);
/* May this client publish to topic name [topic, topic+len) (also for its will)? */
bool auth_can_write(const struct auth *a, int listener, const char *client_id, const char *username,
                    const char *topic, size_t len);
/* May this client subscribe to filter [filter, filter+len)? No: SUBACK 0x80 for it. */
bool auth_can_subscribe(const struct auth *a, int listener, const char *client_id,
                        const char *username, const char *filter, size_t len);

/* ---- inside the auth module only -------------------------------------------------------- */

/* Read a whole file into *text (malloc'd, NUL-terminated; *len without the NUL). 0, or
 * -errno with "FILE: reason" in err. */
int auth__read_file(const char *path, char **text, size_t *len, char *err, size_t errlen);

#endif
