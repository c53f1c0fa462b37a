// libFuzzer harness: the restricted unpickler.
#include <stddef.h>
#include <stdint.h>

#include "formats/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PickleArena *arena;
    PickleValue *root;
    if (pickle_load(data, size, "fuzz", &arena, &root) == 0) pickle_arena_free(arena);
    return 0;
}
