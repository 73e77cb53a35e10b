/*
 * harness_refuse.c — start-up refusals: `cairn -c FILE` with a config it must not accept exits
 * non-zero and names what is wrong (file and line). Cairn only: callers skip in mosquitto mode.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFUSE_WAIT_MS 5000

int harness_expect_refused(const char *dir, const char *conf_text, const char *needle)
{
    char path[4096], *out = NULL;
    size_t len = strlen(conf_text);
    FILE *f;
    int rc = -1, status;

    snprintf(path, sizeof(path), "%s/cairn.conf", dir);
    f = fopen(path, "w");
    if (!f) {
        t_fail(__FILE__, __LINE__, "cannot write %s", path);
        goto out;
    }
    fprintf(f, "persistence false\nlistener 0 127.0.0.1\n%s%s", conf_text,
            len && conf_text[len - 1] == '\n' ? "" : "\n");
    fclose(f);
    {
        char *argv[] = {(char *)harness_cairn_bin(), "-c", path, NULL};

        status = proc_run(argv, REFUSE_WAIT_MS, &out);
    }
    if (status <= 0) {
        t_fail(__FILE__, __LINE__, "cairn -c %s exited %d; it should refuse:\n%s", path, status,
               conf_text);
        goto out;
    }
    if (!out || !strstr(out, needle)) {
        t_fail(__FILE__, __LINE__, "output lacks \"%s\": %s", needle, out ? out : "");
        goto out;
    }
    rc = 0;
out:
    free(out);
    return rc;
}
