// Linear layers on cuBLAS, see linear.h: fp32 products (CUBLAS_COMPUTE_32F,
// no TF32), the bias added after the product as linear.c does, the weight
// gradient formed in full in a block of scratch and then added (gradients.h),
// the bias gradient as two-pass column sums (a fixed order).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/linear.h"
}

__global__ static void add_bias(float *out, const float *bias, int N, int OC) {
    GRID_STRIDE(e, (size_t)N * OC) out[e] += bias[e % OC];
}

__global__ static void add_into(float *g, const float *w, size_t n) {
    GRID_STRIDE(i, n) g[i] += w[i];
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    gemm_rm(false, true, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC);
    if (bias) LAUNCH(add_bias, (size_t)N * OC, out, bias, N, OC);
}

// linear.c's blocks of LINEAR_K_BLOCK reduction columns, accumulated in order (beta 1
// after the first): the header's contract, on cuBLAS
void linear_forward_blocked(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                            int OC) {
    for (int k0 = 0; k0 < C; k0 += LINEAR_K_BLOCK) {
        int k = C - k0 < LINEAR_K_BLOCK ? C - k0 : LINEAR_K_BLOCK;
        gemm_rm(false, true, N, OC, k, 1.0f, inp + k0, C, weight + k0, C, k0 ? 1.0f : 0.0f, out, OC);
    }
    if (bias) LAUNCH(add_bias, (size_t)N * OC, out, bias, N, OC);
}

// element (n, o) of dout, for the bias gradient's column sums
struct DoutElem {
    const float *d;
    int OC;
    __device__ float operator()(int n, int o) const { return d[(size_t)n * OC + o]; }
};

// beta 0: dinp written, 1: accumulated
static void backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight,
                     int N, int C, int OC, float beta) {
    if (dinp) gemm_rm(false, false, N, C, OC, 1.0f, dout, OC, weight, C, beta, dinp, C);
    if (dweight && C > 0) {
        // blocks of output rows as linear.c cuts them (LINEAR_DW_SCRATCH floats, LINEAR_DW_ROWS rows at most)
        int rows = C < LINEAR_DW_SCRATCH ? LINEAR_DW_SCRATCH / C : 1;
        if (rows > LINEAR_DW_ROWS) rows = LINEAR_DW_ROWS;
        float *scratch = (float *)cuda_scratch(SCRATCH_DW, sizeof(float) * (size_t)rows * C);
        for (int o0 = 0; o0 < OC; o0 += rows) {
            int m = OC - o0 < rows ? OC - o0 : rows;
            gemm_rm(true, false, m, C, N, 1.0f, dout + o0, OC, inp, C, 0.0f, scratch, C);
            LAUNCH(add_into, (size_t)m * C, dweight + (size_t)o0 * C, scratch, (size_t)m * C);
        }
    }
    if (dbias) column_sums(dbias, DoutElem{dout, OC}, N, OC, 1);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC) {
    backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 0.0f);
}

void linear_backward_acc(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int N, int C, int OC) {
    backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 1.0f);
}

// The device memory these products take beyond their operands: cuBLAS's fixed
// workspace and the weight gradient's block (max_rows does not matter on the GPU).
size_t linear_workspace_bytes(size_t max_rows) {
    (void)max_rows;
    return cuda_blas_workspace_bytes() + sizeof(float) * LINEAR_DW_SCRATCH;
}
