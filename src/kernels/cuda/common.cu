// The CUDA kernels' shared pieces, see common.cuh.
#include "kernels/cuda/common.cuh"

#include <stdio.h>
#include <stdlib.h>

void cuda_fail(const char *call, const char *file, int line, const char *reason) {
    fprintf(stderr, "vlm: CUDA error: %s (%s:%d): %s\n", call, file, line, reason);
    abort();
}

#define BLAS_WORKSPACE ((size_t)32 << 20)  // cuBLAS's workspace, fixed (linear_workspace_bytes counts it)

size_t cuda_blas_workspace_bytes(void) { return BLAS_WORKSPACE; }

cublasHandle_t cuda_blas(void) {
    static cublasHandle_t handle;
    if (!handle) {
        CUBLAS_CHECK(cublasCreate(&handle));
        void *workspace = NULL;
        CUDA_CHECK(cudaMalloc(&workspace, BLAS_WORKSPACE));
        CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, BLAS_WORKSPACE));
        // fp32 products in fp32: no TF32 (the parity mode; docs/cuda.md)
        CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
    }
    return handle;
}

void *cuda_scratch(int slot, size_t bytes) {
    static void *buf[SCRATCH_SLOTS];
    static size_t cap[SCRATCH_SLOTS];
    if (bytes > cap[slot]) {
        CUDA_CHECK(cudaDeviceSynchronize());  // no kernel still reads the old buffer
        CUDA_CHECK(cudaFree(buf[slot]));
        size_t grown = bytes < 256 ? 256 : bytes;
        CUDA_CHECK(cudaMalloc(&buf[slot], grown));
        cap[slot] = grown;
    }
    return buf[slot];
}

// C (M, N) at stride ldc = beta C (beta 0: zeros, whatever C held, as BLAS)
__global__ static void scale_rows_kernel(float *C, int M, int N, int ldc, float beta) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)M * N; i += (size_t)gridDim.x * blockDim.x) {
        float *c = C + (i / N) * ldc + i % N;
        *c = beta == 0.0f ? 0.0f : beta * *c;
    }
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the
// column-major product of B's and A's storage, swapped.
void gemm_rm(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
             int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // alpha op(A) op(B) is 0 (cuBLAS needs K >= 1): C = beta C
        scale_rows_kernel<<<grid_for((size_t)M * N, 256), 256>>>(C, M, N, ldc, beta);
        CUDA_LAUNCHED("scale_rows");
        return;
    }
    CUBLAS_CHECK(cublasGemmEx(cuda_blas(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                              K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F, ldc,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
