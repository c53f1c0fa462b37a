// Aligned and checked allocation, see alloc.h.
#include "core/alloc.h"

#include <stdint.h>    // uintptr_t
#include <stdlib.h>    // aligned_alloc, malloc, free
#include <string.h>    // memset, strlen, memcpy
#include <sys/mman.h>  // mmap, madvise
#include <unistd.h>    // sysconf

#include "core/error.h"

void *vlm_alloc_aligned(size_t bytes) {
    size_t rounded;
    if (!size_add(bytes, VLM_ALIGNMENT - 1, &rounded)) goto oom;
    rounded -= rounded % VLM_ALIGNMENT;
    if (rounded == 0) rounded = VLM_ALIGNMENT;
    void *p = aligned_alloc(VLM_ALIGNMENT, rounded);
    if (!p) goto oom;
    memset(p, 0, rounded);
    return p;
oom:
    vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory allocating %zu bytes", bytes);
    return NULL;
}

void vlm_free_aligned(void *p) { free(p); }

void *vlm_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *vlm_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *vlm_realloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory growing to %zu bytes", bytes);
    return q;
}

char *vlm_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = vlm_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void *vlm_map_zeroed(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) return p;
    vlm_fail_errno(VLM_ERR_FAIL, NULL, NULL, "cannot map %zu bytes", bytes);
    return NULL;
}

void vlm_unmap(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}

void vlm_drop_floats(float *p, size_t n) {
    if (n == 0) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *a = (char *)p, *b = (char *)(p + n);
    char *pa = (char *)(((uintptr_t)a + page - 1) & ~(uintptr_t)(page - 1)), *pb = (char *)((uintptr_t)b & ~(uintptr_t)(page - 1));
    if (pa >= pb) {
        memset(a, 0, (size_t)(b - a));
        return;
    }
    memset(a, 0, (size_t)(pa - a));
    memset(pb, 0, (size_t)(b - pb));
    if (madvise(pa, (size_t)(pb - pa), MADV_DONTNEED) != 0) memset(pa, 0, (size_t)(pb - pa));
}
