// libFuzzer harness: the one-pass JSON-array indexer and per-record parsing.
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    DatasetFile f;
    if (dataset_file_from_memory(&f, data, size, "fuzz") != 0) return 0;
    for (size_t i = 0; i < f.count; i++) {
        json_t *rec;
        if (dataset_file_record(&f, i, &rec) == 0) json_decref(rec);
    }
    dataset_file_close(&f);
    return 0;
}
