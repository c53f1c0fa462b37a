// The CLIP vision tower (pre-LN ViT with class token and learned positions),
// forward and backward over a batch of images, up to the layer whose hidden
// state LLaVA selects (later layers never run). Its layer, vit_layer_forward,
// also serves mPLUG-Owl2's ViT and OLA-VLM's ViT teachers (model/teacher_*.c:
// DINOv2's LayerScale, erf GELU; VisionConfig says which).
#ifndef VLM_MODEL_CLIP_H
#define VLM_MODEL_CLIP_H

#include <stdbool.h>

#include "model/carve.h"
#include "model/param_hooks.h"
#include "model/weights.h"

typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd;
    float *qkv;                    // (N, T, 3C): each row q, k, v
    float *lse, *ao, *mid, *ln2, *ln2_mean, *ln2_rstd, *fc1, *act;
} ClipLayerActs;

typedef struct {
    int max_images, layers;        // layers run
    bool recompute;                // layers share one ClipLayerActs, refilled by the backward
    bool top_fresh;                // they hold the top layer's since the last forward
    float *cols, *patches, *emb, *pre_mean, *pre_rstd;
    float **x;                     // layers + 1 residual states (N, T, C); x[0] is pre_layrnorm's output
    ClipLayerActs *l;
    float *post, *post_mean, *post_rstd;  // post_layernorm of x[layers] (VisionConfig.post_norm), NULL: none
    float *dres;                   // (N, T, C) the residual stream's gradient under post_layernorm
    float *tmp;                    // (N, T, C) a branch's output before its residual add, or its input's gradient
    float *dqkv, *dfc, *dact;      // backward scratch
    float *att_scratch;            // attention's forward and backward scratch
    const ParamHooks *hooks;       // each layer's parameter events (model/param_hooks.h); NULL: none
} ClipActs;

// One pre-LN ViT layer over n images of T = vision_patches + 1 tokens:
//   mid   = x_in + ls1 * out_proj(attention(qkv(ln1(x_in))))
//   x_out = mid  + ls2 * fc2(act(fc1(ln2(mid))))
// act quick_gelu, or erf GELU (v->gelu); ls1 / ls2 only with v->layer_scale. x_in, x_out
// (n, T, C); x_out may be x_in. L receives what the backward reads (one layer's
// activations); tmp (n, T, C) and att_scratch (attention_scratch_floats(T)) are scratch.
void vit_layer_forward(float *x_out, const float *x_in, ClipLayerActs *L, float *tmp, float *att_scratch,
                       const VisionConfig *v, const ClipLayerWeights *W, int n);
// One layer's activations for up to max_images images on c (carve.h).
void vit_layer_acts_carve(ClipLayerActs *L, Carve *c, const VisionConfig *v, int max_images);

// Lays out the activations for up to max_images images on c (call twice, see carve.h).
// recompute: only the residual states x are kept per layer (see llama.h).
void clip_acts_carve(ClipActs *a, Carve *c, const VisionConfig *v, int layers, int max_images, bool recompute);
// The layers' parameter events of a forward (or a backward) without computing: a batch
// without images walks them as one with images does (param_hooks.h).
void clip_walk_hooks(const ClipActs *a, bool backward);
// The tower's output (N, NP+1, C): x[layers], or its post_layernorm (post_norm).
static inline const float *clip_output(const ClipActs *a) { return a->post ? a->post : a->x[a->layers]; }
// pixels (N,3,S,S) -> clip_output (N, NP+1, C)
void clip_forward(ClipActs *a, const VisionConfig *v, const LlavaWeights *w, const float *pixels, int n);
// (The patch convolution has no bias and pre_layrnorm runs: v->patch_bias and
// v->skip_pre_norm are the teachers', which embed on their own.)
// dx (N, NP+1, C): the gradient of clip_output, used in place as the residual
// stream's gradient (it ends as d x[0]; with post_norm, a->dres is); weight
// gradients accumulate into g. Not for v->layer_scale (the teachers are inference only).
void clip_backward(ClipActs *a, const VisionConfig *v, const LlavaWeights *w, LlavaWeights *g, float *dx, int n);

#endif
