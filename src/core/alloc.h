// Aligned allocation and overflow-checked size arithmetic.
//
// Every size computed from untrusted input (a header, a shape) goes through
// size_mul/size_add so a hostile file cannot wrap a size and under-allocate.
#ifndef VLM_CORE_ALLOC_H
#define VLM_CORE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#define VLM_ALIGNMENT 64  // cache line, and enough for any SIMD load

// Zero-filled, VLM_ALIGNMENT-aligned; NULL (with vlm_fail set) on failure.
void *vlm_alloc_aligned(size_t bytes);
void vlm_free_aligned(void *p);

// Like malloc/calloc/realloc/strdup but record an out-of-memory error on failure.
void *vlm_malloc(size_t bytes);
void *vlm_calloc(size_t count, size_t size);
void *vlm_realloc(void *p, size_t bytes);
char *vlm_strdup(const char *s);

// Return false on overflow, leaving *out unspecified.
static inline bool size_mul(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool size_add(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

// bytes of zeros the kernel hands out page by page as they are first written (an anonymous
// mapping): a buffer of which only parts are ever touched (the gradients of a partly frozen
// model, ZeRO's shards) costs only those parts. NULL (recorded) on failure; free with vlm_unmap.
void *vlm_map_zeroed(size_t bytes);
void vlm_unmap(void *p, size_t bytes);

// Hands the n floats at p back to the kernel: the whole pages among them dropped (madvise
// MADV_DONTNEED: they read as zeros when next touched and cost nothing until then), the
// partial pages at either end zeroed. For private anonymous memory (what vlm allocates).
void vlm_drop_floats(float *p, size_t n);

#endif
