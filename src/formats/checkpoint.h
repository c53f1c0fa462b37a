// A checkpoint as users have it: one safetensors or PyTorch .bin file, or a
// model directory holding one of them or a sharded set with its index
// (model.safetensors.index.json / pytorch_model.bin.index.json).
// Tensors are listed sorted by name and looked up by name.
#ifndef VLM_FORMATS_CHECKPOINT_H
#define VLM_FORMATS_CHECKPOINT_H

#include "formats/dtype.h"
#include "formats/safetensors.h"
#include "formats/torch_bin.h"

typedef enum { CKPT_SAFETENSORS, CKPT_TORCH_BIN } CheckpointKind;

typedef struct {
    const TensorInfo *info;  // owned by its shard
    int shard;
    int index;               // within the shard
} CheckpointTensor;

typedef struct {
    char *path;              // as given
    CheckpointKind kind;
    int sharded;             // loaded through an index file
    int n_shards;
    char **shard_paths;
    SafetensorsFile *st;     // n_shards of them when kind == CKPT_SAFETENSORS
    TorchBinFile *tb;        // n_shards of them when kind == CKPT_TORCH_BIN
    CheckpointTensor *tensors;  // sorted by name
    int count;
    int skipped;             // non-tensor entries of .bin files
} Checkpoint;

int checkpoint_open(Checkpoint *ck, const char *path);
int checkpoint_find(const Checkpoint *ck, const char *name);  // index into tensors, or -1
// Tensor i, contiguous, in its stored dtype (info->nbytes bytes).
int checkpoint_read(Checkpoint *ck, int i, void *dst);
// Tensor i converted to float32 (info->numel floats).
int checkpoint_read_f32(Checkpoint *ck, int i, float *dst);
// The tensor `name` converted to float32, after checking it exists, is floating-point and has
// exactly the ndim sizes in shape; errors name `label` (the file, for messages) and the tensor.
int checkpoint_read_f32_shaped(Checkpoint *ck, const char *name, const char *label, int ndim, const int64_t *shape,
                               float *dst);
const char *checkpoint_format(const Checkpoint *ck);  // "safetensors", "pytorch"
void checkpoint_close(Checkpoint *ck);

#endif
