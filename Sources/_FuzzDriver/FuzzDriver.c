#include "FuzzDriver.h"
#include <stdio.h>

#ifdef ATTENTION_FUZZING
// libFuzzer's entry point for programs that keep their own main (-sanitize=fuzzer links it).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t));

int attention_fuzz_run(int argc, char **argv, attention_fuzz_callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
#else
int attention_fuzz_run(int argc, char **argv, attention_fuzz_callback callback) {
    (void)argc; (void)argv; (void)callback;
    fprintf(stderr, "attention-fuzz was built without libFuzzer: run scripts/fuzz.sh TARGET [SECONDS]\n");
    return 2;
}
#endif
