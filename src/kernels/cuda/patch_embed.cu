// Patch embedding on the GPU, see patch_embed.h: im2col one thread per
// element, the product on linear.cu, the ViT's input rows element-wise (their
// gradient sums over the images in patch_embed.c's order: its bits).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/linear.h"
#include "kernels/patch_embed.h"
}

__global__ static void im2col(float *cols, const float *pixels, int B, int S, int P) {
    int G = S / P, NP = G * G, K = 3 * P * P;
    GRID_STRIDE(e, (size_t)B * NP * K) {
        int k = (int)(e % K), p = (int)(e / K % NP), b = (int)(e / ((size_t)K * NP));
        int c = k / (P * P), ky = k / P % P, kx = k % P, gy = p / G, gx = p % G;
        cols[e] = pixels[(((size_t)b * 3 + c) * S + gy * P + ky) * S + gx * P + kx];
    }
}

void patch_im2col(float *cols, const float *pixels, int B, int S, int P) {
    int G = S / P;
    LAUNCH(im2col, (size_t)B * G * G * 3 * P * P, cols, pixels, B, S, P);
}

void patch_embed_forward(float *out, const float *cols, const float *weight, int B, int NP, int P, int C) {
    linear_forward(out, cols, weight, NULL, B * NP, 3 * P * P, C);
}

void patch_embed_backward(float *dweight, const float *dout, const float *cols, int B, int NP, int P, int C) {
    linear_backward(NULL, dweight, NULL, dout, cols, NULL, B * NP, 3 * P * P, C);
}

__global__ static void vit_embed_fwd(float *emb, const float *patches, const float *cls, const float *pos, int B, int NP,
                                     int C) {
    int T = NP + 1;
    GRID_STRIDE(e, (size_t)B * T * C) {
        size_t i = e % C, t = e / C % T, b = e / ((size_t)C * T);
        float src = t == 0 ? cls[i] : patches[(b * NP + t - 1) * C + i];
        emb[e] = src + pos[t * C + i];
    }
}

void vit_embed_forward(float *emb, const float *patches, const float *cls, const float *pos, int B, int NP, int C) {
    LAUNCH(vit_embed_fwd, (size_t)B * (NP + 1) * C, emb, patches, cls, pos, B, NP, C);
}

__global__ static void vit_embed_bwd_patches(float *dpatches, const float *demb, int B, int NP, int C) {
    GRID_STRIDE(e, (size_t)B * NP * C) {
        size_t b = e / ((size_t)NP * C), r = e % ((size_t)NP * C);
        dpatches[e] = demb[(b * (NP + 1) + 1) * C + r];
    }
}
// each (position, column) sums its images in order, then adds the sum once
__global__ static void vit_embed_bwd_pos(float *dcls, float *dpos, const float *demb, int B, int NP, int C) {
    int T = NP + 1;
    GRID_STRIDE(e, (size_t)T * C) {
        float s = 0.0f;
        for (int b = 0; b < B; b++) s += demb[(size_t)b * T * C + e];
        if (dpos) dpos[e] += s;
        if (e < (size_t)C && dcls) dcls[e] += s;
    }
}

void vit_embed_backward(float *dpatches, float *dcls, float *dpos, const float *demb, int B, int NP, int C) {
    if (dpatches) LAUNCH(vit_embed_bwd_patches, (size_t)B * NP * C, dpatches, demb, B, NP, C);
    if (dcls || dpos) LAUNCH(vit_embed_bwd_pos, (size_t)(NP + 1) * C, dcls, dpos, demb, B, NP, C);
}
