// The parameter walk's registry (weights.c and the per-architecture walks):
// one walk over an architecture, run to count the tensors, to name them
// (ParamSpec) and, given the buffer's base, to set every weight pointer.
#ifndef VLM_MODEL_WALK_H
#define VLM_MODEL_WALK_H

#include "formats/checkpoint.h"
#include "model/weights.h"

typedef struct {
    LlavaParams *p;
    float *base;           // NULL while counting and naming
    LlavaWeights *w;
    int count;
    size_t offset;
} Walk;

// Registers the next tensor (the file's order) at the walk's offset and advances it.
void reg(Walk *k, float **slot, Module m, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
         bool reachable);
// The same at offset `at` of a block reserved by the caller (tensors of one matrix product); returns its size.
size_t reg_at(Walk *k, size_t at, float **slot, Module m, const char *name, int ndim, int64_t d0, int64_t d1,
              int64_t d2, int64_t d3, bool reachable);
// The spec being registered last (naming pass only; NULL otherwise).
static inline ParamSpec *walk_last_spec(Walk *k) {
    return k->p->specs && !k->base ? &k->p->specs[k->count - 1] : NULL;
}

// mPLUG-Owl2's tensors under upstream's names (model/owl2_weights.c).
void owl2_walk(Walk *k, const LlavaConfig *c);
// The sin-cos buffers a checkpoint saved by upstream's train.py holds
// (q_pos_embed / k_pos_embed per abstractor layer): compared with the
// recomputed tables, a difference logged as a warning naming the tensor (the
// recomputed ones are used, as upstream's __init__ makes them); errors only
// for an unreadable or mis-shaped one. *differ (may be NULL): the tables that differ.
int owl2_check_buffers(Checkpoint *ck, const LlavaConfig *c, const char *dir, int *differ_out);
// The buffers upstream's save_pretrained writes beside the parameters (each
// abstractor layer's q_pos_embed / k_pos_embed, each LLM layer's
// rotary_emb.inv_freq under transformers 4.31), so its from_pretrained loads
// our folder without re-initialising anything: their number, then the tensors
// (infos, datas; owned[i] the allocations to free; names their storage).
int owl2_buffer_count(const LlavaConfig *c);
int owl2_buffers(const LlavaConfig *c, TensorInfo *infos, const void **datas, float **owned, char (*names)[200]);
// A fused q|k|v spec (qkv_heads > 0): the file's per-head interleaved rows
// src -> ours [q; k; v] in dst, or back (to_file).
void qkv_reorder(float *dst, const float *src, const ParamSpec *s, bool to_file);

#endif
