/*
 * fuzz_logcheck.c — the input is a LevelDB log file (persist_logcheck.c). The check must answer
 * for any bytes without reading past them; a log it calls torn or damaged names an offset
 * inside the input; and cutting an intact log anywhere must make it intact or torn, never
 * damaged (a write cut short is what a torn tail is).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "persist_internal.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_logcheck: %s:%d: check failed: %s\n", __FILE__, __LINE__,        \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool torn = false;
    size_t at = 0;
    uint8_t *copy = malloc(size ? size : 1);
    int rc;

    if (!copy)
        return 0;
    memcpy(copy, data, size); /* exact size: ASan sees any read past the end */
    rc = persist__log_check(copy, size, &torn, &at);
    CHECK(rc == 0 || rc == -EBADMSG);
    CHECK(!(rc < 0 || torn) || at <= size);
    if (rc == 0 && !torn) {
        for (size_t cut = size; cut-- > 0 && cut + 64 >= size;) {
            bool t2 = false;
            size_t at2 = 0;
            CHECK(persist__log_check(copy, cut, &t2, &at2) == 0);
        }
    }
    free(copy);
    return 0;
}
