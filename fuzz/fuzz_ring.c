/*
 * fuzz_ring.c - libFuzzer target: a hostile segment image plus an operation
 * stream, driven through the ring code (see ring_harness.h for the layout).
 * Build: clang -fsanitize=fuzzer,address,undefined (fuzz/fuzz.mk).
 */
#include <stddef.h>
#include <stdint.h>

#include "ring_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ring_harness_run(data, size);
    return 0;
}
