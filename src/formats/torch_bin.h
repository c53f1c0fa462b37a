// PyTorch .bin / .pt checkpoints as written by torch.save(state_dict) (the zip
// format of torch >= 1.6): ARCHIVE/data.pkl describes the tensors (read by the
// restricted unpickler in pickle.h), ARCHIVE/data/<key> holds each storage's
// raw little-endian bytes. Nested dicts are flattened with '.' between keys;
// entries that are not tensors (an epoch counter, say) are counted and skipped.
#ifndef VLM_FORMATS_TORCH_BIN_H
#define VLM_FORMATS_TORCH_BIN_H

#include <stdint.h>

#include "formats/dtype.h"

typedef struct {
    TensorInfo info;
    char *storage_key;        // entry ARCHIVE/data/<storage_key>
    int64_t storage_numel;    // elements in the storage
    int64_t offset;           // first element of this tensor in the storage
    int64_t stride[TENSOR_MAX_DIMS];
    int contiguous;
} TorchTensor;

typedef struct zip zip_t;

typedef struct {
    char *path;
    zip_t *zip;
    char *prefix;            // "ARCHIVE/"
    uint64_t archive_size;   // bytes of the zip file: no entry can hold more
    TorchTensor *tensors;
    int count;
    int skipped;             // non-tensor entries
} TorchBinFile;

int torch_bin_open(TorchBinFile *f, const char *path);
// Same from a file image in memory (the fuzzer's entry); buf must outlive f.
int torch_bin_open_memory(TorchBinFile *f, const void *buf, size_t size, const char *name);
// Copies tensor i, made contiguous, in its own dtype: info.nbytes bytes.
int torch_bin_read(TorchBinFile *f, int i, void *dst);
int torch_bin_find(const TorchBinFile *f, const char *name);  // index or -1
void torch_bin_close(TorchBinFile *f);

// True when the first bytes are a zip local header ("PK\3\4").
int torch_bin_sniff(const unsigned char *head, size_t n);

#endif
