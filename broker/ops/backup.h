/*
 * backup.h — SIGUSR1's copy of the running store (service.c calls it).
 *
 * The copy is persist_backup_start() into persistence_location/backup: a LevelDB snapshot taken
 * on the loop thread at the moment the signal is handled — so it holds every batch written
 * before, which is every acknowledgement sent before — written out by persist's own thread while
 * the loop serves on. Its end is an fd event on the loop; then the log says where the copy is, or
 * why it failed. The copy is a persistence_location as it stands: restoring means starting a
 * broker with persistence_location pointing at it (or at a copy of it).
 *
 * One backup at a time; backup/ must not exist (the operator moves each copy away; the broker
 * never deletes one). Process-wide state, loop thread only, like the log.
 */
#ifndef CAIRN_BACKUP_H
#define CAIRN_BACKUP_H

struct broker;
struct loop;

/* Start a copy of b's store; what happens is logged (also when none can start). */
void backup_request(struct broker *b, struct loop *l);
/* Shutdown: cancel a running copy, wait for its thread and log it. Nothing when none runs. */
void backup_stop(void);

#endif
