/*
 * tls_identity.c — a client certificate's name as use_identity_as_username and
 * use_subject_as_username want it: the CN, or the whole subject as OpenSSL prints it in RFC 2253
 * order, as Mosquitto does ("CN=dev1,O=Example").
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/oid.h>

#include "tls_internal.h"

/* Append s[0..n) to out (cap), escaping as RFC 2253 does. false when it does not fit. */
static bool tls_dn_append(char *out, size_t cap, size_t *pos, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool esc = strchr(",+\"\\<>;", s[i]) != NULL || (i == 0 && (s[i] == '#' || s[i] == ' ')) ||
                   (i == n - 1 && s[i] == ' ');

        if (s[i] == '\0' || *pos + 3 >= cap)
            return false;
        if (esc)
            out[(*pos)++] = '\\';
        out[(*pos)++] = (char)s[i];
    }
    out[*pos] = '\0';
    return true;
}

/* The subject as OpenSSL's RFC 2253 printing gives it (last RDN first): "CN=a,O=b,C=c". */
char *tls__subject(const mbedtls_x509_name *name)
{
    const mbedtls_x509_name *v[64];
    char out[1024];
    size_t n = 0, pos = 0;

    for (; name && n < 64; name = name->next)
        if (name->oid.p)
            v[n++] = name;
    out[0] = '\0';
    while (n-- > 0) {
        const char *sn = NULL;
        char oid[64];

        if (mbedtls_oid_get_attr_short_name(&v[n]->oid, &sn) != 0) {
            if (mbedtls_oid_get_numeric_string(oid, sizeof(oid), &v[n]->oid) < 0)
                return NULL;
            sn = oid;
        }
        if (pos + strlen(sn) + 3 >= sizeof(out))
            return NULL;
        pos += (size_t)snprintf(out + pos, sizeof(out) - pos, "%s%s=", pos ? "," : "", sn);
        if (!tls_dn_append(out, sizeof(out), &pos, v[n]->val.p, v[n]->val.len))
            return NULL;
    }
    return strdup(out);
}

char *tls__common_name(const mbedtls_x509_name *name)
{
    for (; name; name = name->next)
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &name->oid) == 0)
            return memchr(name->val.p, '\0', name->val.len)
                       ? NULL
                       : strndup((const char *)name->val.p, name->val.len);
    return NULL;
}
