// libFuzzer harness: the zip container + pickle + tensor views of .bin files.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "formats/torch_bin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TorchBinFile f;
    if (torch_bin_open_memory(&f, data, size, "fuzz") != 0) return 0;
    for (int i = 0; i < f.count; i++) {
        if (f.tensors[i].info.nbytes > (1u << 24)) continue;  // a 16 MB buffer is plenty for fuzz inputs
        void *buf = malloc(f.tensors[i].info.nbytes + 1);
        if (buf) torch_bin_read(&f, i, buf);
        free(buf);
    }
    torch_bin_close(&f);
    return 0;
}
