// Normalisation layers, see norm.h.
#include "kernels/norm.h"

#include <math.h>    // sqrtf
#include <stdlib.h>  // NULL

#define COLS 16  // columns per task of the parameter-gradient sums

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                       int N, int C, float eps) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (long)n * C;
        float m = 0.0f, v = 0.0f;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= C;  // biased, as PyTorch
        float s = 1.0f / sqrtf(v + eps);
        float *o = out + (long)n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * weight[i] + (bias ? bias[i] : 0.0f);
        mean[n] = m;
        rstd[n] = s;
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C) {
    // parameter gradients: sums over rows, in row order, COLS columns at a time
    // (reads along rows; each column's sum is the same for any number of threads)
    if (dweight || dbias) {
#pragma omp parallel for
        for (int i0 = 0; i0 < C; i0 += COLS) {
            int m = C - i0 < COLS ? C - i0 : COLS;
            float gw[COLS] = {0}, gb[COLS] = {0};
            for (int n = 0; n < N; n++) {
                const float *d = dout + (long)n * C + i0, *x = inp + (long)n * C + i0;
                for (int j = 0; j < m; j++) {
                    gw[j] += d[j] * (x[j] - mean[n]) * rstd[n];
                    gb[j] += d[j];
                }
            }
            for (int j = 0; j < m; j++) {
                if (dweight) dweight[i0 + j] += gw[j];
                if (dbias) dbias[i0 + j] += gb[j];
            }
        }
    }
    if (!dinp) return;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *d = dout + (long)n * C, *x = inp + (long)n * C;
        float m = mean[n], s = rstd[n], dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (int i = 0; i < C; i++) {
            float dnorm = d[i] * weight[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * (x[i] - m) * s;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        float *dx = dinp + (long)n * C;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = d[i] * weight[i];
            dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, const uint8_t *which, int N, int C,
                     float eps) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (long)n * C, *w = weight + (which ? (long)which[n] * C : 0);
        float ss = 0.0f;
        for (int i = 0; i < C; i++) ss += x[i] * x[i];
        float s = 1.0f / sqrtf(ss / C + eps);
        float *o = out + (long)n * C;
        for (int i = 0; i < C; i++) o[i] = w[i] * (x[i] * s);
        rstd[n] = s;
    }
}

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const uint8_t *which, const float *rstd, int N, int C) {
    if (dweight) {
#pragma omp parallel for
        for (int i0 = 0; i0 < C; i0 += COLS) {  // as layernorm_backward's, one sum per weight row
            int m = C - i0 < COLS ? C - i0 : COLS;
            float g[NORM_MAX_ROWS][COLS] = {{0}};
            for (int n = 0; n < N; n++) {
                const float *d = dout + (long)n * C + i0, *x = inp + (long)n * C + i0;
                float *gr = g[which ? which[n] : 0];
                for (int j = 0; j < m; j++) gr[j] += d[j] * x[j] * rstd[n];
            }
            for (int r = 0; r < (which ? NORM_MAX_ROWS : 1); r++)
                for (int j = 0; j < m; j++) dweight[(long)r * C + i0 + j] += g[r][j];
        }
    }
    if (!dinp) return;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *d = dout + (long)n * C, *x = inp + (long)n * C, *weight_n = weight + (which ? (long)which[n] * C : 0);
        float s = rstd[n], dot = 0.0f;
        for (int i = 0; i < C; i++) dot += d[i] * weight_n[i] * x[i];
        dot /= C;
        float *dx = dinp + (long)n * C;
        for (int i = 0; i < C; i++) dx[i] += s * (d[i] * weight_n[i]) - x[i] * s * s * s * dot;
    }
}
