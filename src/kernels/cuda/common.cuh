// What the CUDA kernels share (the CUDA build only, docs/cuda.md): error
// checks that name the failing call, the one stream and cuBLAS handle, the
// kernels' private scratch, a row-major sgemm, and deterministic reductions.
//
// One stream: every kernel and copy of the process runs on the legacy default
// stream, in issue order, so a kernel's inputs are complete when it starts and
// a host copy after it sees its outputs. Determinism: every sum has a fixed
// order (a thread's serial loop, then a fixed tree over threads, then over
// blocks in a second pass), never atomics on floats; cuBLAS runs without
// atomics (its default) and with a fixed workspace, which NVIDIA documents as
// bit-reproducible on one GPU model and toolkit.
#ifndef VLM_KERNELS_CUDA_COMMON_CUH
#define VLM_KERNELS_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

// Prints "vlm: CUDA error: CALL (FILE:LINE): reason" and aborts: after a
// failing call the context is unusable, and the kernels' interface has no
// status to return (device.h).
void cuda_fail(const char *call, const char *file, int line, const char *reason);
#define CUDA_CHECK(call)                                                                     \
    do {                                                                                     \
        cudaError_t err_ = (call);                                                           \
        if (err_ != cudaSuccess) cuda_fail(#call, __FILE__, __LINE__, cudaGetErrorString(err_)); \
    } while (0)
#define CUBLAS_CHECK(call)                                                                   \
    do {                                                                                     \
        cublasStatus_t st_ = (call);                                                         \
        if (st_ != CUBLAS_STATUS_SUCCESS) cuda_fail(#call, __FILE__, __LINE__, cublasGetStatusString(st_)); \
    } while (0)
// after a launch: the launch's own errors (bad configuration); faults inside a
// kernel surface at the next synchronising call, which names itself
#define CUDA_LAUNCHED(name) CUDA_CHECK(cudaPeekAtLastError())

// the process's cuBLAS handle (created at the first product, on the default stream)
cublasHandle_t cuda_blas(void);
size_t cuda_blas_workspace_bytes(void);  // the fixed workspace it was given
// The scratch of slot (a kernel family's private buffer), at least bytes: grown
// when too small (after a device synchronisation, so no kernel still uses the
// old one), kept otherwise. One caller at a time per slot (the host calls the
// kernels from one thread; sumsq_kernel, called from several, has its own).
enum { SCRATCH_REDUCE, SCRATCH_DW, SCRATCH_CE, SCRATCH_DISTILL, SCRATCH_EMB, SCRATCH_ADAMW, SCRATCH_COPY, SCRATCH_SLOTS };
void *cuda_scratch(int slot, size_t bytes);

// cblas_sgemm(CblasRowMajor, ...) on the device: C (M,N) = alpha op(A) op(B) + beta C,
// row-major operands with their row strides. fp32 inputs, fp32 accumulation, no TF32.
void gemm_rm(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
             int ldb, float beta, float *C, int ldc);

// grid size for n items of threads each, capped (kernels loop with a grid stride past it)
static inline unsigned int grid_for(size_t n, int threads) {
    size_t g = (n + threads - 1) / threads;
    return (unsigned int)(g < 1 ? 1 : g > 65535u * 16 ? 65535u * 16 : g);
}

// i over [0, n) in a grid-stride loop
#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)
// an element-wise kernel over n items, 256 threads a block (nothing for n = 0)
#define LAUNCH(kernel, n, ...)                            \
    do {                                                  \
        if ((n) == 0) break;                              \
        kernel<<<grid_for((n), 256), 256>>>(__VA_ARGS__); \
        CUDA_LAUNCHED(#kernel);                           \
    } while (0)

// ---- deterministic reductions inside a block (blockDim.x a multiple of 32, at most 1024):
// each warp's butterfly, then warp 0 over the warps' values in warp order; every
// thread gets the result. shared: 32 T of the caller's shared memory.
template <typename T>
__device__ inline T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
template <typename T>
__device__ inline T block_sum(T v, T *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();  // shared may hold a previous reduction's values
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : (T)0;
    v = warp_sum(v);  // every warp reduces the same values in the same order
    return v;
}
__device__ inline float block_max(float v, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : -INFINITY;
    return warp_max(v);
}

// Column sums of a (N, C) block of rows (row stride ld), in two passes with a
// fixed order: each of ceil(N / COLSUM_ROWS) chunks of rows sums its rows in
// order, then each column sums its chunks in order. out[c] += the sum (acc)
// or = it. f(n, c) gives the element (a functor: the term of the gradient).
#define COLSUM_ROWS 256
template <typename F>
static __global__ void colsum_partial_kernel(float *partial, F f, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= C) return;
    int n0 = chunk * COLSUM_ROWS, n1 = n0 + COLSUM_ROWS < N ? n0 + COLSUM_ROWS : N;
    float s = 0.0f;
    for (int n = n0; n < n1; n++) s += f(n, c);
    partial[(size_t)chunk * C + c] = s;
}
static __global__ void colsum_final_kernel(float *out, const float *partial, int chunks, int C, int acc) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.0f;
    for (int k = 0; k < chunks; k++) s += partial[(size_t)k * C + c];
    out[c] = acc ? out[c] + s : s;
}
template <typename F>
void column_sums(float *out, F f, int N, int C, int acc) {
    if (C <= 0) return;
    int chunks = N > 0 ? (N + COLSUM_ROWS - 1) / COLSUM_ROWS : 0;
    float *partial = (float *)cuda_scratch(SCRATCH_REDUCE, sizeof(float) * (size_t)(chunks ? chunks : 1) * C);
    if (chunks > 0) {
        dim3 grid((C + 255) / 256, chunks);
        colsum_partial_kernel<<<grid, 256>>>(partial, f, N, C);
        CUDA_LAUNCHED("colsum_partial");
    }
    colsum_final_kernel<<<(C + 255) / 256, 256>>>(out, partial, chunks, C, acc);
    CUDA_LAUNCHED("colsum_final");
}

#endif
