// Depthwise convolution over channels-last maps on the GPU, see dwconv.h. The
// forward and the input gradient: one thread per element, its taps in dwconv.c's
// order with each product and sum rounded on its own (no FMA: the CPU's bits).
// The weight and bias gradients: two-pass column sums over the positions (a
// fixed order, common.cuh), the weight's formed in full in wt as (K*K, C), then
// added to dweight in torch's (C, 1, K, K).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/dwconv.h"
}

// weight (C,1,K,K) -> wt (K,K,C), coalesced reads of a tap's channels
__global__ static void transpose_weight(float *wt, const float *weight, int C, int KK) {
    GRID_STRIDE(e, (size_t)KK * C) {
        size_t c = e % C, k = e / C;
        wt[e] = weight[c * KK + k];
    }
}

__global__ static void dwconv_fwd(float *out, const float *inp, const float *wt, const float *bias, int N, int H, int W,
                                  int C, int K) {
    int P = K / 2;
    GRID_STRIDE(e, (size_t)N * H * W * C) {
        int c = (int)(e % C), x = (int)(e / C % W), y = (int)(e / ((size_t)C * W) % H);
        size_t n = e / ((size_t)C * W * H);
        float o = bias ? bias[c] : 0.0f;
        for (int ky = 0; ky < K; ky++) {
            int iy = y + ky - P;
            if (iy < 0 || iy >= H) continue;
            for (int kx = 0; kx < K; kx++) {
                int ix = x + kx - P;
                if (ix < 0 || ix >= W) continue;
                float t = __fmul_rn(wt[(size_t)(ky * K + kx) * C + c], inp[((n * H + iy) * W + ix) * C + c]);
                o = __fadd_rn(o, t);
            }
        }
        out[e] = o;
    }
}

void dwconv2d_forward(float *out, const float *inp, const float *weight, const float *bias, float *wt, int N, int H,
                      int W, int C, int K) {
    LAUNCH(transpose_weight, (size_t)K * K * C, wt, weight, C, K * K);
    LAUNCH(dwconv_fwd, (size_t)N * H * W * C, out, inp, wt, bias, N, H, W, C, K);
}

// the input gradient gathered: input (iy, ix) was read by output (iy - ky + P, ix - kx + P) through tap (ky, kx)
__global__ static void dwconv_bwd_inp(float *dinp, const float *dout, const float *wt, int N, int H, int W, int C,
                                      int K) {
    int P = K / 2;
    GRID_STRIDE(e, (size_t)N * H * W * C) {
        int c = (int)(e % C), ix = (int)(e / C % W), iy = (int)(e / ((size_t)C * W) % H);
        size_t n = e / ((size_t)C * W * H);
        float acc = 0.0f;
        for (int ky = 0; ky < K; ky++) {
            int y = iy - ky + P;
            if (y < 0 || y >= H) continue;
            for (int kx = 0; kx < K; kx++) {
                int x = ix - kx + P;
                if (x < 0 || x >= W) continue;
                acc = __fadd_rn(acc, __fmul_rn(wt[(size_t)(ky * K + kx) * C + c], dout[((n * H + y) * W + x) * C + c]));
            }
        }
        dinp[e] = __fadd_rn(dinp[e], acc);
    }
}

// term (position r, column k * C + c) of the weight gradient: dout at r times the input tap k reads (0 off the map)
struct DwTerm {
    const float *d, *x;
    int H, W, C, K;
    __device__ float operator()(int r, int col) const {
        int c = col % C, k = col / C, P = K / 2;
        int xx = r % W, y = r / W % H, n = r / (W * H);
        int iy = y + k / K - P, ix = xx + k % K - P;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) return 0.0f;
        return __fmul_rn(d[(size_t)r * C + c], x[(((size_t)n * H + iy) * W + ix) * C + c]);
    }
};
struct DoutCol {
    const float *d;
    int C;
    __device__ float operator()(int r, int c) const { return d[(size_t)r * C + c]; }
};

// dweight (C, K*K) += wt (K*K, C)
__global__ static void add_weight_grad(float *dweight, const float *wt, int C, int KK) {
    GRID_STRIDE(e, (size_t)C * KK) {
        size_t k = e % KK, c = e / KK;
        dweight[e] += wt[k * C + c];
    }
}

void dwconv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                       const float *weight, float *wt, int N, int H, int W, int C, int K) {
    int rows = N * H * W, KK = K * K;
    if (dinp) {
        LAUNCH(transpose_weight, (size_t)KK * C, wt, weight, C, KK);
        LAUNCH(dwconv_bwd_inp, (size_t)rows * C, dinp, dout, wt, N, H, W, C, K);
    }
    if (dweight) {
        // wt is free again (one stream: the input gradient's kernel has read it)
        column_sums(wt, DwTerm{dout, inp, H, W, C, K}, rows, KK * C, 0);
        LAUNCH(add_weight_grad, (size_t)C * KK, dweight, wt, C, KK);
    }
    if (dbias) column_sums(dbias, DoutCol{dout, C}, rows, C, 1);
}
