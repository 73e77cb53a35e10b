/*
 * fuzz_acl.c — the ACL file parser (auth_acl_parse) on arbitrary bytes, then the checks on the
 * rules it built: parse must answer an object or NULL with "NAME:LINE: reason"; checks must not
 * crash, and a deny-everything rule added in front must win (deny beats any grant).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_acl.h"
#include "fuzz.h"

/* Topic names and filters to try against whatever rules the input made. */
static const char *const fuzz_acl_topics[] = {"a",     "a/b",    "a/b/c", "dev1/x",
                                              "u1/in", "$SYS/x", "/"};
static const char *const fuzz_acl_filters[] = {"#", "a/#", "a/+", "+/+", "a/b", "$SYS/#", "+"};

static void fuzz_acl_checks(const struct auth_acl *a, const char *cid, const char *user)
{
    volatile bool sink = false;

    for (size_t i = 0; i < sizeof(fuzz_acl_topics) / sizeof(fuzz_acl_topics[0]); i++) {
        const char *t = fuzz_acl_topics[i];

        sink ^= auth_acl_check(a, cid, user, t, strlen(t), AUTH_ACL_READ);
        sink ^= auth_acl_check(a, cid, user, t, strlen(t), AUTH_ACL_WRITE);
    }
    for (size_t i = 0; i < sizeof(fuzz_acl_filters) / sizeof(fuzz_acl_filters[0]); i++) {
        const char *f = fuzz_acl_filters[i];

        sink ^= auth_acl_check_subscribe(a, cid, user, f, strlen(f));
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char deny[] = "pattern deny #\n";
    struct auth_acl *a;
    char err[256], *text = NULL;

    err[0] = '\0';
    a = auth_acl_parse("fuzz.acl", (const char *)data, size, err, sizeof(err));
    if (!a) {
        if (strncmp(err, "fuzz.acl:", 9) != 0)
            abort(); /* every error names the file */
        goto out;
    }
    fuzz_acl_checks(a, "dev1", "u1");
    fuzz_acl_checks(a, "dev1", NULL);
    fuzz_acl_checks(a, "a/+", "#");
    auth_acl_free(a);

    /* The same rules behind "pattern deny #": nothing outside $ topics may be read or written. */
    text = malloc(sizeof(deny) - 1 + size);
    if (!text)
        goto out;
    memcpy(text, deny, sizeof(deny) - 1);
    memcpy(text + sizeof(deny) - 1, data, size);
    a = auth_acl_parse("fuzz.acl", text, sizeof(deny) - 1 + size, err, sizeof(err));
    if (!a)
        abort(); /* the input parsed alone, so it parses after one more valid line */
    if (auth_acl_check(a, "dev1", "u1", "a/b", 3, AUTH_ACL_READ) ||
        auth_acl_check(a, "dev1", NULL, "a/b", 3, AUTH_ACL_WRITE) ||
        auth_acl_check_subscribe(a, "dev1", "u1", "a/#", 3))
        abort();
    auth_acl_free(a);
out:
    free(text);
    return 0;
}
