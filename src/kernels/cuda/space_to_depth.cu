// Space-to-depth patches of channels-last maps on the GPU, see space_to_depth.h:
// pure copies, one thread per element written (each input element is in
// exactly one patch, so the backward is a gather too).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/space_to_depth.h"
}

// column element e of (N, H/P, W/P, C*P*P) -> its map element of (N, H, W, C)
__device__ static inline size_t map_index(size_t e, int H, int W, int C, int P) {
    int OH = H / P, OW = W / P, KK = C * P * P;
    int k = (int)(e % KK), ox = (int)(e / KK % OW), oy = (int)(e / ((size_t)KK * OW) % OH);
    size_t n = e / ((size_t)KK * OW * OH);
    int c = k / (P * P), ky = k / P % P, kx = k % P;
    return ((n * H + oy * P + ky) * W + ox * P + kx) * C + c;
}
// map element e of (N, H, W, C) -> its column element
__device__ static inline size_t col_index(size_t e, int H, int W, int C, int P) {
    int OH = H / P, OW = W / P;
    int c = (int)(e % C), x = (int)(e / C % W), y = (int)(e / ((size_t)C * W) % H);
    size_t n = e / ((size_t)C * W * H);
    return (((n * OH + y / P) * OW + x / P) * C * P * P) + ((size_t)c * P + y % P) * P + x % P;
}

__global__ static void s2d_fwd(float *cols, const float *inp, int N, int H, int W, int C, int P) {
    GRID_STRIDE(e, (size_t)N * H * W * C) cols[e] = inp[map_index(e, H, W, C, P)];
}
__global__ static void s2d_bwd(float *dinp, const float *dcols, int N, int H, int W, int C, int P) {
    GRID_STRIDE(e, (size_t)N * H * W * C) dinp[e] = dcols[col_index(e, H, W, C, P)];
}

void space_to_depth_forward(float *cols, const float *inp, int N, int H, int W, int C, int P) {
    LAUNCH(s2d_fwd, (size_t)N * H * W * C, cols, inp, N, H, W, C, P);
}

void space_to_depth_backward(float *dinp, const float *dcols, int N, int H, int W, int C, int P) {
    LAUNCH(s2d_bwd, (size_t)N * H * W * C, dinp, dcols, N, H, W, C, P);
}
