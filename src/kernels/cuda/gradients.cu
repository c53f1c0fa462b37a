// The gradient convention's zero on the GPU, see gradients.h.
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/gradients.h"
}

void vlm_zero(float *p, size_t n) {
    if (n) CUDA_CHECK(cudaMemset(p, 0, sizeof(float) * n));
}
