/*
 * hash.h — the keyed hash of the broker's client-controlled keys (topic levels in the trees,
 * a session's subscription filters).
 *
 * SipHash-1-3 under a key drawn from getrandom() at the first call, so a client cannot choose
 * levels or filters that all fall into one bucket and turn every lookup into a scan (hash
 * flooding): the values differ from one process to the next. Nothing may depend on them
 * beyond one process's lifetime (never stored, never an iteration order tests see).
 */
#ifndef CAIRN_HASH_H
#define CAIRN_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *p, size_t len);

#endif
