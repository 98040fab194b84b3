#ifndef ATTENTION_FUZZ_DRIVER_H
#define ATTENTION_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// One input of a fuzz target; returns 0 (libFuzzer's convention).
typedef int (*attention_fuzz_callback)(const uint8_t *data, size_t size);

/// Runs libFuzzer on `callback` with libFuzzer's command line `argc`/`argv` (corpus folders, -flags).
/// Built without ATTENTION_FUZZING (that is, without libFuzzer: a plain `swift build`), prints how to
/// build the fuzzer and returns 2. scripts/fuzz.sh builds it with libFuzzer.
int attention_fuzz_run(int argc, char **argv, attention_fuzz_callback callback);

#endif
