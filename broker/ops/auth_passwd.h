/*
 * auth_passwd.h — Mosquitto's password file: one "username:hash" per line, '#' comments and
 * blank lines ignored. Two hash forms are read, both as Debian's mosquitto_passwd 2.0 writes
 * them (checked against real files):
 *
 *   $7$ITER$SALT$HASH   PBKDF2-HMAC-SHA512, ITER iterations (mosquitto_passwd: 101), SALT the
 *                       base64 (standard alphabet, padded) of 12 random bytes, HASH the base64 of
 *                       the 64-byte derived key. The default since Mosquitto 2.0.
 *   $6$SALT$HASH        SHA-512(password || salt), same encodings ("-H sha512", Mosquitto 1.6).
 *
 * Anything else (a plaintext "user:password" line, an unknown "$N$") is an error naming the line:
 * Cairn refuses a file it cannot verify rather than letting a user in or out by accident. A
 * plaintext file is converted with "cairn-passwd -U FILE".
 *
 * Checks compare digests in constant time, and an unknown user costs the same hash as a known
 * one, so neither timing nor the answer tells a client which usernames exist.
 *
 * Ownership: auth_passwd_load/parse return an object the caller frees with auth_passwd_free.
 * It is immutable after loading; a reload builds a new one (see auth.h).
 */
#ifndef CAIRN_AUTH_PASSWD_H
#define CAIRN_AUTH_PASSWD_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_PASSWD_SALT_LEN   12  /* bytes of salt mosquitto_passwd and cairn-passwd write */
#define AUTH_PASSWD_HASH_LEN   64  /* SHA-512 */
#define AUTH_PASSWD_ITERATIONS 101 /* mosquitto_passwd's default PBKDF2 iteration count */
/* Longest "$7$..." text auth_passwd_format() writes, with its NUL. */
#define AUTH_PASSWD_ENTRY_MAX 160

struct auth_passwd;

/*
 * Load a password file. NULL on failure with "FILE:LINE: reason" (or "FILE: reason" when the
 * file cannot be read) in err.
 */
struct auth_passwd *auth_passwd_load(const char *path, char *err, size_t errlen);
/* The same from text in memory; name stands for FILE in errors (tests, fuzzing). */
struct auth_passwd *auth_passwd_parse(const char *name, const char *text, size_t len, char *err,
                                      size_t errlen);
void auth_passwd_free(struct auth_passwd *p);

/* Number of users. */
size_t auth_passwd_count(const struct auth_passwd *p);

/*
 * Does username exist with this password? 0 yes; -EACCES for a wrong password or an unknown
 * user (told apart by nothing the caller returns); -ENOMEM.
 */
int auth_passwd_check(const struct auth_passwd *p, const char *username, const void *password,
                      size_t pwlen);

/*
 * Verify password against one hash text ("$7$..." or "$6$..."). 0 match, -EACCES no match,
 * -EINVAL when the hash text is not one Cairn reads.
 */
int auth_passwd_verify(const char *hash, const void *password, size_t pwlen);

/*
 * Hash a password the way mosquitto_passwd 2.0 does by default: "$7$ITER$SALT$HASH" into out
 * (at least AUTH_PASSWD_ENTRY_MAX bytes). salt is AUTH_PASSWD_SALT_LEN random bytes the caller
 * supplies. 0, or -EINVAL / -ENOMEM.
 */
int auth_passwd_format(char *out, size_t outlen, const void *password, size_t pwlen,
                       const uint8_t salt[AUTH_PASSWD_SALT_LEN], unsigned iterations);

#endif
