// The device API of the CUDA build (see device.h): the GPU's memory through
// the CUDA runtime, every call checked and named when it fails.
#include <stdio.h>

#include "kernels/cuda/common.cuh"
extern "C" {
#include "core/error.h"  // vlm_fail
#include "kernels/device.h"
}

void *device_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();  // an allocation failure is not sticky: clear it
        vlm_fail(VLM_ERR_FAIL, NULL, NULL, "cudaMalloc of %zu bytes: %s", bytes, cudaGetErrorString(err));
        return NULL;
    }
    return p;
}

void device_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

void device_upload(void *dst, const void *host_src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

void device_download(void *host_dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

void device_copy(void *dst, const void *src, size_t bytes) {
    // cudaMemcpy's ranges must not overlap: through a scratch buffer when they do
    const char *d = (const char *)dst, *s = (const char *)src;
    if (bytes && d < s + bytes && s < d + bytes && d != s) {
        void *tmp = cuda_scratch(SCRATCH_COPY, bytes);
        CUDA_CHECK(cudaMemcpy(tmp, src, bytes, cudaMemcpyDeviceToDevice));
        src = tmp;
    }
    if (bytes && d != s) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

void device_zero(void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemset(p, 0, bytes));
}

void device_sync(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

int device_present(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n > 0;
}

const char *device_name(void) {
    static char name[320];
    if (!name[0]) {
        int dev = 0;
        cudaDeviceProp prop;
        cudaError_t err = cudaGetDevice(&dev);
        if (err == cudaSuccess) err = cudaGetDeviceProperties(&prop, dev);
        if (err != cudaSuccess)
            snprintf(name, sizeof name, "cuda: no usable device (%s)", cudaGetErrorString(err));
        else
            snprintf(name, sizeof name, "cuda: %s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
                     prop.totalGlobalMem / (double)(1 << 30));
    }
    return name;
}
