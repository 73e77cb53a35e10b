/*
 * fuzz_config.c — the cairn.conf parser on arbitrary text: it must answer 0 with a config that
 * cleans up, or -EINVAL with a "NAME:LINE: reason" message, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    struct config c;
    char err[256];
    char *text = malloc(size + 1);

    if (!text)
        return 0;
    if (!quiet) {
        log_open(0, NULL, 0); /* the warnings for ignored options */
        quiet = 1;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    err[0] = '\0';
    if (config_parse("fuzz.conf", text, &c, err, sizeof(err)) == 0) {
        if (c.n_listeners == 0)
            abort(); /* a parsed config always has a listener */
        config_cleanup(&c);
    } else if (strncmp(err, "fuzz.conf:", 10) != 0) {
        abort(); /* every error names the file */
    }
    free(text);
    return 0;
}
