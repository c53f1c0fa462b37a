// What OLA-VLM's two ViT teachers share (model/teacher_depth.c: DINOv2,
// model/teacher_gen.c: CLIP ViT-H): their weights in one float32 buffer, the
// forward's activations for max_batch images laid out once (the layers' for
// one image, reused by every layer and image: inference only), the embeddings, and reading a
// checkpoint's tensor by name with its shape checked. The layers themselves
// are vit_layer_forward (model/clip.h), the one LLaVA's tower runs.
#ifndef VLM_MODEL_TEACHER_VIT_H
#define VLM_MODEL_TEACHER_VIT_H

#include <stddef.h>
#include <stdint.h>

#include "formats/checkpoint.h"
#include "model/carve.h"
#include "model/clip.h"
#include "model/config.h"
#include "model/weights.h"

typedef struct {
    VisionConfig v;                  // image_size: the input's side (the grid pos is at)
    int max_batch;
    float *params;                   // weights, one allocation (vit_teacher_alloc)
    size_t n_params;
    float *patch_w, *patch_b;        // (C, 3, P, P), (C) with v.patch_bias
    float *cls, *pos;                // (C), (NP + 1, C) at the input's grid
    float *pre_ln_w, *pre_ln_b;      // (C) unless v.skip_pre_norm
    ClipLayerWeights *layers;        // v.layers
    float *acts;                     // activations, one allocation
    float *pixels;                   // (max_batch, 3, S, S): the teachers' prepare fills slot by slot
    float *cols, *patches, *x, *tmp, *att_scratch;
    float *mean, *rstd;              // (max_batch * T) a norm's statistics outside the layers
    ClipLayerActs L;                 // one layer's for one image, shared by all layers and images
} VitTeacher;
// Each teacher's state (Teacher.impl) starts with its VitTeacher: its tests read the pixels there.

// The ViT's weights on c (call twice, see carve.h; the teacher carves its own after).
void vit_teacher_carve_params(VitTeacher *m, Carve *c);
// Counts (c.base NULL: vit_teacher_carve_params then extra(m, c, ctx)), allocates, and
// carves again: m->params holds n_params floats, each tensor's pointer set. Then the
// activations for max_batch images. Errors: out of memory (naming path).
int vit_teacher_alloc(VitTeacher *m, const VisionConfig *v, int max_batch,
                      void (*extra)(VitTeacher *m, Carve *c, void *ctx), void *ctx, const char *path);
void vit_teacher_free(VitTeacher *m);

// m->pixels (n images) -> m->x (n, T, C): patch convolution (+ bias), [class; patches]
// + positions, pre_layrnorm unless v.skip_pre_norm. Each image's result is the same bits
// whatever n and the thread count (products image by image, the patch product's
// reduction in fixed blocks: linear_forward_blocked).
void vit_teacher_embed(VitTeacher *m, int n);
// m->x through layer l, in place, image by image (vit_layer_forward with n = 1).
void vit_teacher_layer(VitTeacher *m, int l, int n);

// The shape of tensor `name`, or NULL when missing.
const TensorInfo *vit_teacher_info(const Checkpoint *ck, const char *name);

#endif
