/*
 * fuzz_psk.c — the psk_file parser (tls__psk_parse) on arbitrary bytes: an object that frees
 * cleanly, or NULL with "NAME:LINE: reason", never a crash, overread or leak. When it parses,
 * the identity of the first entry line must be found again with its key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tls_internal.h"

/* The first line that is neither blank nor a comment: its identity (up to ':'). */
static bool fuzz_psk_first_id(const uint8_t *data, size_t size, const uint8_t **id, size_t *len)
{
    const uint8_t *s = data, *end = data + size;

    while (s < end) {
        const uint8_t *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
        const uint8_t *colon;

        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s && s[0] != '#') {
            colon = memchr(s, ':', (size_t)(e - s));
            if (!colon)
                abort(); /* it parsed, so the line has one */
            *id = s;
            *len = (size_t)(colon - s);
            return true;
        }
        s = nl ? nl + 1 : end;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_psk_table *t;
    const uint8_t *id;
    size_t idlen, keylen = 0;
    char err[256];

    err[0] = '\0';
    t = tls__psk_parse("fuzz.psk", (const char *)data, size, err, sizeof(err));
    if (!t) {
        if (strncmp(err, "fuzz.psk:", 9) != 0)
            abort(); /* every error names the file */
        return 0;
    }
    if (fuzz_psk_first_id(data, size, &id, &idlen) &&
        (!tls__psk_find(t, id, idlen, &keylen) || keylen == 0))
        abort();
    tls__psk_free(t);
    return 0;
}
