// Pillow's bicubic resampling, see resize.h.
#include "image/resize.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

#define PRECISION_BITS (32 - 8 - 2)
#define BICUBIC_SUPPORT 2.0

// Keys' cubic with a = -0.5, as Pillow defines it
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static int grow(void **p, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return VLM_OK;
    void *q = vlm_realloc(*p, bytes);
    if (!q) return VLM_ERR_FAIL;
    *p = q;
    *cap = bytes;
    return VLM_OK;
}

void resize_scratch_free(ResizeScratch *s) {
    free(s->bounds_x), free(s->bounds_y), free(s->k_x), free(s->k_y), free(s->temp), free(s->kd), free(s->acc), free(s->block);
    memset(s, 0, sizeof *s);
}

static int kernel_size(int in_size, int out_size) {
    double scale = (double)(float)in_size / out_size;
    double support = BICUBIC_SUPPORT * (scale < 1.0 ? 1.0 : scale);
    return (int)ceil(support) * 2 + 1;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for outputs
// first..first+count-1 of an axis: bounds (xmin, n) and ksize fixed-point weights each.
// k is scratch for ksize doubles.
static void axis_coeffs(int in_size, int out_size, int first, int count, int ksize, int *bounds, int32_t *kk,
                        double *k) {
    // Pillow's box corners are floats: (in1 - in0) is computed in float
    double scale = (double)((float)in_size - 0.0f) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = BICUBIC_SUPPORT * filterscale, ss = 1.0 / filterscale;
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = 0.0f + (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            k[x] = bicubic((x + xmin - center + 0.5) * ss);
            ww += k[x];
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        int32_t *out = kk + (size_t)i * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? k[x] : 0.0;
            out[x] = v < 0 ? (int)(-0.5 + v * (1 << PRECISION_BITS)) : (int)(0.5 + v * (1 << PRECISION_BITS));
        }
        bounds[2 * i] = xmin;
        bounds[2 * i + 1] = xmax;
    }
}

// Pillow's clip8 (>= 256 << 22 -> 255, <= 0 -> 0, else v >> 22), written branch-free
static inline uint8_t clip8(int v) {
    int q = v >> PRECISION_BITS;
    return (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
}

// Both passes reduce to one kernel: n independent lanes, each a weighted sum
// of `taps` bytes found `stride` apart. The vertical pass has a row's bytes
// as lanes; the horizontal pass transposes a block of rows so that the same
// column of BLOCK_ROWS rows is contiguous. Integer arithmetic, so every
// vector width gives Pillow's exact result; the AVX2 clone is chosen at run
// time where the CPU has it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif

MULTIVERSION static void weighted_lanes(int32_t *restrict acc, const uint8_t *restrict src, size_t stride,
                                        const int32_t *restrict k, int taps, size_t n) {
    for (size_t l = 0; l < n; l++) acc[l] = 1 << (PRECISION_BITS - 1);
    for (int t = 0; t < taps; t++) {
        const uint8_t *restrict p = src + stride * t;
        int32_t kt = k[t];
        for (size_t l = 0; l < n; l++) acc[l] += p[l] * kt;
    }
}

#define BLOCK_ROWS 16
#define LANES (BLOCK_ROWS * 3)

// weighted_lanes with n = LANES known at compile time (unrolled into whole vectors)
MULTIVERSION static void weighted_block(int32_t *restrict acc, const uint8_t *restrict src, const int32_t *restrict k,
                                        int taps) {
    for (int l = 0; l < LANES; l++) acc[l] = 1 << (PRECISION_BITS - 1);
    for (int t = 0; t < taps; t++) {
        const uint8_t *restrict p = src + LANES * t;
        int32_t kt = k[t];
        for (int l = 0; l < LANES; l++) acc[l] += p[l] * kt;
    }
}

// Pass 1: row_count source rows from row_first -> rows (row_count, cw, 3).
static int horizontal_pass(const RowSource *src, int row_first, int row_count, int cw, int ksize, const int *bounds,
                           const int32_t *kk, uint8_t *rows, ResizeScratch *s) {
    int xlo = bounds[0], xhi = bounds[2 * (cw - 1)] + bounds[2 * (cw - 1) + 1];  // columns the window reads
    size_t row_bytes = (size_t)cw * 3, block_bytes = (size_t)(xhi - xlo) * LANES;
    if (block_bytes > s->cap_block) {
        if (grow((void **)&s->block, &s->cap_block, block_bytes)) return VLM_ERR_FAIL;
        memset(s->block, 0, block_bytes);
    }
    int32_t acc[LANES];
    const uint8_t *prev = NULL;
    for (int r0 = 0; r0 < row_count; r0 += BLOCK_ROWS) {
        int rr = row_count - r0 < BLOCK_ROWS ? row_count - r0 : BLOCK_ROWS;
        bool dup[BLOCK_ROWS], all_dup = true;
        for (int r = 0; r < rr; r++) {
            const uint8_t *in = src->row(src->ctx, row_first + r0 + r);
            dup[r] = in == prev;  // a repeated row (padding): its result is the previous row's
            prev = in;
            if (dup[r]) continue;
            all_dup = false;
            const uint8_t *p = in + (size_t)xlo * 3;
            uint8_t *q = s->block + r * 3;
            for (int x = xlo; x < xhi; x++, p += 3, q += LANES) q[0] = p[0], q[1] = p[1], q[2] = p[2];
        }
        for (int i = 0; i < cw && !all_dup; i++) {
            // lanes of rows past rr hold stale bytes; their sums are never stored
            weighted_block(acc, s->block + (size_t)(bounds[2 * i] - xlo) * LANES, kk + (size_t)i * ksize,
                           bounds[2 * i + 1]);
            for (int r = 0; r < rr; r++) {  // repeated rows get stale sums here, overwritten below
                uint8_t *out = rows + row_bytes * (r0 + r) + 3 * i;
                out[0] = clip8(acc[3 * r]), out[1] = clip8(acc[3 * r + 1]), out[2] = clip8(acc[3 * r + 2]);
            }
        }
        for (int r = 0; r < rr; r++)
            if (dup[r]) memcpy(rows + row_bytes * (r0 + r), rows + row_bytes * (r0 + r - 1), row_bytes);
    }
    return VLM_OK;
}

int resize_bicubic_window(const RowSource *src, int out_w, int out_h, int x0, int y0, int cw, int ch,
                          uint8_t *dst, ResizeScratch *s) {
    if (x0 < 0 || y0 < 0 || cw <= 0 || ch <= 0 || x0 + cw > out_w || y0 + ch > out_h)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "resize window %dx%d at (%d,%d) outside %dx%d", cw, ch, x0, y0,
                        out_w, out_h);
    int need_h = out_w != src->width, need_v = out_h != src->height;
    int kx = kernel_size(src->width, out_w), ky = kernel_size(src->height, out_h);
    if (grow((void **)&s->bounds_x, &s->cap_bx, sizeof(int) * 2 * cw) ||
        grow((void **)&s->bounds_y, &s->cap_by, sizeof(int) * 2 * ch) ||
        grow((void **)&s->k_x, &s->cap_kx, sizeof(int32_t) * kx * (size_t)cw) ||
        grow((void **)&s->k_y, &s->cap_ky, sizeof(int32_t) * ky * (size_t)ch) ||
        grow((void **)&s->kd, &s->cap_kd, sizeof(double) * (kx > ky ? kx : ky)) ||
        grow((void **)&s->acc, &s->cap_acc, sizeof(int32_t) * 3 * (size_t)cw))
        return VLM_ERR_FAIL;
    // source rows the window needs
    int row_first = y0, row_count = ch;
    if (need_v) {
        axis_coeffs(src->height, out_h, y0, ch, ky, s->bounds_y, s->k_y, s->kd);
        row_first = s->bounds_y[0];
        row_count = s->bounds_y[2 * (ch - 1)] + s->bounds_y[2 * (ch - 1) + 1] - row_first;
    }
    if (need_h) axis_coeffs(src->width, out_w, x0, cw, kx, s->bounds_x, s->k_x, s->kd);
    // pass 1: the needed rows, horizontally resampled (or cut) to the window's columns
    size_t row_bytes = (size_t)cw * 3;
    uint8_t *rows = dst;
    if (need_v) {
        if (grow((void **)&s->temp, &s->cap_temp, row_bytes * row_count)) return VLM_ERR_FAIL;
        rows = s->temp;
    }
    if (need_h) {
        if (horizontal_pass(src, row_first, row_count, cw, kx, s->bounds_x, s->k_x, rows, s) != VLM_OK)
            return VLM_ERR_FAIL;
    } else {
        for (int r = 0; r < row_count; r++)
            memcpy(rows + row_bytes * r, src->row(src->ctx, row_first + r) + (size_t)x0 * 3, row_bytes);
    }
    if (!need_v) return VLM_OK;
    // pass 2: vertical, a whole output row at a time (row-major reads)
    for (int j = 0; j < ch; j++) {
        int ymin = s->bounds_y[2 * j] - row_first;
        weighted_lanes(s->acc, rows + row_bytes * ymin, row_bytes, s->k_y + (size_t)j * ky, s->bounds_y[2 * j + 1],
                       row_bytes);
        const int32_t *acc = s->acc;  // a local: stores through uint8_t * could alias the field
        uint8_t *out = dst + row_bytes * j;
        for (size_t i = 0; i < row_bytes; i++) out[i] = clip8(acc[i]);
    }
    return VLM_OK;
}
