// Writing a dict of tensors as torch.save does (PyTorch >= 2.1's zip
// serialization), so torch.load and upstream's code read vlm's outputs:
// LLaVA's mm_projector.bin, which finetune.sh passes as
// --pretrain_mm_mlp_adapter.
//
// The archive is what PyTorchStreamWriter writes: stored (uncompressed)
// records under "<stem>/" (the file name without its extension), each
// record's data 64-byte aligned by an "FB" extra field of 'Z' padding, a
// data descriptor after each record, then the central directory. Records:
// data.pkl, .format_version, .storage_alignment, byteorder, data/0..N-1,
// version, .data/serialization_id. data.pkl is a protocol-2 pickle of a
// dict {name: torch._utils._rebuild_tensor_v2(storage, 0, shape, stride,
// False, OrderedDict())} with one storage per tensor, byte for byte as
// torch's pickler writes it (its memo numbering included); checked against
// a file torch.save wrote (tests/fixtures/model/tiny_gqa_mm_projector.bin).
#ifndef VLM_FORMATS_TORCH_SAVE_H
#define VLM_FORMATS_TORCH_SAVE_H

#include "formats/dtype.h"

typedef struct {
    const char *name;
    DType dtype;          // DT_F32, DT_F16 or DT_BF16
    int ndim;             // 1 .. 4, contiguous (row-major strides)
    int64_t shape[4];
    const void *data;     // numel elements of dtype, little-endian
} TorchSaveTensor;

// Writes the n tensors to path atomically (the file appears whole or not
// at all). The serialization id is derived from the content, so the same
// tensors give the same bytes.
int torch_save(const char *path, const TorchSaveTensor *tensors, int n);

#endif
