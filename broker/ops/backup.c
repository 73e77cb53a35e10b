/*
 * backup.c — SIGUSR1: start a copy of the running store, watch for its end on the loop, log it
 * (backup.h).
 */
#include "backup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h" /* struct broker: its store */
#include "log.h"
#include "loop.h"
#include "persist.h"

static struct {
    struct broker *b; /* set while a copy runs */
    struct loop *loop;
    char *dir;
    uint64_t t0; /* loop_now_ms at the start */
} backup_state;

/* The copy thread ended (its descriptor became readable): reap it and say how it went. */
static void backup_ended(struct loop *l, int fd, int events, void *arg)
{
    struct persist *store = backup_state.b->store;
    struct persist_backup_stats st = {0};
    char err[600];
    int rc;

    (void)arg;
    (void)events;
    loop_del_fd(l, fd);
    rc = persist_backup_finish(store, &st, err, sizeof(err));
    if (rc < 0)
        log_write(CAIRN_LOG_ERR, "%s", err);
    else
        log_write(CAIRN_LOG_NOTICE,
                  "backup complete: %s (%" PRIu64 " records, %" PRIu64 " bytes, %" PRIu64
                  " ms); to restore, start a broker with persistence_location %s",
                  backup_state.dir, st.records, st.bytes, loop_now_ms(l) - backup_state.t0,
                  backup_state.dir);
    free(backup_state.dir);
    backup_state.dir = NULL;
    backup_state.b = NULL;
    backup_state.loop = NULL;
}

void backup_request(struct broker *b, struct loop *l)
{
    char err[600];
    int rc;

    if (!b->store) {
        log_write(CAIRN_LOG_WARNING, "SIGUSR1: no backup: persistence is false");
        goto out;
    }
    if (backup_state.b) {
        log_write(CAIRN_LOG_WARNING, "SIGUSR1: a backup into %s is still running",
                  backup_state.dir);
        goto out;
    }
    rc = persist_backup_start(b->store, NULL, err, sizeof(err));
    if (rc < 0) {
        log_write(CAIRN_LOG_ERR, "SIGUSR1: no backup: %s", err);
        goto out;
    }
    backup_state.dir = strdup(persist_backup_dir(b->store));
    rc = backup_state.dir
             ? loop_add_fd(l, persist_backup_fd(b->store), CAIRN_EV_READ, backup_ended, NULL)
             : -ENOMEM;
    if (rc < 0) {
        /* nobody would hear of its end: stop it now */
        persist_backup_cancel(b->store);
        rc = persist_backup_finish(b->store, NULL, err, sizeof(err));
        (void)rc;
        log_write(CAIRN_LOG_ERR, "SIGUSR1: no backup: out of memory");
        free(backup_state.dir);
        backup_state.dir = NULL;
        goto out;
    }
    backup_state.b = b;
    backup_state.loop = l;
    backup_state.t0 = loop_now_ms(l);
    log_write(CAIRN_LOG_NOTICE,
              "SIGUSR1: backup of %s started into %s (everything acknowledged so far)",
              persist_path(b->store), backup_state.dir);
out:
    return;
}

void backup_stop(void)
{
    struct persist *store;

    if (!backup_state.b)
        return;
    store = backup_state.b->store;
    log_write(CAIRN_LOG_WARNING,
              "shutdown: cancelling the backup into %s (with the broker stopped, "
              "cairn-db --backup copies the store)",
              backup_state.dir);
    persist_backup_cancel(store);
    backup_ended(backup_state.loop, persist_backup_fd(store), CAIRN_EV_READ, NULL);
}
