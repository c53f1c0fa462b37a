// OLA-VLM's CLIP-ConvNeXt vision tower: timm 1.0.8's ConvNeXt trunk of an open_clip CLIP, as
// upstream's CLIPConvNextVisionTower._forward runs it: stem (Conv2d 4x4 / 4 + LayerNorm2d) ->
// 4 stages (stage s > 0 opens with LayerNorm2d + Conv2d 2x2 / 2; blocks: depthwise 7x7 conv ->
// LayerNorm -> fc1 (4C) -> GELU (erf) -> fc2 -> layer scale gamma -> + shortcut) -> norm_pre
// (Identity) -> flatten(2, 3).permute(0, 2, 1): pixels (N, 3, S, S) -> (N, (S/32)^2, d3) rows,
// h then w. Every map is held channels-last, (N, H, W, C), so the LayerNorms are the layernorm
// kernel over rows and the output needs no permute. No stochastic depth: upstream's inference
// (its training runs the frozen tower in train mode, where timm's DropPath drops and rescales
// branches at random; not reproduced).
//
// Memory, per image at S px with R_s = (S / 2^(s+2))^2 positions of C_s channels in stage s
// (xxlarge at 768: R = 36864, 9216, 2304, 576; C = 384, 768, 1536, 3072; 4-byte floats; the
// totals are this file's carve at max_images 1):
//   CONVNEXT_TRAIN: every block keeps its input and dw, ln, fc1, act, fc2 (12 C_s R_s + 2 R_s
//     floats), plus the backward's scratch (8 maps of the largest size, 0.45 GB): 9.6 GB;
//   CONVNEXT_RECOMPUTE (--gradient_checkpointing): each block's input map alone (C_s R_s), one
//     block's activations shared at the largest stage's size and refilled by the backward,
//     the same scratch: 2.2 GB;
//   CONVNEXT_FROZEN (the tower never back-propagated, OLA-VLM's case): the map updated in place
//     block by block, two more maps of the largest size, and the MLP run over chunks of rows
//     of at most chunk_floats: 0.24 GB. Chunked, its products run over fewer rows than TRAIN's,
//     which OpenBLAS may round otherwise (the features agree within 1e-6 of their norm; the
//     chunks are fixed per stage, so a batch gives the same bits whatever the plan).
#ifndef VLM_MODEL_CONVNEXT_H
#define VLM_MODEL_CONVNEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "model/carve.h"
#include "model/weights.h"

typedef enum { CONVNEXT_TRAIN, CONVNEXT_RECOMPUTE, CONVNEXT_FROZEN } ConvNextMode;
#define CONVNEXT_CHUNK_FLOATS ((size_t)1 << 24)  // FROZEN: the MLP's rows per chunk hold at most this much

typedef struct {
    float *dw, *ln, *mean, *rstd, *fc1, *act, *fc2;  // (R, C) conv_dw, norm + its rows' statistics, (R, 4C) fc1, GELU, (R, C) fc2
} ConvNextBlockActs;

typedef struct {
    ConvNextMode mode;
    int max_images, blocks;
    bool top_fresh;                   // RECOMPUTE: the shared block activations are the last block's since the forward
    size_t chunk_rows[CONVNEXT_STAGES];  // FROZEN: rows of each stage's MLP chunks
    float *wt;                        // conv_dw's weights transposed (kernels/dwconv.h)
    // TRAIN / RECOMPUTE
    float *cols, *stem, *stem_mean, *stem_rstd;  // the stem's 4x4 patches (N, (S/4)^2, 48), its conv output, LayerNorm statistics
    float *ds_ln[CONVNEXT_STAGES], *ds_mean[CONVNEXT_STAGES], *ds_rstd[CONVNEXT_STAGES], *ds_cols[CONVNEXT_STAGES];
                                      // stage s > 0's downsample: LayerNorm of the previous map, its statistics, 2x2 patches
    float **x;                        // blocks + 4 maps: each stage's input, then its blocks' outputs
    ConvNextBlockActs *b;             // per block (RECOMPUTE: one, shared)
    float *dres[2], *t1, *t2, *t4;    // the backward's: the stream's gradient across a downsample, scratch
    // FROZEN: the map (in place), two map-size scratch buffers, the rows' statistics, one chunk's ln / fc1 / fc2
    float *fx, *fd, *fp, *fmean, *frstd, *fln, *ffc1, *ffc2, *fcm, *fcr;
} ConvNextActs;

// Lays out the activations for up to max_images images on c (call twice, see carve.h);
// chunk_floats 0: CONVNEXT_CHUNK_FLOATS. Free the arrays with convnext_acts_free.
void convnext_acts_carve(ConvNextActs *a, Carve *c, const VisionConfig *v, int max_images, ConvNextMode mode,
                         size_t chunk_floats);
void convnext_acts_free(ConvNextActs *a);
// The tower's output (N, (S/32)^2, d3).
static inline const float *convnext_output(const ConvNextActs *a) {
    return a->mode == CONVNEXT_FROZEN ? a->fx : a->x[a->blocks + CONVNEXT_STAGES - 1];
}
// pixels (N, 3, S, S) -> convnext_output
void convnext_forward(ConvNextActs *a, const VisionConfig *v, const LlavaWeights *w, const float *pixels, int n);
// dx (N, (S/32)^2, d3): the gradient of convnext_output, used in place as the residual stream's
// gradient; the weight gradients accumulate into g (pixels get none). Not in FROZEN mode.
void convnext_backward(ConvNextActs *a, const VisionConfig *v, const LlavaWeights *w, LlavaWeights *g, float *dx, int n);

#endif
