// Pillow's bicubic resampling, see resize.h.
#include "image/resize.h"

#include <math.h>
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
    free(s->bounds_x), free(s->bounds_y), free(s->k_x), free(s->k_y), free(s->temp), free(s->kd), free(s->acc);
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

static inline uint8_t clip8(int v) {
    if (v >= (1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

// dst (cw,3) from one source row, using the window's horizontal coefficients
static void horizontal_row(const uint8_t *in, int cw, int ksize, const int *bounds, const int32_t *kk, uint8_t *dst) {
    for (int i = 0; i < cw; i++) {
        const int32_t *k = kk + (size_t)i * ksize;
        const uint8_t *p = in + 3 * bounds[2 * i];
        int n = bounds[2 * i + 1];
        int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < n; x++, p += 3) {
            s0 += p[0] * k[x];
            s1 += p[1] * k[x];
            s2 += p[2] * k[x];
        }
        dst[3 * i] = clip8(s0), dst[3 * i + 1] = clip8(s1), dst[3 * i + 2] = clip8(s2);
    }
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
    const uint8_t *prev_in = NULL;
    for (int r = 0; r < row_count; r++) {
        const uint8_t *in = src->row(src->ctx, row_first + r);
        uint8_t *out = rows + row_bytes * r;
        if (in == prev_in) memcpy(out, out - row_bytes, row_bytes);  // a repeated row (padding): same result
        else if (need_h) horizontal_row(in, cw, kx, s->bounds_x, s->k_x, out);
        else memcpy(out, in + (size_t)x0 * 3, row_bytes);
        prev_in = in;
    }
    if (!need_v) return VLM_OK;
    // pass 2: vertical, a whole output row at a time (row-major reads)
    int32_t *acc = s->acc;
    for (int j = 0; j < ch; j++) {
        const int32_t *k = s->k_y + (size_t)j * ky;
        int ymin = s->bounds_y[2 * j] - row_first, n = s->bounds_y[2 * j + 1];
        for (size_t i = 0; i < row_bytes; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < n; y++) {
            const uint8_t *p = rows + row_bytes * (ymin + y);
            int32_t ky_y = k[y];
            for (size_t i = 0; i < row_bytes; i++) acc[i] += p[i] * ky_y;
        }
        uint8_t *out = dst + row_bytes * j;
        for (size_t i = 0; i < row_bytes; i++) out[i] = clip8(acc[i]);
    }
    return VLM_OK;
}
