// The device API of the CPU build (see device.h): the device is host memory.
#include "kernels/device.h"

#include <string.h>  // memcpy, memset

#include "core/alloc.h"  // vlm_alloc_aligned (records the failure)

void *device_alloc(size_t bytes) { return vlm_alloc_aligned(bytes ? bytes : 1); }
void device_free(void *p) { vlm_free_aligned(p); }
void device_upload(void *dst, const void *host_src, size_t bytes) { memcpy(dst, host_src, bytes); }
void device_download(void *host_dst, const void *src, size_t bytes) { memcpy(host_dst, src, bytes); }
void device_copy(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }
void device_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
void device_sync(void) {}
int device_present(void) { return 1; }
const char *device_name(void) { return "cpu"; }
