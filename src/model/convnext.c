// The ConvNeXt vision tower, see convnext.h. Shapes: N images; stage s has maps of H_s x H_s
// positions (R_s = N H_s^2 rows) of C_s = dims[s] channels, H_s = S / 2^(s+2).
#include "model/convnext.h"

#include <stdio.h>   // fprintf
#include <stdlib.h>  // calloc, free, abort

#include "kernels/activation.h"
#include "kernels/dwconv.h"
#include "kernels/gradients.h"
#include "kernels/layer_scale.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/patch_embed.h"
#include "kernels/space_to_depth.h"
#include "model/convnext_config.h"

#define K CONVNEXT_KERNEL
#define STEM_K (3 * CONVNEXT_STEM * CONVNEXT_STEM)  // the stem's patch: 3 channels of 4 x 4

static int side(const VisionConfig *v, int s) { return v->image_size / (CONVNEXT_STEM << s); }
static size_t rows(const VisionConfig *v, int s, int n) { return (size_t)n * side(v, s) * side(v, s); }
// map index of stage s's input (its blocks' outputs follow)
static int base(const VisionConfig *v, int s) {
    int b = 0;
    for (int t = 0; t < s; t++) b += v->depths[t] + 1;
    return b;
}
static int first_block(const VisionConfig *v, int s) {
    int b = 0;
    for (int t = 0; t < s; t++) b += v->depths[t];
    return b;
}

void convnext_acts_carve(ConvNextActs *a, Carve *c, const VisionConfig *v, int max_images, ConvNextMode mode,
                         size_t chunk_floats) {
    int blocks = convnext_blocks(v), N = max_images;
    a->mode = mode, a->max_images = max_images, a->blocks = blocks;
    size_t map = 0, map4 = 0, maxrows = 0, maxc = 0;
    for (int s = 0; s < CONVNEXT_STAGES; s++) {
        size_t m = rows(v, s, N) * v->dims[s];
        if (m > map) map = m;
        if (rows(v, s, N) > maxrows) maxrows = rows(v, s, N);
        if ((size_t)v->dims[s] > maxc) maxc = (size_t)v->dims[s];
    }
    map4 = 4 * map;
    size_t cols = rows(v, 0, N) * STEM_K;
    a->wt = carve(c, (size_t)K * K * maxc);
    if (mode == CONVNEXT_FROZEN) {
        size_t budget = chunk_floats ? chunk_floats : CONVNEXT_CHUNK_FLOATS, ln = 0, fc1 = 0, crow = 0;
        for (int s = 0; s < CONVNEXT_STAGES; s++) {
            size_t C = (size_t)v->dims[s], r = budget / (6 * C);
            a->chunk_rows[s] = r ? r : 1;  // fixed per stage: the chunks do not depend on the batch
            r = a->chunk_rows[s] < rows(v, s, N) ? a->chunk_rows[s] : rows(v, s, N);
            if (r * C > ln) ln = r * C;
            if (r * 4 * C > fc1) fc1 = r * 4 * C;
            if (r > crow) crow = r;
        }
        a->fx = carve(c, map), a->fd = carve(c, map), a->fp = carve(c, map > cols ? map : cols);
        a->fmean = carve(c, maxrows), a->frstd = carve(c, maxrows);
        a->fln = carve(c, ln), a->ffc1 = carve(c, fc1), a->ffc2 = carve(c, ln);
        a->fcm = carve(c, crow), a->fcr = carve(c, crow);
        return;
    }
    if (c->base && !a->x) {
        a->x = calloc((size_t)blocks + CONVNEXT_STAGES, sizeof(float *));
        a->b = calloc((size_t)blocks + 1, sizeof(ConvNextBlockActs));
        if (!a->x || !a->b) {
            fprintf(stderr, "vlm: out of memory for the ConvNeXt's activation table\n");
            abort();
        }
    }
    a->cols = carve(c, cols);
    a->stem = carve(c, rows(v, 0, N) * v->dims[0]);
    a->stem_mean = carve(c, rows(v, 0, N)), a->stem_rstd = carve(c, rows(v, 0, N));
    for (int s = 0; s < CONVNEXT_STAGES; s++) {
        a->ds_ln[s] = a->ds_mean[s] = a->ds_rstd[s] = a->ds_cols[s] = NULL;
        if (s > 0) {  // over the previous stage's map
            size_t R = rows(v, s - 1, N), C = (size_t)v->dims[s - 1];
            a->ds_ln[s] = carve(c, R * C), a->ds_mean[s] = carve(c, R), a->ds_rstd[s] = carve(c, R);
            a->ds_cols[s] = carve(c, R * C);
        }
        for (int j = 0; j <= v->depths[s]; j++) {
            float *x = carve(c, rows(v, s, N) * v->dims[s]);
            if (c->base) a->x[base(v, s) + j] = x;
        }
    }
    // the blocks' own: each its stage's size, or (RECOMPUTE) one at the largest
    ConvNextBlockActs dummy;
    for (int s = 0, g = 0; s < CONVNEXT_STAGES; s++)
        for (int j = 0; j < v->depths[s]; j++, g++) {
            if (mode == CONVNEXT_RECOMPUTE && g > 0) continue;
            size_t R = mode == CONVNEXT_RECOMPUTE ? map : rows(v, s, N) * v->dims[s];  // R C floats
            size_t r = mode == CONVNEXT_RECOMPUTE ? maxrows : rows(v, s, N);
            ConvNextBlockActs *B = c->base ? &a->b[g] : &dummy;
            B->dw = carve(c, R), B->ln = carve(c, R), B->mean = carve(c, r), B->rstd = carve(c, r);
            B->fc1 = carve(c, 4 * R), B->act = carve(c, 4 * R), B->fc2 = carve(c, R);
        }
    if (mode == CONVNEXT_RECOMPUTE && c->base)
        for (int g = 1; g < blocks; g++) a->b[g] = a->b[0];
    a->dres[0] = carve(c, map), a->dres[1] = carve(c, map);
    a->t1 = carve(c, map), a->t2 = carve(c, map), a->t4 = carve(c, map4);
}

void convnext_acts_free(ConvNextActs *a) {
    free(a->x), free(a->b);
    a->x = NULL, a->b = NULL;
}

// ---- forward

// One block of stage s: in -> out (R, C), its activations in B (the backward calls it again
// when recomputing: the same bytes).
static void block_forward(ConvNextActs *a, const VisionConfig *v, const ConvNextBlockWeights *W, ConvNextBlockActs *B,
                          const float *in, float *out, int n, int s) {
    int H = side(v, s), C = v->dims[s], R = (int)rows(v, s, n);
    dwconv2d_forward(B->dw, in, W->dw_w, W->dw_b, a->wt, n, H, H, C, K);
    layernorm_forward(B->ln, B->mean, B->rstd, B->dw, W->ln_w, W->ln_b, R, C, v->eps);
    linear_forward(B->fc1, B->ln, W->fc1_w, W->fc1_b, R, C, 4 * C);
    gelu_forward(B->act, B->fc1, (size_t)R * 4 * C);
    linear_forward(B->fc2, B->act, W->fc2_w, W->fc2_b, R, 4 * C, C);
    layer_scale_forward(out, in, B->fc2, W->gamma, R, C);
}

// A frozen tower: the map fx updated in place, the MLP over chunks of rows.
static void forward_frozen(ConvNextActs *a, const VisionConfig *v, const ConvNextWeights *w, const float *pixels, int n) {
    int S = v->image_size, R0 = (int)rows(v, 0, n), d0 = v->dims[0];
    patch_im2col(a->fp, pixels, n, S, CONVNEXT_STEM);
    linear_forward(a->fd, a->fp, w->stem_w, w->stem_b, R0, STEM_K, d0);
    layernorm_forward(a->fx, a->fmean, a->frstd, a->fd, w->stem_ln_w, w->stem_ln_b, R0, d0, v->eps);
    for (int s = 0, g = 0; s < CONVNEXT_STAGES; s++) {
        int H = side(v, s), C = v->dims[s], R = (int)rows(v, s, n);
        if (s > 0) {
            int P = v->dims[s - 1], Rp = (int)rows(v, s - 1, n);
            layernorm_forward(a->fd, a->fmean, a->frstd, a->fx, w->ds_ln_w[s], w->ds_ln_b[s], Rp, P, v->eps);
            space_to_depth_forward(a->fp, a->fd, n, 2 * H, 2 * H, P, 2);
            linear_forward(a->fx, a->fp, w->ds_w[s], w->ds_b[s], R, 4 * P, C);
        }
        for (int j = 0; j < v->depths[s]; j++, g++) {
            const ConvNextBlockWeights *W = &w->blk[g];
            dwconv2d_forward(a->fd, a->fx, W->dw_w, W->dw_b, a->wt, n, H, H, C, K);
            for (size_t r0 = 0; r0 < (size_t)R; r0 += a->chunk_rows[s]) {
                int m = (int)((size_t)R - r0 < a->chunk_rows[s] ? (size_t)R - r0 : a->chunk_rows[s]);
                float *x = a->fx + r0 * C;
                layernorm_forward(a->fln, a->fcm, a->fcr, a->fd + r0 * C, W->ln_w, W->ln_b, m, C, v->eps);
                linear_forward(a->ffc1, a->fln, W->fc1_w, W->fc1_b, m, C, 4 * C);
                gelu_forward(a->ffc1, a->ffc1, (size_t)m * 4 * C);
                linear_forward(a->ffc2, a->ffc1, W->fc2_w, W->fc2_b, m, 4 * C, C);
                layer_scale_forward(x, x, a->ffc2, W->gamma, m, C);
            }
        }
    }
}

void convnext_forward(ConvNextActs *a, const VisionConfig *v, const LlavaWeights *w, const float *pixels, int n) {
    const ConvNextWeights *cx = &w->cx;
    if (a->mode == CONVNEXT_FROZEN) {
        forward_frozen(a, v, cx, pixels, n);
        return;
    }
    int S = v->image_size, R0 = (int)rows(v, 0, n), d0 = v->dims[0];
    patch_im2col(a->cols, pixels, n, S, CONVNEXT_STEM);
    linear_forward(a->stem, a->cols, cx->stem_w, cx->stem_b, R0, STEM_K, d0);
    layernorm_forward(a->x[0], a->stem_mean, a->stem_rstd, a->stem, cx->stem_ln_w, cx->stem_ln_b, R0, d0, v->eps);
    for (int s = 0, g = 0; s < CONVNEXT_STAGES; s++) {
        int b0 = base(v, s);
        if (s > 0) {  // LayerNorm2d, then Conv2d 2x2 / 2 as patches + a product
            int P = v->dims[s - 1], Rp = (int)rows(v, s - 1, n), Hp = side(v, s - 1);
            layernorm_forward(a->ds_ln[s], a->ds_mean[s], a->ds_rstd[s], a->x[b0 - 1], cx->ds_ln_w[s], cx->ds_ln_b[s], Rp, P,
                              v->eps);
            space_to_depth_forward(a->ds_cols[s], a->ds_ln[s], n, Hp, Hp, P, 2);
            linear_forward(a->x[b0], a->ds_cols[s], cx->ds_w[s], cx->ds_b[s], (int)rows(v, s, n), 4 * P, v->dims[s]);
        }
        for (int j = 0; j < v->depths[s]; j++, g++)
            block_forward(a, v, &cx->blk[g], &a->b[g], a->x[b0 + j], a->x[b0 + j + 1], n, s);
    }
    a->top_fresh = true;
}

// ---- backward

// d (R, C): the gradient of block g's output, in place -> that of its input (the shortcut's
// plus the branch's, which dwconv2d_backward adds).
static void block_backward(ConvNextActs *a, const VisionConfig *v, const ConvNextBlockWeights *W, ConvNextBlockWeights *G,
                           const ConvNextBlockActs *B, const float *in, float *d, int n, int s) {
    int H = side(v, s), C = v->dims[s], R = (int)rows(v, s, n);
    layer_scale_backward(a->t1, G->gamma, d, B->fc2, W->gamma, R, C);               // t1 = d fc2
    linear_backward(a->t4, G->fc2_w, G->fc2_b, a->t1, B->act, W->fc2_w, R, 4 * C, C);  // t4 = d act
    gelu_backward(a->t4, a->t4, B->fc1, (size_t)R * 4 * C);                         // t4 = d fc1
    linear_backward(a->t1, G->fc1_w, G->fc1_b, a->t4, B->ln, W->fc1_w, R, C, 4 * C);  // t1 = d ln
    vlm_zero(a->t2, (size_t)R * C);  // the norm has no skip connection of its own
    layernorm_backward(a->t2, G->ln_w, G->ln_b, a->t1, B->dw, W->ln_w, B->mean, B->rstd, R, C);  // t2 = d dw
    dwconv2d_backward(d, G->dw_w, G->dw_b, a->t2, in, W->dw_w, a->wt, n, H, H, C, K);
}

void convnext_backward(ConvNextActs *a, const VisionConfig *v, const LlavaWeights *w, LlavaWeights *g, float *dx, int n) {
    if (a->mode == CONVNEXT_FROZEN) {
        fprintf(stderr, "vlm: internal error: a ConvNeXt planned frozen keeps no activations to back-propagate\n");
        abort();
    }
    const ConvNextWeights *W = &w->cx;
    ConvNextWeights *G = &g->cx;
    float *d = dx;
    int which = 0;
    for (int s = CONVNEXT_STAGES - 1; s >= 0; s--) {
        int b0 = base(v, s), g0 = first_block(v, s);
        for (int j = v->depths[s] - 1; j >= 0; j--) {
            int gi = g0 + j;
            // refills the shared activations; the last block's are still there after the forward
            if (a->mode == CONVNEXT_RECOMPUTE && !(gi == a->blocks - 1 && a->top_fresh))
                block_forward(a, v, &W->blk[gi], &a->b[gi], a->x[b0 + j], a->x[b0 + j + 1], n, s);
            a->top_fresh = false;
            block_backward(a, v, &W->blk[gi], &G->blk[gi], &a->b[gi], a->x[b0 + j], d, n, s);
        }
        if (s == 0) break;
        // the downsample: Conv2d 2x2 / 2 over the LayerNorm of the previous stage's output
        int P = v->dims[s - 1], Rp = (int)rows(v, s - 1, n), Hp = side(v, s - 1);
        linear_backward(a->t1, G->ds_w[s], G->ds_b[s], d, a->ds_cols[s], W->ds_w[s], (int)rows(v, s, n), 4 * P, v->dims[s]);
        space_to_depth_backward(a->t2, a->t1, n, Hp, Hp, P, 2);
        float *dn = a->dres[which];
        which ^= 1;
        vlm_zero(dn, (size_t)Rp * P);  // no skip connection around the downsample
        layernorm_backward(dn, G->ds_ln_w[s], G->ds_ln_b[s], a->t2, a->x[b0 - 1], W->ds_ln_w[s], a->ds_mean[s],
                           a->ds_rstd[s], Rp, P);
        d = dn;
    }
    // the stem: LayerNorm2d over the conv's output, the conv as a product over the patches
    int R0 = (int)rows(v, 0, n), d0 = v->dims[0];
    vlm_zero(a->t1, (size_t)R0 * d0);
    layernorm_backward(a->t1, G->stem_ln_w, G->stem_ln_b, d, a->stem, W->stem_ln_w, a->stem_mean, a->stem_rstd, R0, d0);
    linear_backward(NULL, G->stem_w, G->stem_b, a->t1, a->cols, W->stem_w, R0, STEM_K, d0);
}
