// Carving one buffer into many arrays: run the same sequence of carve()
// calls twice, first with base NULL to count, then over an allocation of
// that many floats. Activation memory is laid out once this way.
#ifndef VLM_MODEL_CARVE_H
#define VLM_MODEL_CARVE_H

#include <stddef.h>

typedef struct {
    float *base;   // NULL: counting
    size_t used;   // floats handed out so far
} Carve;

static inline float *carve(Carve *c, size_t n) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15;  // 64-byte aligned pieces
    return p;
}

#endif
