// CLIP vision tower, see clip.h. Shapes: N images, T = NP + 1 tokens, C wide,
// NH heads of HS, I the MLP width.
#include "model/clip.h"

#include <stdlib.h>  // calloc

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/gradients.h"
#include "kernels/layer_scale.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/residual.h"
#include "kernels/patch_embed.h"

void vit_layer_acts_carve(ClipLayerActs *L, Carve *c, const VisionConfig *v, int max_images) {
    size_t T = (size_t)vision_patches(v) + 1, C = v->hidden, I = v->intermediate, N = (size_t)max_images * T;
    L->ln1 = carve(c, N * C), L->ln1_mean = carve(c, N), L->ln1_rstd = carve(c, N);
    L->qkv = carve(c, N * 3 * C);
    L->lse = carve(c, attention_state_floats(max_images, v->heads, (int)T));
    L->ao = carve(c, N * C), L->mid = carve(c, N * C);
    L->ln2 = carve(c, N * C), L->ln2_mean = carve(c, N), L->ln2_rstd = carve(c, N);
    L->fc1 = carve(c, N * I), L->act = carve(c, N * I);
}

void clip_acts_carve(ClipActs *a, Carve *c, const VisionConfig *v, int layers, int max_images, bool recompute) {
    size_t NP = (size_t)vision_patches(v), T = NP + 1, C = v->hidden, I = v->intermediate, N = (size_t)max_images * T;
    size_t P = (size_t)v->patch;
    a->max_images = max_images;
    a->layers = layers, a->recompute = recompute;
    if (c->base && !a->x) {
        a->x = calloc((size_t)layers + 1, sizeof(float *));
        a->l = calloc((size_t)layers + 1, sizeof(ClipLayerActs));
    }
    ClipLayerActs dummy_l;
    a->cols = carve(c, max_images * NP * 3 * P * P);
    a->patches = carve(c, max_images * NP * C);
    a->emb = carve(c, N * C);
    a->pre_mean = carve(c, N);
    a->pre_rstd = carve(c, N);
    for (int l = 0; l <= layers; l++) {
        float *x = carve(c, N * C);
        if (c->base) a->x[l] = x;
    }
    // recomputing: one layer's activations, shared by every layer (the backward refills them)
    for (int l = 0; l < (recompute ? 1 : layers); l++)
        vit_layer_acts_carve(c->base ? &a->l[l] : &dummy_l, c, v, max_images);
    if (recompute && c->base)
        for (int l = 1; l < layers; l++) a->l[l] = a->l[0];
    a->post = a->post_mean = a->post_rstd = a->dres = NULL;
    if (v->post_norm) a->post = carve(c, N * C), a->post_mean = carve(c, N), a->post_rstd = carve(c, N), a->dres = carve(c, N * C);
    a->tmp = carve(c, N * C);
    a->dqkv = carve(c, N * 3 * C);
    a->dfc = carve(c, N * I), a->dact = carve(c, N * I), a->att_scratch = carve(c, attention_scratch_floats((int)T));
}

void vit_layer_forward(float *x_out, const float *x_in, ClipLayerActs *L, float *tmp, float *att_scratch,
                       const VisionConfig *v, const ClipLayerWeights *W, int n) {
    int T = vision_patches(v) + 1, C = v->hidden, I = v->intermediate, NH = v->heads, HS = C / NH, N = n * T;
    layernorm_forward(L->ln1, L->ln1_mean, L->ln1_rstd, x_in, W->ln1_w, W->ln1_b, N, C, v->eps);
    const float *q = L->qkv, *k = q + C, *vv = q + 2 * C;
    linear_forward(L->qkv, L->ln1, W->qkv_w, W->qkv_b, N, C, 3 * C);
    attention_forward(L->ao, L->lse, q, k, vv, 3 * C, NULL, n, T, NH, NH, HS, 0, att_scratch);
    linear_forward(tmp, L->ao, W->o_w, W->o_b, N, C, C);
    // x_in is read for the last time here: x_out may be x_in
    if (v->layer_scale) layer_scale_forward(L->mid, x_in, tmp, W->ls1, N, C);
    else residual_forward(L->mid, x_in, tmp, (size_t)N * C);
    layernorm_forward(L->ln2, L->ln2_mean, L->ln2_rstd, L->mid, W->ln2_w, W->ln2_b, N, C, v->eps);
    linear_forward(L->fc1, L->ln2, W->fc1_w, W->fc1_b, N, C, I);
    if (v->gelu) gelu_forward(L->act, L->fc1, (size_t)N * I);
    else quick_gelu_forward(L->act, L->fc1, (size_t)N * I);
    linear_forward(tmp, L->act, W->fc2_w, W->fc2_b, N, I, C);
    if (v->layer_scale) layer_scale_forward(x_out, L->mid, tmp, W->ls2, N, C);
    else residual_forward(x_out, L->mid, tmp, (size_t)N * C);
}

// Layer l: a->x[l] -> a->x[l + 1], its activations in a->l[l] (the backward
// calls it again when recomputing: the same bytes).
static void layer_forward(ClipActs *a, const VisionConfig *v, const ClipLayerWeights *W, int l, int n) {
    vit_layer_forward(a->x[l + 1], a->x[l], &a->l[l], a->tmp, a->att_scratch, v, W, n);
}

void clip_forward(ClipActs *a, const VisionConfig *v, const LlavaWeights *w, const float *pixels, int n) {
    int NP = vision_patches(v), C = v->hidden, N = n * (NP + 1);
    // embeddings: [class; patches] + positions, then pre_layrnorm
    patch_im2col(a->cols, pixels, n, v->image_size, v->patch);
    patch_embed_forward(a->patches, a->cols, w->patch_w, n, NP, v->patch, C);
    vit_embed_forward(a->emb, a->patches, w->cls, w->pos, n, NP, C);
    layernorm_forward(a->x[0], a->pre_mean, a->pre_rstd, a->emb, w->pre_ln_w, w->pre_ln_b, N, C, v->eps);
    for (int l = 0; l < a->layers; l++) {
        param_hook(a->hooks, HOOK_FETCH, MODULE_VISION, l);
        layer_forward(a, v, &w->vl[l], l, n);
        param_hook(a->hooks, HOOK_RELEASE, MODULE_VISION, l);
    }
    if (a->post)
        layernorm_forward(a->post, a->post_mean, a->post_rstd, a->x[a->layers], w->post_ln_w, w->post_ln_b, N, C, v->eps);
    a->top_fresh = true;
}

void clip_backward(ClipActs *a, const VisionConfig *v, const LlavaWeights *w, LlavaWeights *g, float *dx, int n) {
    int NP = vision_patches(v), T = NP + 1, C = v->hidden, I = v->intermediate, NH = v->heads, HS = C / NH;
    int N = n * T;
    if (a->post) {  // post_layernorm has no skip connection: the residual stream's gradient starts at zero
        vlm_zero(a->dres, (size_t)N * C);
        layernorm_backward(a->dres, g->post_ln_w, g->post_ln_b, dx, a->x[a->layers], w->post_ln_w, a->post_mean,
                           a->post_rstd, N, C);
        dx = a->dres;
    }
    for (int l = a->layers - 1; l >= 0; l--) {
        const ClipLayerWeights *W = &w->vl[l];
        ClipLayerWeights *G = &g->vl[l];
        ClipLayerActs *L = &a->l[l];
        param_hook(a->hooks, HOOK_FETCH, MODULE_VISION, l);
        // refills the shared activations; the top layer's are still there after its forward
        if (a->recompute && !(l == a->layers - 1 && a->top_fresh)) layer_forward(a, v, W, l, n);
        a->top_fresh = false;
        // MLP: x[l+1] = mid + fc2(act(fc1(ln2(mid)))); dx becomes d mid
        linear_backward(a->dact, G->fc2_w, G->fc2_b, dx, L->act, W->fc2_w, N, I, C);
        if (v->gelu) gelu_backward(a->dfc, a->dact, L->fc1, (size_t)N * I);
        else quick_gelu_backward(a->dfc, a->dact, L->fc1, (size_t)N * I);
        linear_backward(a->tmp, G->fc1_w, G->fc1_b, a->dfc, L->ln2, W->fc1_w, N, C, I);
        layernorm_backward(dx, G->ln2_w, G->ln2_b, a->tmp, L->mid, W->ln2_w, L->ln2_mean, L->ln2_rstd, N, C);
        // attention: mid = x[l] + out_proj(attn(q, k, v of ln1(x[l]))); dx becomes d x[l]
        linear_backward(a->tmp, G->o_w, G->o_b, dx, L->ao, W->o_w, N, C, C);
        const float *q = L->qkv, *k = q + C, *vv = q + 2 * C;
        attention_backward(a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->tmp, L->ao, L->lse, q, k, vv, 3 * C, NULL, n, T, NH,
                           NH, HS, 0, a->att_scratch);
        linear_backward(a->tmp, G->qkv_w, G->qkv_b, a->dqkv, L->ln1, W->qkv_w, N, C, 3 * C);
        layernorm_backward(dx, G->ln1_w, G->ln1_b, a->tmp, a->x[l], W->ln1_w, L->ln1_mean, L->ln1_rstd, N, C);
        param_hook(a->hooks, HOOK_GRADS, MODULE_VISION, l);
        param_hook(a->hooks, HOOK_RELEASE, MODULE_VISION, l);
    }
    // pre_layrnorm (no skip connection: a zeroed gradient), positions, class token, patch embedding
    vlm_zero(a->tmp, (size_t)N * C);
    layernorm_backward(a->tmp, g->pre_ln_w, g->pre_ln_b, dx, a->emb, w->pre_ln_w, a->pre_mean, a->pre_rstd, N, C);
    // the patch rows, packed (N, NP, C), feed the conv weight's gradient
    vit_embed_backward(a->dqkv, g->cls, g->pos, a->tmp, n, NP, C);  // dqkv: scratch of (N, NP, C) here
    patch_embed_backward(g->patch_w, a->dqkv, a->cols, n, NP, v->patch, C);
}

void clip_walk_hooks(const ClipActs *a, bool backward) {
    for (int k = 0; k < a->layers; k++) {
        int l = backward ? a->layers - 1 - k : k;
        param_hook(a->hooks, HOOK_FETCH, MODULE_VISION, l);
        if (backward) param_hook(a->hooks, HOOK_GRADS, MODULE_VISION, l);
        param_hook(a->hooks, HOOK_RELEASE, MODULE_VISION, l);
    }
}
