// Layer scale on the GPU, see layer_scale.h: element-wise with layer_scale.c's
// roundings (the branch rounded before the add: no FMA, the CPU's bits);
// gamma's gradient as two-pass column sums over the rows (a fixed order, common.cuh).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/layer_scale.h"
}

__global__ static void ls_fwd(float *out, const float *x, const float *y, const float *gamma, int R, int C) {
    GRID_STRIDE(i, (size_t)R * C) out[i] = __fadd_rn(x[i], __fmul_rn(y[i], gamma[i % C]));
}

void layer_scale_forward(float *out, const float *x, const float *y, const float *gamma, int R, int C) {
    LAUNCH(ls_fwd, (size_t)R * C, out, x, y, gamma, R, C);
}

__global__ static void ls_bwd_dy(float *dy, const float *dout, const float *gamma, int R, int C) {
    GRID_STRIDE(i, (size_t)R * C) dy[i] = __fmul_rn(dout[i], gamma[i % C]);
}

struct GammaTerm {  // dout * y
    const float *d, *y;
    int C;
    __device__ float operator()(int r, int c) const {
        size_t e = (size_t)r * C + c;
        return __fmul_rn(d[e], y[e]);
    }
};

void layer_scale_backward(float *dy, float *dgamma, const float *dout, const float *y, const float *gamma, int R, int C) {
    LAUNCH(ls_bwd_dy, (size_t)R * C, dy, dout, gamma, R, C);
    if (dgamma) column_sums(dgamma, GammaTerm{dout, y, C}, R, C, 1);
}
