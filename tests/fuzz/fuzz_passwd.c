/*
 * fuzz_passwd.c — the password file parser (auth_passwd_parse) on arbitrary bytes: it must
 * answer an object that frees cleanly, or NULL with "NAME:LINE: reason", never crash, overread
 * or leak. The bytes are handed over as they are (not NUL-terminated), as a file read would.
 *
 * auth_passwd_check is not called: a $7$ line may ask for up to 10^8 PBKDF2 iterations, which
 * would time out every input; the hash texts are checked by the parser already.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_passwd.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct auth_passwd *p;
    char err[256];

    err[0] = '\0';
    p = auth_passwd_parse("fuzz.pw", (const char *)data, size, err, sizeof(err));
    if (p) {
        if (auth_passwd_count(p) > size)
            abort(); /* every user takes at least one byte */
        auth_passwd_free(p);
    } else if (strncmp(err, "fuzz.pw:", 8) != 0) {
        abort(); /* every error names the file */
    }
    return 0;
}
