/*
 * harness_crash.h — the crash model of the durability tests (24_crashloop, 27_ack_window):
 * two persistent publishers (QoS 1 on crash/q1, QoS 2 on crash/q2, payloads numbering each
 * message) and two persistent subscribers to crash/#, all raw sockets in one poll() loop,
 * keeping their session state across the broker's deaths as real clients must. After the
 * broker dies the test restarts it and calls crash_connect_all() again; at the end
 * crash_drain() lets every flow finish and crash_tally() counts per QoS what every subscriber
 * got of what the publishers had acknowledged. harness_crash.c says how the clients behave.
 *
 * Ownership: crash_new() borrows the broker for the model's lifetime; crash_free() closes the
 * sockets and frees the model.
 */
#ifndef CAIRN_HARNESS_CRASH_H
#define CAIRN_HARNESS_CRASH_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

#define CRASH_MAX_SEQ 100000 /* messages per publisher, at most */

struct crash;

struct crash_tally {
    long lost[3];            /* acknowledged to the publisher, never delivered (per sub) */
    long dup[3];             /* delivered more than once (per sub) */
    long reordered[3];       /* first deliveries below one already made */
    long dup_unexplained[3]; /* duplicates neither a DUP resend nor a publisher's resend */
};

/*
 * lossy: sessions may be lost (a power cut with persistence_sync false), the clients start
 * afresh instead of failing. toggle: subscribers leave and come back now and then.
 */
struct crash *crash_new(struct broker *b, uint64_t seed, bool lossy, bool toggle);
void crash_free(struct crash *c);
/* Publish no more than this many messages per publisher. */
void crash_set_limit(struct crash *c, int messages);
/* Connect whoever is not away (first: also subscribe). 0; 1 when the broker died meanwhile;
 * -1 on failure (noted). */
int crash_connect_all(struct crash *c, bool first);
/* The broker is gone: close every socket (the model remembers who is away). */
void crash_close_all(struct crash *c);
/*
 * Run the clients until `until` events (acks and deliveries), or with until < 0 until a quiet
 * moment. publish: keep the publishers' windows full. 0; 1 when the broker died (its
 * connections closed and the process exited); -1 on a client error.
 */
int crash_pump(struct crash *c, long until, bool publish);
/* Everyone back, no new messages: until every flow finished and nothing is missing
 * (lossy: until quiet with every flow finished), at most timeout_ms. 0; 1 when the broker
 * died meanwhile; -1 on failure (noted). */
int crash_drain(struct crash *c, int timeout_ms);
void crash_tally(const struct crash *c, struct crash_tally *t);
/* Print the counts as notes. */
void crash_report(const struct crash *c, const char *label, const struct crash_tally *t);
long crash_events(const struct crash *c);
uint64_t crash_rand(struct crash *c);
int crash_errors(const struct crash *c);
/* Messages published so far (both publishers), and publisher flows not finished. */
long crash_published(const struct crash *c);
long crash_inflight(const struct crash *c);

#endif
