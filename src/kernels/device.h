// The device API: where parameters, gradients, moments and activations live,
// and the only way host memory reaches them. One backend per binary, chosen at
// link time (docs/cuda.md): the CPU build's device is host memory
// (device_cpu.c: malloc / memcpy), the CUDA build's the GPU's
// (cuda/device.cu: cudaMalloc / cudaMemcpy). Every pointer a kernel of
// src/kernels/*.h takes is a device pointer of the build.
//
// Errors: device_alloc returns NULL with the reason recorded (vlm_fail: out
// of memory is an input-sized failure the caller reports). A failing copy,
// zero or sync means the device itself failed (a fault in an earlier kernel,
// a lost device): the CUDA build prints the call and the driver's reason and
// aborts, as after a failing kernel; there is nothing to recover.
#ifndef VLM_KERNELS_DEVICE_H
#define VLM_KERNELS_DEVICE_H

#include <stddef.h>  // size_t

#ifdef __cplusplus
extern "C" {
#endif

// bytes of device memory (uninitialised; at least 1 byte when bytes is 0); NULL (recorded) on failure
void *device_alloc(size_t bytes);
void device_free(void *p);  // NULL is ignored
// host -> device, device -> host: after every kernel launched before, and
// complete when they return (the host buffer may be reused, the downloaded one read)
void device_upload(void *dst, const void *host_src, size_t bytes);
void device_download(void *host_dst, const void *src, size_t bytes);
// device -> device (may overlap), and bytes of zeros at p: ordered after the
// kernels launched before and before those launched after, as a kernel is
void device_copy(void *dst, const void *src, size_t bytes);
void device_zero(void *p, size_t bytes);
// waits until every kernel launched so far has finished
void device_sync(void);
// 1 when the build's device can run kernels (the CPU build: always; the CUDA
// build: a GPU and a driver are present), 0 otherwise
int device_present(void);
// the backend and the device, for logs and `vlm version` ("cpu", "cuda: NVIDIA H200 (sm_90, 139.8 GiB)")
const char *device_name(void);

#ifdef __cplusplus
}
#endif

#endif
