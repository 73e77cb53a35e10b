/*
 * auth_acl.h — Mosquitto's acl_file: which topics a client may read (receive), write (publish)
 * and subscribe to.
 *
 *   # comment                     (a line whose first non-blank character is '#')
 *   topic [read|write|readwrite|deny] FILTER
 *   user NAME
 *   pattern [read|write|readwrite|deny] FILTER
 *
 * The access word is optional (readwrite); without it FILTER may not contain a space. "topic"
 * lines before the first "user" line apply to anonymous clients (no username); after "user NAME"
 * they apply to that user (repeated "user NAME" blocks add up). A user with no block gets no
 * topic rules. "pattern" lines apply to every client, anonymous or not, wherever they stand: a
 * level that is exactly "%c" stands for the client id, exactly "%u" for the username (as
 * Mosquitto 2.0 substitutes them: per level, never inside a level). A pattern naming %u never
 * matches an anonymous client, and one naming %c or %u never matches an id that contains '/',
 * '+' or '#' (such an id could otherwise widen the rule).
 *
 * Decision for topic T and an access: if any deny rule that applies to the client matches T,
 * no; else if any read/write/readwrite rule with that access matches T, yes; else no. Deny wins
 * whatever the order of lines (Mosquitto: "Any deny topics are handled before topics that grant
 * read/write access"). '$' topics follow [MQTT-4.7.2-1]: "#" in a rule does not reach $SYS.
 *
 * Subscribe: Mosquitto 2.0.11's built-in ACL grants every SUBSCRIBE and only filters delivery
 * (verified against the Debian mosquitto 2.0.11 binary: "#" is granted to a user who may read
 * only a/#). Cairn answers SUBACK 0x80 for a filter the client may not read, as its issue asks:
 * a filter F is subscribable when one read rule covers every topic F can match (F = "a/+/x" is
 * covered by "a/#", "#" is covered only by "#") and no deny rule covers F. A partly denied filter
 * ("a/#" beside "deny a/secret") is granted; delivery then drops what may not be read, so the
 * broker must call auth_acl_check(READ) for every message it delivers, retained and queued alike.
 *
 * Ownership: the loaders return an object the caller frees with auth_acl_free; immutable after.
 * Strings passed to the checks are borrowed for the call.
 */
#ifndef CAIRN_AUTH_ACL_H
#define CAIRN_AUTH_ACL_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_ACL_READ  0x1
#define AUTH_ACL_WRITE 0x2

struct auth_acl;

/* Load an ACL file. NULL on failure with "FILE:LINE: reason" (or "FILE: reason") in err. */
struct auth_acl *auth_acl_load(const char *path, char *err, size_t errlen);
/* The same from text; name stands for FILE in errors. */
struct auth_acl *auth_acl_parse(const char *name, const char *text, size_t len, char *err,
                                size_t errlen);
void auth_acl_free(struct auth_acl *a);

/*
 * May the client (client_id, username; username NULL when anonymous) have access (AUTH_ACL_READ
 * or AUTH_ACL_WRITE) to topic name [topic, topic+len)? The topic is a valid topic name.
 */
bool auth_acl_check(const struct auth_acl *a, const char *client_id, const char *username,
                    const char *topic, size_t len, int access);

/* May the client subscribe to filter [filter, filter+len) (a valid topic filter)? */
bool auth_acl_check_subscribe(const struct auth_acl *a, const char *client_id, const char *username,
                              const char *filter, size_t len);

#endif
