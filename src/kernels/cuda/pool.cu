// Mean pooling on the GPU, see pool.h: one thread per output element, its
// group summed in row order and divided (pool.c's bits).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/pool.h"
}

__global__ static void group_mean_fwd(float *out, const float *inp, int R, int group, int C) {
    GRID_STRIDE(e, (size_t)R * C) {
        size_t r = e / C, c = e % C;
        const float *in = inp + r * group * C + c;
        float s = 0.0f;
        for (int j = 0; j < group; j++) s += in[(size_t)j * C];
        out[e] = s / (float)group;
    }
}
__global__ static void group_mean_bwd(float *dinp, const float *dout, int R, int group, int C) {
    GRID_STRIDE(e, (size_t)R * group * C) {
        size_t row = e / C, c = e % C;
        dinp[e] += dout[(row / group) * C + c] / (float)group;
    }
}

void group_mean_forward(float *out, const float *inp, int R, int group, int C) {
    LAUNCH(group_mean_fwd, (size_t)R * C, out, inp, R, group, C);
}
void group_mean_backward(float *dinp, const float *dout, int R, int group, int C) {
    LAUNCH(group_mean_bwd, (size_t)R * group * C, dinp, dout, R, group, C);
}
