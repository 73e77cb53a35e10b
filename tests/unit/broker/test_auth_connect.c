/*
 * test_auth_connect.c — broker/ops/auth.c: CONNACK codes for each combination of allow_anonymous,
 * password file and TLS identity; per_listener_settings; reload that keeps the old rules when
 * a file no longer parses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_passwd.h"
#include "config.h"

static char dir[64], pwfile[128], pw2file[128], aclfile[128];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A password file with user:pass entries made by our own writer. */
static void write_pw(const char *path, const char *user, const char *pass)
{
    const uint8_t salt[AUTH_PASSWD_SALT_LEN] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
    char h[AUTH_PASSWD_ENTRY_MAX], line[256];

    assert_int_equal(auth_passwd_format(h, sizeof(h), pass, strlen(pass), salt, 101), 0);
    snprintf(line, sizeof(line), "%s:%s\n", user, h);
    write_file(path, line);
}

static int setup(void **state)
{
    strcpy(dir, "/tmp/cairn-test-auth-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(pwfile, sizeof(pwfile), "%s/pw", dir);
    snprintf(pw2file, sizeof(pw2file), "%s/pw2", dir);
    snprintf(aclfile, sizeof(aclfile), "%s/acl", dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Two listeners, global settings, no file: the caller fills in what the test needs. */
static void cfg_init(struct config *c, struct config_listener l[2])
{
    memset(c, 0, sizeof(*c));
    memset(l, 0, 2 * sizeof(*l));
    l[0].sec.allow_anonymous = -1;
    l[1].sec.allow_anonymous = -1;
    c->listeners = l;
    c->n_listeners = 2;
}

/* Whether the last connack() had its username vouched for (password file, certificate). */
static bool verified;

static int connack(const struct auth *a, int listener, const char *identity, const char *user,
                   const char *pass, const char **who)
{
    const char *dummy;

    return auth_check_connect(a, listener, identity, user, pass, pass ? strlen(pass) : 0,
                              who ? who : &dummy, &verified);
}

static void test_anonymous(void **state)
{
    struct config c;
    struct config_listener l[2];
    char err[256];
    struct auth *a;
    const char *who = "x";

    cfg_init(&c, l);
    c.allow_anonymous = true;
    a = auth_new(&c, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(connack(a, 0, NULL, NULL, NULL, &who), 0);
    assert_null(who);
    assert_int_equal(connack(a, 1, NULL, "any", "thing", &who), 0);
    assert_string_equal(who, "any");
    assert_false(verified); /* a name nothing checked: never the same as a checked one */
    assert_true(auth_can_read(a, 0, "c", NULL, "t", 1));
    assert_true(auth_can_subscribe(a, 0, "c", NULL, "#", 1));
    assert_int_equal(connack(a, 2, NULL, NULL, NULL, NULL), 5); /* no such listener */
    auth_free(a);

    c.allow_anonymous = false;
    a = auth_new(&c, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(connack(a, 0, NULL, NULL, NULL, NULL), 5);
    /* A username alone proves nothing without a password file. */
    assert_int_equal(connack(a, 0, NULL, "any", "thing", NULL), 5);
    auth_free(a);
}

static void test_password_file(void **state)
{
    struct config c;
    struct config_listener l[2];
    char err[256];
    struct auth *a;
    const char *who;

    write_pw(pwfile, "alice", "s3cret");
    cfg_init(&c, l);
    c.sec.password_file = pwfile;
    a = auth_new(&c, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(connack(a, 0, NULL, "alice", "s3cret", &who), 0);
    assert_string_equal(who, "alice");
    assert_true(verified);
    assert_int_equal(connack(a, 1, NULL, "alice", "s3cret", NULL), 0);
    assert_int_equal(connack(a, 0, NULL, "alice", "wrong", NULL), 4);
    assert_int_equal(connack(a, 0, NULL, "alice", NULL, NULL), 4);
    assert_int_equal(connack(a, 0, NULL, "bob", "s3cret", NULL), 4);
    assert_int_equal(connack(a, 0, NULL, NULL, NULL, NULL), 5);
    auth_free(a);

    /* Anonymous allowed does not let a wrong password through. */
    c.allow_anonymous = true;
    a = auth_new(&c, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(connack(a, 0, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(connack(a, 0, NULL, "alice", "wrong", NULL), 4);
    auth_free(a);
}

static void test_identity(void **state)
{
    struct config c;
    struct config_listener l[2];
    char err[256];
    struct auth *a;
    const char *who;

    write_pw(pwfile, "alice", "s3cret");
    cfg_init(&c, l);
    c.sec.password_file = pwfile;
    l[1].sec.use_identity_as_username = true;
    a = auth_new(&c, err, sizeof(err));
    assert_non_null(a);
    /* The certificate CN is the username; the password file is not consulted. */
    assert_int_equal(connack(a, 1, "device-7", "alice", "wrong", &who), 0);
    assert_string_equal(who, "device-7");
    assert_true(verified);
    assert_int_equal(connack(a, 1, NULL, "alice", "s3cret", NULL), 5);
    /* The other listener is unaffected. */
    assert_int_equal(connack(a, 0, "device-7", "alice", "wrong", NULL), 4);
    auth_free(a);
}

static void test_per_listener(void **state)
{
    struct config c;
    struct config_listener l[2];
    char err[256];
    struct auth *a;

    write_pw(pwfile, "alice", "one");
    write_pw(pw2file, "alice", "two");
    write_file(aclfile, "user alice\ntopic read a/#\n");
    cfg_init(&c, l);
    c.per_listener_settings = true;
    c.sec.password_file = pwfile; /* ignored with per_listener_settings */
    l[0].sec.password_file = pwfile;
    l[0].sec.acl_file = aclfile;
    l[0].sec.allow_anonymous = 0;
    l[1].sec.password_file = pw2file;
    l[1].sec.allow_anonymous = 1;
    a = auth_new(&c, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(connack(a, 0, NULL, "alice", "one", NULL), 0);
    assert_int_equal(connack(a, 0, NULL, "alice", "two", NULL), 4);
    assert_int_equal(connack(a, 1, NULL, "alice", "two", NULL), 0);
    assert_int_equal(connack(a, 0, NULL, NULL, NULL, NULL), 5);
    assert_int_equal(connack(a, 1, NULL, NULL, NULL, NULL), 0);
    assert_true(auth_can_read(a, 0, "c", "alice", "a/b", 3));
    assert_false(auth_can_write(a, 0, "c", "alice", "a/b", 3));
    assert_false(auth_can_subscribe(a, 0, "c", "alice", "#", 1));
    assert_true(auth_can_write(a, 1, "c", "alice", "a/b", 3)); /* no ACL on listener 1 */
    auth_free(a);
}

static void test_bad_file_and_reload(void **state)
{
    struct config c;
    struct config_listener l[2];
    char err[256];
    struct auth *a, *before;

    write_pw(pwfile, "alice", "one");
    write_file(aclfile, "user alice\ntopic read a/#\n");
    cfg_init(&c, l);
    c.sec.password_file = pwfile;
    c.sec.acl_file = aclfile;
    a = auth_new(&c, err, sizeof(err));
    assert_non_null(a);

    /* The ACL file breaks: auth_new names file and line, reload keeps the old rules. */
    write_file(aclfile, "user alice\ntopic read a/#\ntopic bogus words\n");
    assert_null(auth_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "/acl:3: unknown access type"));
    before = a;
    assert_int_not_equal(auth_reload(&a, &c, err, sizeof(err)), 0);
    assert_ptr_equal(a, before);
    assert_true(auth_can_read(a, 0, "c", "alice", "a/b", 3));
    assert_int_equal(connack(a, 0, NULL, "alice", "one", NULL), 0);

    /* Fixed, and a right taken away: the reload applies it. */
    write_file(aclfile, "user alice\ntopic read b/#\n");
    write_pw(pwfile, "alice", "new");
    assert_int_equal(auth_reload(&a, &c, err, sizeof(err)), 0);
    assert_false(auth_can_read(a, 0, "c", "alice", "a/b", 3));
    assert_true(auth_can_read(a, 0, "c", "alice", "b/b", 3));
    assert_int_equal(connack(a, 0, NULL, "alice", "one", NULL), 4);
    assert_int_equal(connack(a, 0, NULL, "alice", "new", NULL), 0);

    /* A missing file. */
    c.sec.password_file = "/nonexistent/pw";
    assert_null(auth_new(&c, err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/pw: No such file or directory");
    auth_free(a);
    auth_free(NULL);
}

/* Loaded from a file, a bad auth file is named by its config line too. */
static void test_error_names_config_line(void **state)
{
    struct config c;
    char conf[160], text[512], want[512], err[1024];

    (void)state;
    snprintf(conf, sizeof(conf), "%s/cairn.conf", dir);
    snprintf(text, sizeof(text), "listener 1883\n\nacl_file %s\npassword_file %s/missing\n",
             aclfile, dir);
    write_file(conf, text);
    write_file(aclfile, "topic read a/#\n");
    assert_int_equal(config_load(conf, &c, err, sizeof(err)), 0);
    assert_null(auth_new(&c, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s:4: password_file: %s/missing: No such file or directory", conf,
             dir);
    assert_string_equal(err, want);
    config_cleanup(&c);

    /* per listener: the listener's own line */
    snprintf(text, sizeof(text),
             "per_listener_settings true\nlistener 1883\nlistener 1884\nacl_file %s\n", aclfile);
    write_file(conf, text);
    write_file(aclfile, "topic read a/#\ntopic bogus words\n");
    assert_int_equal(config_load(conf, &c, err, sizeof(err)), 0);
    assert_null(auth_new(&c, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s:4: acl_file: %s:2: unknown access type", conf, aclfile);
    assert_non_null(strstr(err, want));
    config_cleanup(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anonymous),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_per_listener),
        cmocka_unit_test(test_bad_file_and_reload),
        cmocka_unit_test(test_error_names_config_line),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
