/*
 * fuzz.h — what every fuzz target defines. libFuzzer calls it with each input; in the normal
 * build replay.c calls it with each file of a corpus.
 */
#ifndef CAIRN_FUZZ_H
#define CAIRN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Must not keep data after returning; returns 0. Aborts on a broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
