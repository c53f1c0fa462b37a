// The ViT teachers' shared weights, activations and embeddings, see teacher_vit.h.
#include "model/teacher_vit.h"

#include <stdbool.h>
#include <stdlib.h>  // free
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/patch_embed.h"

void vit_teacher_carve_params(VitTeacher *m, Carve *c) {
    const VisionConfig *v = &m->v;
    size_t C = v->hidden, I = v->intermediate, P = v->patch, T = (size_t)vision_patches(v) + 1;
    m->patch_w = carve(c, C * 3 * P * P);
    m->patch_b = v->patch_bias ? carve(c, C) : NULL;
    m->cls = carve(c, C), m->pos = carve(c, T * C);
    m->pre_ln_w = m->pre_ln_b = NULL;
    if (!v->skip_pre_norm) m->pre_ln_w = carve(c, C), m->pre_ln_b = carve(c, C);
    for (int l = 0; l < v->layers; l++) {
        ClipLayerWeights W = {0};
        W.ln1_w = carve(c, C), W.ln1_b = carve(c, C);
        W.qkv_w = carve(c, 3 * C * C), W.qkv_b = carve(c, 3 * C);
        W.o_w = carve(c, C * C), W.o_b = carve(c, C);
        W.ln2_w = carve(c, C), W.ln2_b = carve(c, C);
        W.fc1_w = carve(c, I * C), W.fc1_b = carve(c, I);
        W.fc2_w = carve(c, C * I), W.fc2_b = carve(c, C);
        if (v->layer_scale) W.ls1 = carve(c, C), W.ls2 = carve(c, C);
        if (c->base) {  // q, k, v: views of the fused product's rows
            W.q_w = W.qkv_w, W.k_w = W.qkv_w + C * C, W.v_w = W.qkv_w + 2 * C * C;
            W.q_b = W.qkv_b, W.k_b = W.qkv_b + C, W.v_b = W.qkv_b + 2 * C;
            m->layers[l] = W;
        }
    }
}

static void carve_acts(VitTeacher *m, Carve *c) {
    const VisionConfig *v = &m->v;
    size_t B = m->max_batch, C = v->hidden, P = v->patch, S = v->image_size, NP = vision_patches(v), N = B * (NP + 1);
    m->pixels = carve(c, B * 3 * S * S);
    m->cols = carve(c, B * NP * 3 * P * P);
    m->patches = carve(c, B * NP * C);
    m->x = carve(c, N * C), m->tmp = carve(c, N * C);
    m->mean = carve(c, N), m->rstd = carve(c, N);
    m->att_scratch = carve(c, attention_scratch_floats((int)(NP + 1)));
    vit_layer_acts_carve(&m->L, c, v, 1);  // the layers run image by image (vit_teacher_layer)
}

int vit_teacher_alloc(VitTeacher *m, const VisionConfig *v, int max_batch,
                      void (*extra)(VitTeacher *m, Carve *c, void *ctx), void *ctx, const char *path) {
    memset(m, 0, sizeof *m);
    m->v = *v, m->max_batch = max_batch;
    m->layers = vlm_calloc((size_t)v->layers, sizeof(ClipLayerWeights));
    Carve c = {0};
    vit_teacher_carve_params(m, &c);
    if (extra) extra(m, &c, ctx);
    m->n_params = c.used;
    m->params = m->layers ? vlm_alloc_aligned(sizeof(float) * c.used) : NULL;
    if (!m->params) return vlm_fail_context(VLM_ERR_FAIL, "%s: %zu floats of weights", path, c.used);
    c = (Carve){.base = m->params};
    vit_teacher_carve_params(m, &c);
    if (extra) extra(m, &c, ctx);
    Carve a = {0};
    carve_acts(m, &a);
    m->acts = vlm_alloc_aligned(sizeof(float) * a.used);
    if (!m->acts) return vlm_fail_context(VLM_ERR_FAIL, "%s: activations for %d images", path, max_batch);
    a = (Carve){.base = m->acts};
    carve_acts(m, &a);
    return VLM_OK;
}

void vit_teacher_free(VitTeacher *m) {
    vlm_free_aligned(m->params);
    vlm_free_aligned(m->acts);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

// Products run image by image (n = 1 calls of the shared layer): OpenBLAS's result for a
// row can depend on how many rows the product has (its small-matrix kernels), so a
// batch of n then gives exactly what n batches of 1 give.
void vit_teacher_embed(VitTeacher *m, int n) {
    const VisionConfig *v = &m->v;
    int NP = vision_patches(v), C = v->hidden, N = n * (NP + 1), K = 3 * v->patch * v->patch;
    patch_im2col(m->cols, m->pixels, n, v->image_size, v->patch);
    for (int b = 0; b < n; b++)
        linear_forward_blocked(m->patches + (size_t)b * NP * C, m->cols + (size_t)b * NP * K, m->patch_w, m->patch_b,
                               NP, K, C);
    if (v->skip_pre_norm) {
        vit_embed_forward(m->x, m->patches, m->cls, m->pos, n, NP, C);
        return;
    }
    vit_embed_forward(m->tmp, m->patches, m->cls, m->pos, n, NP, C);
    layernorm_forward(m->x, m->mean, m->rstd, m->tmp, m->pre_ln_w, m->pre_ln_b, N, C, v->eps);
}

void vit_teacher_layer(VitTeacher *m, int l, int n) {
    size_t TC = (size_t)(vision_patches(&m->v) + 1) * m->v.hidden;
    for (int b = 0; b < n; b++)
        vit_layer_forward(m->x + b * TC, m->x + b * TC, &m->L, m->tmp, m->att_scratch, &m->v, &m->layers[l], 1);
}

const TensorInfo *vit_teacher_info(const Checkpoint *ck, const char *name) {
    int i = checkpoint_find(ck, name);
    return i < 0 ? NULL : ck->tensors[i].info;
}

