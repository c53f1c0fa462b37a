// Patch embedding, see patch_embed.h.
#include "kernels/patch_embed.h"

#include <stddef.h>  // NULL, size_t
#include <string.h>  // memcpy

#include "kernels/linear.h"

void patch_im2col(float *cols, const float *pixels, int B, int S, int P) {
    int G = S / P, NP = G * G, K = 3 * P * P;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int p = 0; p < NP; p++) {
            int gy = p / G, gx = p % G;
            float *col = cols + ((long)b * NP + p) * K;
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < P; ky++)
                    for (int kx = 0; kx < P; kx++)
                        *col++ = pixels[(((long)b * 3 + c) * S + gy * P + ky) * S + gx * P + kx];
        }
}

void patch_embed_forward(float *out, const float *cols, const float *weight, int B, int NP, int P, int C) {
    linear_forward(out, cols, weight, NULL, B * NP, 3 * P * P, C);
}

void patch_embed_backward(float *dweight, const float *dout, const float *cols, int B, int NP, int P, int C) {
    linear_backward(NULL, dweight, NULL, dout, cols, NULL, B * NP, 3 * P * P, C);
}

void vit_embed_forward(float *emb, const float *patches, const float *cls, const float *pos, int B, int NP, int C) {
    int T = NP + 1;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *e = emb + ((size_t)b * T + t) * C;
            const float *src = t == 0 ? cls : patches + ((size_t)b * NP + t - 1) * C, *p = pos + (size_t)t * C;
            for (int i = 0; i < C; i++) e[i] = src[i] + p[i];
        }
}

void vit_embed_backward(float *dpatches, float *dcls, float *dpos, const float *demb, int B, int NP, int C) {
    int T = NP + 1;
    if (dpatches)
#pragma omp parallel for
        for (int b = 0; b < B; b++)
            memcpy(dpatches + (size_t)b * NP * C, demb + ((size_t)b * T + 1) * C, sizeof(float) * (size_t)NP * C);
    // each position sums its images in order (the same for any thread count), then adds the sum
    // to the parameter's gradient once (gradients.h)
#pragma omp parallel for
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) {
            float s = 0.0f;
            for (int b = 0; b < B; b++) s += demb[((size_t)b * T + t) * C + i];
            if (dpos) dpos[(size_t)t * C + i] += s;
            if (t == 0 && dcls) dcls[i] += s;
        }
}
