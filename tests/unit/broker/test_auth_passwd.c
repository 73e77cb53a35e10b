/*
 * test_auth_passwd.c — password files: ones the real mosquitto_passwd writes at test time, the
 * $6$ and $7$ forms, our own $7$ writer, and malformed files with the line they fail on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth_passwd.h"

static char tmpdir[64];

static int setup(void **state)
{
    strcpy(tmpdir, "/tmp/cairn-test-passwd-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool have_mosquitto_passwd(void)
{
    return system("command -v mosquitto_passwd >/dev/null 2>&1") == 0;
}

/* Run mosquitto_passwd with args; 0 when it exits 0. */
static int run_mosquitto_passwd(const char *args)
{
    char cmd[512];
    int st;

    snprintf(cmd, sizeof(cmd), "mosquitto_passwd %s >/dev/null 2>&1", args);
    st = system(cmd);
    return (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
}

static struct auth_passwd *parse(const char *text, char *err, size_t errlen)
{
    return auth_passwd_parse("pw", text, strlen(text), err, errlen);
}

static void check_ok(const struct auth_passwd *p, const char *user, const char *pass)
{
    assert_int_equal(auth_passwd_check(p, user, pass, strlen(pass)), 0);
}

static void check_no(const struct auth_passwd *p, const char *user, const char *pass)
{
    assert_int_equal(auth_passwd_check(p, user, pass, strlen(pass)), -EACCES);
}

static void test_mosquitto_pbkdf2(void **state)
{
    char path[128], args[256], err[256] = "";
    struct auth_passwd *p;

    if (!have_mosquitto_passwd())
        skip();
    snprintf(path, sizeof(path), "%s/p7", tmpdir);
    snprintf(args, sizeof(args), "-c -b %s alice 'secret one'", path);
    assert_int_equal(run_mosquitto_passwd(args), 0);
    snprintf(args, sizeof(args), "-b %s bob pässwörd", path);
    assert_int_equal(run_mosquitto_passwd(args), 0);
    snprintf(args, sizeof(args), "-b %s carol ''", path);
    assert_int_equal(run_mosquitto_passwd(args), 0);

    p = auth_passwd_load(path, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(auth_passwd_count(p), 3);
    check_ok(p, "alice", "secret one");
    check_ok(p, "bob", "pässwörd");
    check_ok(p, "carol", "");
    check_no(p, "alice", "secret on");
    check_no(p, "alice", "secret one ");
    check_no(p, "alice", "pässwörd");
    check_no(p, "carol", "x");
    check_no(p, "dave", "secret one");
    check_no(p, "Alice", "secret one");
    auth_passwd_free(p);
}

static void test_mosquitto_sha512(void **state)
{
    char path[128], args[256], err[256] = "";
    struct auth_passwd *p;

    if (!have_mosquitto_passwd())
        skip();
    snprintf(path, sizeof(path), "%s/p6", tmpdir);
    snprintf(args, sizeof(args), "-H sha512 -c -b %s old oldpass", path);
    assert_int_equal(run_mosquitto_passwd(args), 0);
    /* and a $7$ line in the same file */
    snprintf(args, sizeof(args), "-b %s new newpass", path);
    assert_int_equal(run_mosquitto_passwd(args), 0);
    p = auth_passwd_load(path, err, sizeof(err));
    assert_non_null(p);
    check_ok(p, "old", "oldpass");
    check_ok(p, "new", "newpass");
    check_no(p, "old", "newpass");
    check_no(p, "new", "oldpass");
    auth_passwd_free(p);
}

static void test_mosquitto_upgrade(void **state)
{
    char path[128], args[256], err[256] = "";
    struct auth_passwd *p;
    FILE *f;

    if (!have_mosquitto_passwd())
        skip();
    snprintf(path, sizeof(path), "%s/pu", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("u1:plain1\nu2:plain2\n", f);
    fclose(f);
    /* Plaintext is refused with the line... */
    p = auth_passwd_load(path, err, sizeof(err));
    assert_null(p);
    assert_non_null(strstr(err, "pu:1: "));
    /* ...and read once mosquitto_passwd -U has hashed it. */
    snprintf(args, sizeof(args), "-U %s", path);
    assert_int_equal(run_mosquitto_passwd(args), 0);
    p = auth_passwd_load(path, err, sizeof(err));
    assert_non_null(p);
    check_ok(p, "u1", "plain1");
    check_ok(p, "u2", "plain2");
    check_no(p, "u1", "plain2");
    auth_passwd_free(p);
}

/* Vectors computed independently (Python hashlib) from the lines mosquitto_passwd wrote. */
static void test_known_vectors(void **state)
{
    const char *h7 = "$7$101$O6iFBlCrUMTiF6Tj$HOOzBfS+Y5FfhZTwigwCCeNDdLV0WgNQewgSlHyrNIM2dW0CKUv"
                     "F/SrNrDuOUqKgHjGB1ZlREPB7H9DOpJfgbA==";
    const char *h6 = "$6$Xh9xvENc/vDP7QW/$jYKSlz8tvLcDTtPGFz8dJiNFe0UUoVEtsW7mNVxt3NkAenwmyf+cNGWU"
                     "xT92MRhr044YU2nx69ztY+2nKePJ6g==";

    assert_int_equal(auth_passwd_verify(h7, "pass", 4), 0);
    assert_int_equal(auth_passwd_verify(h7, "pasS", 4), -EACCES);
    assert_int_equal(auth_passwd_verify(h6, "pass", 4), 0);
    assert_int_equal(auth_passwd_verify(h6, "passs", 5), -EACCES);
    assert_int_equal(auth_passwd_verify("$5$abc$def", "pass", 4), -EINVAL);
    assert_int_equal(auth_passwd_verify("pass", "pass", 4), -EINVAL);
}

static void test_format_roundtrip(void **state)
{
    const uint8_t salt[AUTH_PASSWD_SALT_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    char out[AUTH_PASSWD_ENTRY_MAX], line[256], err[256];
    struct auth_passwd *p;

    assert_int_equal(auth_passwd_format(out, sizeof(out), "pw", 2, salt, 101), 0);
    assert_memory_equal(out, "$7$101$AQIDBAUGBwgJCgsM$", 24);
    assert_int_equal(strlen(out), 24 + 88);
    assert_int_equal(auth_passwd_verify(out, "pw", 2), 0);
    assert_int_equal(auth_passwd_verify(out, "pW", 2), -EACCES);
    assert_int_equal(auth_passwd_format(out, 40, "pw", 2, salt, 101), -EINVAL);
    assert_int_equal(auth_passwd_format(out, sizeof(out), "pw", 2, salt, 0), -EINVAL);

    assert_int_equal(auth_passwd_format(out, sizeof(out), "pw", 2, salt, 1000), 0);
    snprintf(line, sizeof(line), "# made by us\r\nx:%s\r\n\r\n", out);
    p = parse(line, err, sizeof(err));
    assert_non_null(p);
    check_ok(p, "x", "pw");
    auth_passwd_free(p);
}

/* A file written by our writer is checked by the real mosquitto broker in the integration
 * tests; here: another writer's view of the same bytes (Python's hashlib) for iteration 101. */
static void test_format_matches_pbkdf2(void **state)
{
    const uint8_t salt[AUTH_PASSWD_SALT_LEN] = {0x3b, 0xa8, 0x85, 0x06, 0x50, 0xab,
                                                0x50, 0xc4, 0xe2, 0x17, 0xa4, 0xe3};
    char out[AUTH_PASSWD_ENTRY_MAX];

    /* The salt of the vector above: the same password must give the same line. */
    assert_int_equal(auth_passwd_format(out, sizeof(out), "pass", 4, salt, 101), 0);
    assert_string_equal(out, "$7$101$O6iFBlCrUMTiF6Tj$HOOzBfS+Y5FfhZTwigwCCeNDdLV0WgNQewgSlHyrNIM2d"
                             "W0CKUvF/SrNrDuOUqKgHjGB1ZlREPB7H9DOpJfgbA==");
}

static void expect_error(const char *text, const char *want)
{
    char err[256] = "";
    struct auth_passwd *p = parse(text, err, sizeof(err));

    assert_null(p);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error \"%s\", expected it to start with \"%s\"", err, want);
}

static void test_malformed(void **state)
{
    const char *ok = "a:$7$101$O6iFBlCrUMTiF6Tj$HOOzBfS+Y5FfhZTwigwCCeNDdLV0WgNQewgSlHyrNIM2dW0CKU"
                     "vF/SrNrDuOUqKgHjGB1ZlREPB7H9DOpJfgbA==\n";
    char text[1024];

    expect_error("user:plaintext\n", "pw:1: not a hashed password");
    snprintf(text, sizeof(text), "# c\n%s\nb:$5$abc$def\n", ok);
    expect_error(text, "pw:4: unknown password hash type");
    snprintf(text, sizeof(text), "%snocolon\n", ok);
    expect_error(text, "pw:2: expected username:hash");
    expect_error(":$6$abc$def\n", "pw:1: expected username:hash");
    expect_error("\n\nx:$7$0$O6iFBlCrUMTiF6Tj$AAAA\n", "pw:3: bad iteration count");
    expect_error("x:$7$abc$O6iFBlCrUMTiF6Tj$AAAA\n", "pw:1: bad iteration count");
    expect_error("x:$7$101$O6iFBlCrUMTiF6Tj\n", "pw:1: malformed salt or hash");
    /* a hash of the wrong length */
    expect_error("x:$7$101$O6iFBlCrUMTiF6Tj$AAAA\n", "pw:1: malformed salt or hash");
    expect_error("x:$6$!!!!$AAAA\n", "pw:1: malformed salt or hash");
    snprintf(text, sizeof(text), "%s#\n%s", ok, ok);
    expect_error(text, "pw:3: duplicate user \"a\" (also at line 1)");
}

static void test_empty_and_missing(void **state)
{
    char err[256] = "", path[128];
    struct auth_passwd *p = parse("# nothing\n\n", err, sizeof(err));

    assert_non_null(p);
    assert_int_equal(auth_passwd_count(p), 0);
    check_no(p, "a", "");
    assert_int_equal(auth_passwd_check(p, NULL, "", 0), -EACCES);
    auth_passwd_free(p);
    auth_passwd_free(NULL);

    snprintf(path, sizeof(path), "%s/none", tmpdir);
    assert_null(auth_passwd_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "none: No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mosquitto_pbkdf2),  cmocka_unit_test(test_mosquitto_sha512),
        cmocka_unit_test(test_mosquitto_upgrade), cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_format_roundtrip),  cmocka_unit_test(test_format_matches_pbkdf2),
        cmocka_unit_test(test_malformed),         cmocka_unit_test(test_empty_and_missing),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
