// Element types and conversions, see dtype.h.
#include "formats/dtype.h"

#include <stdio.h>   // snprintf
#include <string.h>  // memcpy, strcmp

#include "core/alloc.h"

static const struct { const char *name; size_t size; } DTYPES[DT_COUNT] = {
    [DT_F32] = {"F32", 4}, [DT_F16] = {"F16", 2}, [DT_BF16] = {"BF16", 2}, [DT_F64] = {"F64", 8},
    [DT_I64] = {"I64", 8}, [DT_I32] = {"I32", 4}, [DT_I16] = {"I16", 2}, [DT_I8] = {"I8", 1},
    [DT_U8] = {"U8", 1},   [DT_BOOL] = {"BOOL", 1},
};

const char *dtype_name(DType t) { return (unsigned)t < DT_COUNT ? DTYPES[t].name : "?"; }
size_t dtype_size(DType t) { return (unsigned)t < DT_COUNT ? DTYPES[t].size : 0; }

int dtype_from_name(const char *name, DType *out) {
    for (int i = 0; i < DT_COUNT; i++) {
        if (strcmp(name, DTYPES[i].name) == 0) {
            *out = (DType)i;
            return 0;
        }
    }
    return -1;
}

int tensor_info_sizes(TensorInfo *info) {
    size_t numel = 1;
    for (int d = 0; d < info->ndim; d++) {
        if (info->shape[d] < 0 || !size_mul(numel, (size_t)info->shape[d], &numel)) return -1;
    }
    size_t nbytes;
    if (!size_mul(numel, dtype_size(info->dtype), &nbytes)) return -1;
    info->numel = numel;
    info->nbytes = nbytes;
    return 0;
}

void shape_format(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t at = 0;
    at += (size_t)snprintf(buf + at, size - at, "[");
    for (int d = 0; d < ndim && at < size; d++) {
        at += (size_t)snprintf(buf + at, size - at, d ? ", %lld" : "%lld", (long long)shape[d]);
    }
    if (at < size) snprintf(buf + at, size - at, "]");
}

static float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float bf16_to_f32(uint16_t b) { return f32_from_bits((uint32_t)b << 16); }

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (man << 13));  // inf / nan
    if (exp == 0) {
        if (man == 0) return f32_from_bits(sign);
        // subnormal: value = man * 2^-24, exact in float32
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet nan
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)((u + rounding) >> 16);
}

uint16_t f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;  // nan
    if (a >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: inf
    if (a < 0x38800000u) {
        // result is subnormal or zero: scale so the f16 subnormal unit is 1, round to even
        float v = f32_from_bits(a) * 16777216.0f;  // 2^24
        uint32_t m = (uint32_t)v;
        float frac = v - (float)m;
        if (frac > 0.5f || (frac == 0.5f && (m & 1))) m++;
        return sign | (uint16_t)m;
    }
    uint32_t exp = (a >> 23) - 112;
    uint32_t man = a & 0x7fffffu;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;  // may carry into the exponent: correct
    return sign | (uint16_t)h;
}

// Unaligned loads: tensor data in a file has no alignment guarantee.
#define DEFINE_LOAD(type, fn)                                               \
    static inline type fn(const void *p, size_t i) {                       \
        type v;                                                             \
        memcpy(&v, (const char *)p + i * sizeof v, sizeof v);              \
        return v;                                                           \
    }
DEFINE_LOAD(float, load_f32)
DEFINE_LOAD(double, load_f64)
DEFINE_LOAD(uint16_t, load_u16)
DEFINE_LOAD(int64_t, load_i64)
DEFINE_LOAD(int32_t, load_i32)
DEFINE_LOAD(int16_t, load_i16)
DEFINE_LOAD(int8_t, load_i8)
DEFINE_LOAD(uint8_t, load_u8)

#define DEFINE_CONVERT(fname, out_t)                                                   \
    void fname(DType t, const void *src, out_t *dst, size_t n) {                       \
        switch (t) {                                                                   \
        case DT_F32: for (size_t i = 0; i < n; i++) dst[i] = (out_t)load_f32(src, i); break;   \
        case DT_F64: for (size_t i = 0; i < n; i++) dst[i] = (out_t)load_f64(src, i); break;  \
        case DT_F16: for (size_t i = 0; i < n; i++) dst[i] = (out_t)f16_to_f32(load_u16(src, i)); break; \
        case DT_BF16: for (size_t i = 0; i < n; i++) dst[i] = (out_t)bf16_to_f32(load_u16(src, i)); break; \
        case DT_I64: for (size_t i = 0; i < n; i++) dst[i] = (out_t)load_i64(src, i); break; \
        case DT_I32: for (size_t i = 0; i < n; i++) dst[i] = (out_t)load_i32(src, i); break; \
        case DT_I16: for (size_t i = 0; i < n; i++) dst[i] = (out_t)load_i16(src, i); break; \
        case DT_I8: for (size_t i = 0; i < n; i++) dst[i] = (out_t)load_i8(src, i); break;   \
        case DT_U8: for (size_t i = 0; i < n; i++) dst[i] = (out_t)load_u8(src, i); break;  \
        case DT_BOOL: for (size_t i = 0; i < n; i++) dst[i] = load_u8(src, i) ? 1 : 0; break; \
        default: break;                                                                \
        }                                                                              \
    }

DEFINE_CONVERT(dtype_to_f32, float)
DEFINE_CONVERT(dtype_to_f64, double)
