// Element types of checkpoint tensors and their conversion to float32.
#ifndef VLM_FORMATS_DTYPE_H
#define VLM_FORMATS_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DT_F32, DT_F16, DT_BF16, DT_F64,
    DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL,
    DT_COUNT
} DType;

#define TENSOR_MAX_DIMS 8

// What a file says about one tensor; the data lives with the file.
typedef struct {
    char *name;
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    uint64_t numel;
    size_t nbytes;
} TensorInfo;

const char *dtype_name(DType t);            // safetensors spelling: "F32", "BF16", ...
int dtype_from_name(const char *name, DType *out);  // 0 ok, -1 unknown
size_t dtype_size(DType t);

// numel and nbytes from dtype and shape; -1 on overflow.
int tensor_info_sizes(TensorInfo *info);
// "[3, 224, 224]" into buf.
void shape_format(const int64_t *shape, int ndim, char *buf, size_t size);

float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_f16(float f);   // round to nearest even, like torch .half()
uint16_t f32_to_bf16(float f);  // round to nearest even, like torch .bfloat16()

// Converts n elements of type t at src (any alignment) to float32.
void dtype_to_f32(DType t, const void *src, float *dst, size_t n);
// Converts n elements of type t at src to double (exact for every type but I64 beyond 2^53).
void dtype_to_f64(DType t, const void *src, double *dst, size_t n);

#endif
