// Linear layers on OpenBLAS sgemm, see linear.h.
#include "kernels/linear.h"

#include <cblas.h>   // cblas_sgemm
#include <omp.h>     // omp_get_max_threads
#include <stddef.h>  // size_t
#include <stdlib.h>  // aligned_alloc

#define COLS 16  // columns per task of the bias gradient

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC);
    if (!bias) return;
#pragma omp parallel for
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) out[(long)n * OC + o] += bias[o];
}

void linear_forward_blocked(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                            int OC) {
    for (int k0 = 0; k0 < C; k0 += LINEAR_K_BLOCK) {
        int k = C - k0 < LINEAR_K_BLOCK ? C - k0 : LINEAR_K_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, k, 1.0f, inp + k0, C, weight + k0, C,
                    k0 ? 1.0f : 0.0f, out, OC);
    }
    if (!bias) return;
#pragma omp parallel for
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) out[(long)n * OC + o] += bias[o];
}

// The weight gradient's block: LINEAR_DW_SCRATCH floats of the process, allocated once at the
// first backward (the backward runs on one thread; its products are threaded inside).
static float *dw_scratch(void) {
    static float *scratch;
    if (!scratch) scratch = aligned_alloc(64, sizeof(float) * LINEAR_DW_SCRATCH);
    return scratch;
}

// beta 0: dinp written, 1: accumulated
static void backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight,
                     int N, int C, int OC, float beta) {
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C, beta, dinp, C);
    // the weight gradient in blocks of output rows (threaded OpenBLAS packs the whole left operand,
    // here dout^T, OC rows: for the LM head the vocabulary x 320 floats), each block formed in
    // full in the scratch and then added to dweight (gradients.h: so micro-batches accumulate
    // as ranks sum; with beta 1 OpenBLAS would add it in pieces of its reduction blocks)
    float *scratch = dweight ? dw_scratch() : NULL;
    int rows = C < LINEAR_DW_SCRATCH ? LINEAR_DW_SCRATCH / C : 1;
    if (rows > LINEAR_DW_ROWS) rows = LINEAR_DW_ROWS;
    for (int o0 = 0; dweight && o0 < OC; o0 += rows) {
        int m = OC - o0 < rows ? OC - o0 : rows;
        float *dw = dweight + (size_t)o0 * C;
        if (!scratch) {  // no memory for the block: added in OpenBLAS's pieces (the same sum, rounded otherwise)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, C, N, 1.0f, dout + o0, OC, inp, C, 1.0f, dw, C);
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, C, N, 1.0f, dout + o0, OC, inp, C, 0.0f, scratch, C);
        size_t n = (size_t)m * C;
#pragma omp parallel for if (n > 65536)
        for (size_t i = 0; i < n; i++) dw[i] += scratch[i];
    }
    if (dbias) {
        // sums over rows in row order, COLS columns at a time (reads along rows; the same sums for any number of threads)
#pragma omp parallel for
        for (int o0 = 0; o0 < OC; o0 += COLS) {
            int m = OC - o0 < COLS ? OC - o0 : COLS;
            float s[COLS] = {0};
            for (int n = 0; n < N; n++)
                for (int j = 0; j < m; j++) s[j] += dout[(long)n * OC + o0 + j];
            for (int j = 0; j < m; j++) dbias[o0 + j] += s[j];
        }
    }
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC) {
    backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 0.0f);
}

void linear_backward_acc(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int N, int C, int OC) {
    backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 1.0f);
}

size_t linear_workspace_bytes(size_t max_rows) {
    size_t packing = omp_get_max_threads() > 1 ? max_rows * 512 * sizeof(float) : (size_t)4 << 20;
    return packing + sizeof(float) * LINEAR_DW_SCRATCH;
}
