// Patch embedding, see patch_embed.h.
#include "kernels/patch_embed.h"

#include <stddef.h>  // NULL

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
