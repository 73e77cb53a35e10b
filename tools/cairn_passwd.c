/*
 * cairn-passwd — create and edit Mosquitto-format password files (see broker/ops/auth_passwd.h).
 *
 *   cairn-passwd [-H sha512-pbkdf2] [-c | -D] FILE USER        asks for the password twice
 *   cairn-passwd [-H sha512-pbkdf2] [-c] -b FILE USER PASSWORD
 *   cairn-passwd -U FILE                                        hash a plaintext file in place
 *
 * The options are mosquitto_passwd's, and the lines are what mosquitto_passwd 2.0 writes by
 * default: "$7$101$SALT$HASH", PBKDF2-HMAC-SHA512 with 101 iterations and a 12-byte salt from
 * getrandom(2), so either tool and either broker reads the other's files.
 *
 * Editing keeps every other line (comments included) in place and replaces the file atomically
 * (a temporary file in the same directory, fsync, rename), keeping the old file's mode; a new
 * file is created 0600. -U leaves lines already hashed ($6$ / $7$) as they are, so running it
 * twice does not hash a hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "auth_passwd.h"

#define PASSWD_MAX 1024

enum passwd_mode { PASSWD_SET, PASSWD_DELETE, PASSWD_UPGRADE };

static void passwd_usage(void)
{
    fprintf(stderr,
            "cairn-passwd manages password files for Cairn (and Mosquitto).\n\n"
            "Usage: cairn-passwd [-H sha512-pbkdf2] [-c | -D] passwordfile username\n"
            "       cairn-passwd [-H sha512-pbkdf2] [-c] -b passwordfile username password\n"
            "       cairn-passwd -U passwordfile\n"
            " -b : batch mode: the password is given on the command line.\n"
            " -c : create a new password file, overwriting an existing one.\n"
            " -D : delete the username rather than adding/updating its password.\n"
            " -H : hash algorithm; sha512-pbkdf2 (the default) is the only one written.\n"
            " -U : hash every plaintext user:password line of a file in place.\n");
}

/* Read one line from f without echo when it is a terminal. 0 or -1. */
static int passwd_read_line(FILE *f, const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    bool tty = isatty(fileno(f));
    size_t n;
    int rc = -1;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tty && tcgetattr(fileno(f), &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(f), TCSANOW, &quiet);
    } else {
        tty = false;
    }
    if (fgets(buf, (int)cap, f)) {
        n = strlen(buf);
        if (n && buf[n - 1] == '\n')
            buf[--n] = '\0';
        else if (n == cap - 1)
            goto out; /* too long */
        rc = 0;
    }
out:
    if (tty) {
        tcsetattr(fileno(f), TCSANOW, &old);
        fputc('\n', stderr);
    }
    return rc;
}

/* Ask twice. 0, or -1 with a message printed. */
static int passwd_prompt(char *pw, size_t cap)
{
    char again[PASSWD_MAX];
    FILE *tty = fopen("/dev/tty", "r+");
    FILE *in = tty ? tty : stdin;
    int rc = -1;

    if (passwd_read_line(in, "Password: ", pw, cap) ||
        passwd_read_line(in, "Reenter password: ", again, sizeof(again))) {
        fprintf(stderr, "Error: could not read the password.\n");
        goto out;
    }
    if (strcmp(pw, again) != 0) {
        fprintf(stderr, "Error: Passwords do not match.\n");
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(again, sizeof(again));
    if (tty)
        fclose(tty);
    return rc;
}

/* "user:$7$..." for password into out. 0 or -1. */
static int passwd_entry(char *out, size_t cap, const char *user, const char *pw)
{
    uint8_t salt[AUTH_PASSWD_SALT_LEN];
    char hash[AUTH_PASSWD_ENTRY_MAX];
    int rc = -1;

    if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt)) {
        perror("Error: getrandom");
        goto out;
    }
    if (auth_passwd_format(hash, sizeof(hash), pw, strlen(pw), salt, AUTH_PASSWD_ITERATIONS)) {
        fprintf(stderr, "Error: could not hash the password.\n");
        goto out;
    }
    if ((size_t)snprintf(out, cap, "%s:%s\n", user, hash) >= cap) {
        fprintf(stderr, "Error: username too long.\n");
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* Does this line start with "user:"? */
static bool passwd_line_is(const char *line, const char *user)
{
    size_t n = strlen(user);

    return strncmp(line, user, n) == 0 && line[n] == ':';
}

/* Is the part after the first ':' already a hash Cairn reads? */
static bool passwd_line_hashed(const char *line)
{
    const char *colon = strchr(line, ':');

    return colon && (strncmp(colon + 1, "$7$", 3) == 0 || strncmp(colon + 1, "$6$", 3) == 0);
}

/*
 * Copy in (may be NULL) to out, applying the mode: replace or drop user's line, or hash
 * plaintext lines. *found tells whether user was seen. 0 or -1.
 */
static int passwd_rewrite(FILE *in, FILE *out, enum passwd_mode mode, const char *user,
                          const char *entry, bool *found)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned lineno = 0;
    int rc = -1;

    *found = false;
    while (in && (n = getline(&line, &cap, in)) >= 0) {
        char *colon, buf[PASSWD_MAX + AUTH_PASSWD_ENTRY_MAX + 2];

        lineno++;
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        if (mode == PASSWD_UPGRADE && n && line[0] != '#' && !passwd_line_hashed(line)) {
            colon = strchr(line, ':');
            if (!colon || colon == line) {
                fprintf(stderr, "Error: line %u is not user:password.\n", lineno);
                goto out;
            }
            *colon = '\0';
            if (passwd_entry(buf, sizeof(buf), line, colon + 1))
                goto out;
            explicit_bzero(colon + 1, strlen(colon + 1));
            fputs(buf, out);
            continue;
        }
        if (mode != PASSWD_UPGRADE && passwd_line_is(line, user)) {
            if (mode == PASSWD_SET && !*found)
                fputs(entry, out);
            *found = true;
            continue;
        }
        fprintf(out, "%s\n", line);
    }
    if (in && ferror(in)) {
        perror("Error: reading the password file");
        goto out;
    }
    if (mode == PASSWD_SET && !*found)
        fputs(entry, out);
    rc = 0;
out:
    free(line);
    return rc;
}

/* Rewrite path (create it with -c) atomically. 0 or -1. */
static int passwd_update(const char *path, bool create, enum passwd_mode mode, const char *user,
                         const char *entry)
{
    char tmp[4096] = "";
    FILE *in = NULL, *out = NULL;
    struct stat st;
    mode_t perm = 0600;
    bool found;
    int fd = -1, rc = -1;

    if (!create) {
        in = fopen(path, "r");
        if (!in) {
            fprintf(stderr, "Error: Unable to open file %s for reading: %s.\n", path,
                    strerror(errno));
            goto out;
        }
        if (fstat(fileno(in), &st) == 0)
            perm = st.st_mode & 07777;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp))
        goto out;
    fd = mkstemp(tmp);
    if (fd < 0 || fchmod(fd, perm) != 0 || !(out = fdopen(fd, "w"))) {
        fprintf(stderr, "Error: Unable to write beside %s: %s.\n", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (passwd_rewrite(in, out, mode, user, entry, &found))
        goto out;
    if (mode == PASSWD_DELETE && !found) {
        fprintf(stderr, "Warning: User %s not found in password file.\n", user);
        goto out;
    }
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
        perror("Error: writing the password file");
        goto out;
    }
    if (rename(tmp, path) != 0) {
        perror("Error: replacing the password file");
        goto out;
    }
    tmp[0] = '\0';
    rc = 0;
out:
    if (out)
        fclose(out);
    if (fd >= 0)
        close(fd);
    if (in)
        fclose(in);
    if (rc && tmp[0] && strstr(tmp, ".tmp"))
        unlink(tmp);
    return rc;
}

int main(int argc, char **argv)
{
    bool create = false, batch = false;
    enum passwd_mode mode = PASSWD_SET;
    char pw[PASSWD_MAX], entry[PASSWD_MAX + AUTH_PASSWD_ENTRY_MAX + 2] = "";
    const char *file, *user = NULL;
    int i = 1, rc = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-c")) {
            create = true;
        } else if (!strcmp(argv[i], "-b")) {
            batch = true;
        } else if (!strcmp(argv[i], "-D")) {
            mode = PASSWD_DELETE;
        } else if (!strcmp(argv[i], "-U")) {
            mode = PASSWD_UPGRADE;
        } else if (!strcmp(argv[i], "-H") && i + 1 < argc) {
            if (strcmp(argv[++i], "sha512-pbkdf2") != 0) {
                fprintf(stderr, "Error: only -H sha512-pbkdf2 is written (the $6$ form is "
                                "still read).\n");
                goto out;
            }
        } else {
            passwd_usage();
            goto out;
        }
    }
    if ((create && mode != PASSWD_SET) || (batch && mode != PASSWD_SET) ||
        argc - i != (mode == PASSWD_UPGRADE ? 1
                     : batch                ? 3
                                            : 2)) {
        passwd_usage();
        goto out;
    }
    file = argv[i];
    if (mode != PASSWD_UPGRADE) {
        user = argv[i + 1];
        if (strchr(user, ':') || !user[0]) {
            fprintf(stderr, "Error: Username must not be empty or contain the ':' character.\n");
            goto out;
        }
    }
    if (mode == PASSWD_SET) {
        if (batch) {
            if (strlen(argv[i + 2]) >= sizeof(pw)) {
                fprintf(stderr, "Error: password too long.\n");
                goto out;
            }
            strcpy(pw, argv[i + 2]);
        } else if (passwd_prompt(pw, sizeof(pw))) {
            goto out;
        }
        if (passwd_entry(entry, sizeof(entry), user, pw))
            goto out;
        explicit_bzero(pw, sizeof(pw));
    }
    if (passwd_update(file, create, mode, user, entry) == 0)
        rc = 0;
out:
    explicit_bzero(pw, sizeof(pw));
    return rc;
}
