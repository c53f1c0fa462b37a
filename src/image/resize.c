// Pillow's convolution resampling (BICUBIC, BILINEAR), see resize.h.
#include "image/resize.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

#define PRECISION_BITS (32 - 8 - 2)

// Keys' cubic with a = -0.5, as Pillow defines it
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// the triangle, Pillow's bilinear_filter
static double bilinear(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

// Pillow's struct filter: the kernel and its support (at scale 1)
typedef struct {
    double (*kernel)(double);
    double support;
} Filter;

static const Filter FILTERS[] = {[RESIZE_BICUBIC] = {bicubic, 2.0}, [RESIZE_BILINEAR] = {bilinear, 1.0}};

static int grow(void **p, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return VLM_OK;
    void *q = vlm_realloc(*p, bytes);
    if (!q) return VLM_ERR_FAIL;
    *p = q;
    *cap = bytes;
    return VLM_OK;
}

void resize_scratch_free(ResizeScratch *s) {
    free(s->x.win), free(s->x.k), free(s->y.win), free(s->y.k);
    free(s->bg_cols), free(s->temp), free(s->kd), free(s->acc), free(s->block);
    memset(s, 0, sizeof *s);
}

size_t resize_scratch_bytes(const ResizeScratch *s) {
    return s->x.cap_win + s->x.cap_k + s->y.cap_win + s->y.cap_k + s->cap_bg_cols + s->cap_temp + s->cap_kd +
           s->cap_acc + s->cap_block;
}

// Pillow's precompute_coeffs: output xx's window [*xmin, *xmin + *n) of the input.
static void window(const Filter *f, int in_size, int out_size, int xx, int *xmin, int *n) {
    // Pillow's box corners are floats: (in1 - in0) is computed in float
    double scale = (double)((float)in_size - 0.0f) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * filterscale, center = 0.0f + (xx + 0.5) * scale;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in_size) hi = in_size;
    *xmin = lo;
    *n = hi - lo;
}

// The windows of outputs first..first+count-1 of an axis of in_size pixels
// whose image covers [off, off + len), with Pillow's fixed-point weights
// (precompute_coeffs + normalize_coeffs_8bpc): each weight rounded alone, so
// the sums are those of the rounded weights. An axis that keeps its size is
// the identity, one weight of 1 << 22 (Pillow skips that pass; the sum
// half + p << 22 clips back to p, the same bytes).
static int axis_windows(const Filter *f, ResizeAxis *a, int in_size, int out_size, int first, int count, int off,
                        int len, ResizeScratch *s) {
    bool identity = in_size == out_size;
    double scale = (double)((float)in_size - 0.0f) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * filterscale, ss = 1.0 / filterscale;
    int ksize = identity ? 1 : (int)ceil(support) * 2 + 1;
    if (grow((void **)&a->win, &a->cap_win, sizeof(ResizeWindow) * (size_t)count) ||
        grow((void **)&s->kd, &s->cap_kd, sizeof(double) * (size_t)ksize))
        return VLM_ERR_FAIL;
    size_t kept = 0;  // weights on the image, the only ones stored
    a->touch_first = a->touch_end = 0;
    for (int i = 0; i < count; i++) {
        int xmin = first + i, n = 1;
        if (!identity) window(f, in_size, out_size, first + i, &xmin, &n);
        int lo = xmin > off ? xmin : off, hi = xmin + n < off + len ? xmin + n : off + len;
        ResizeWindow *w = &a->win[i];
        w->first = hi > lo ? lo - off : 0;
        w->count = hi > lo ? hi - lo : 0;
        w->k = kept;
        kept += (size_t)w->count;
        if (w->count && a->touch_first == a->touch_end) a->touch_first = i;
        if (w->count) a->touch_end = i + 1;
    }
    if (grow((void **)&a->k, &a->cap_k, sizeof(int32_t) * kept)) return VLM_ERR_FAIL;
    double *k = s->kd;
    for (int i = 0; i < count; i++) {
        ResizeWindow *w = &a->win[i];
        int xmin = first + i, n = 1;
        if (identity) {
            k[0] = 1.0;
        } else {
            window(f, in_size, out_size, first + i, &xmin, &n);
            double center = 0.0f + (first + i + 0.5) * scale, ww = 0.0;
            for (int x = 0; x < n; x++) {
                k[x] = f->kernel((x + xmin - center + 0.5) * ss);
                ww += k[x];
            }
            for (int x = 0; x < n; x++)
                if (ww != 0.0) k[x] /= ww;
        }
        int skip = w->count ? w->first + off - xmin : 0;  // weights before the image part
        int32_t sum = 0, on_image = 0;
        for (int x = 0; x < n; x++) {
            double v = k[x];
            int32_t q = v < 0 ? (int)(-0.5 + v * (1 << PRECISION_BITS)) : (int)(0.5 + v * (1 << PRECISION_BITS));
            sum += q;
            if (x >= skip && x < skip + w->count) a->k[w->k + (size_t)(x - skip)] = q, on_image += q;
        }
        w->ksum = sum;
        w->kbg = sum - on_image;
    }
    return VLM_OK;
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

// Pass 1: image rows r_first..r_first+r_count-1, horizontally resampled, to
// temp (r_count, tw, 3) for the tw columns whose window reaches the image.
// A window's background part adds bg times its weights' sum.
static int horizontal_pass(const PaddedImage *src, int r_first, int r_count, ResizeScratch *s) {
    const ResizeAxis *a = &s->x;
    int i0 = a->touch_first, i1 = a->touch_end;
    int xlo = a->win[i0].first, xhi = a->win[i1 - 1].first + a->win[i1 - 1].count;  // image columns read
    size_t row_bytes = (size_t)(i1 - i0) * 3, block_bytes = (size_t)(xhi - xlo) * LANES, on_image = 0;
    if (block_bytes > s->cap_block) {
        if (grow((void **)&s->block, &s->cap_block, block_bytes)) return VLM_ERR_FAIL;
        memset(s->block, 0, block_bytes);
    }
    for (int i = i0; i < i1; i++) on_image += (size_t)a->win[i].count;
    int32_t acc[LANES];
    for (int r0 = 0; r0 < r_count; r0 += BLOCK_ROWS) {
        int rr = r_count - r0 < BLOCK_ROWS ? r_count - r0 : BLOCK_ROWS;
        for (int r = 0; r < rr; r++) {
            const uint8_t *p = src->rgb + ((size_t)(r_first + r0 + r) * src->width + xlo) * 3;
            uint8_t *q = s->block + r * 3;
            for (int x = xlo; x < xhi; x++, p += 3, q += LANES) q[0] = p[0], q[1] = p[1], q[2] = p[2];
        }
        for (int i = i0; i < i1; i++) {
            const ResizeWindow *w = &a->win[i];
            // lanes of rows past rr hold stale bytes; their sums are never stored
            weighted_block(acc, s->block + (w->count ? (size_t)(w->first - xlo) * LANES : 0), a->k + w->k, w->count);
            int32_t b0 = src->bg[0] * w->kbg, b1 = src->bg[1] * w->kbg, b2 = src->bg[2] * w->kbg;
            for (int r = 0; r < rr; r++) {
                uint8_t *out = s->temp + row_bytes * (r0 + r) + 3 * (i - i0);
                out[0] = clip8(acc[3 * r] + b0), out[1] = clip8(acc[3 * r + 1] + b1), out[2] = clip8(acc[3 * r + 2] + b2);
            }
        }
        s->products += (uint64_t)rr * (on_image + (size_t)(i1 - i0));
    }
    return VLM_OK;
}

// Output columns [from, to) of a row whose columns hold the background row
// bg_cols alone: each window's sum is the value times its weights' sum.
static void background_columns(uint8_t *out, const uint8_t *bg_cols, int from, int to, int32_t weight_sum) {
    for (int l = 3 * from; l < 3 * to; l++) out[l] = clip8((1 << (PRECISION_BITS - 1)) + bg_cols[l] * weight_sum);
}

int resize_window(const PaddedImage *src, ResizeFilter filter, int out_w, int out_h, int x0, int y0, int cw, int ch,
                  uint8_t *dst, ResizeScratch *s) {
    if ((int)filter < 0 || (int)filter >= (int)(sizeof FILTERS / sizeof FILTERS[0]))
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "no resize filter %d", (int)filter);
    const Filter *f = &FILTERS[filter];
    if (x0 < 0 || y0 < 0 || cw <= 0 || ch <= 0 || x0 + cw > out_w || y0 + ch > out_h)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "resize window %dx%d at (%d,%d) outside %dx%d", cw, ch, x0, y0,
                        out_w, out_h);
    if (src->off_x < 0 || src->off_y < 0 || src->width > src->canvas_w - src->off_x ||
        src->height > src->canvas_h - src->off_y)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "image %dx%d at (%d,%d) outside its canvas %dx%d", src->width,
                        src->height, src->off_x, src->off_y, src->canvas_w, src->canvas_h);
    s->products = 0;
    if (axis_windows(f, &s->x, src->canvas_w, out_w, x0, cw, src->off_x, src->width, s) ||
        axis_windows(f, &s->y, src->canvas_h, out_h, y0, ch, src->off_y, src->height, s) ||
        grow((void **)&s->bg_cols, &s->cap_bg_cols, (size_t)cw * 3) ||
        grow((void **)&s->acc, &s->cap_acc, sizeof(int32_t) * 3 * (size_t)cw))
        return VLM_ERR_FAIL;
    // a background row, horizontally resampled: every window holds bg alone
    for (int i = 0; i < cw; i++)
        for (int c = 0; c < 3; c++) s->bg_cols[3 * i + c] = clip8((1 << (PRECISION_BITS - 1)) + src->bg[c] * s->x.win[i].ksum);
    s->products += (uint64_t)cw;
    // pass 1: the image rows the window needs, in the columns that reach the image
    int i0 = s->x.touch_first, tw = s->x.touch_end - i0, r_first = 0, r_count = 0;
    if (s->y.touch_end > s->y.touch_first) {
        const ResizeWindow *last = &s->y.win[s->y.touch_end - 1];
        r_first = s->y.win[s->y.touch_first].first;
        r_count = last->first + last->count - r_first;
    }
    size_t row_bytes = (size_t)tw * 3;
    if (tw > 0 && r_count > 0) {
        if (grow((void **)&s->temp, &s->cap_temp, row_bytes * (size_t)r_count) ||
            horizontal_pass(src, r_first, r_count, s) != VLM_OK)
            return VLM_ERR_FAIL;
    }
    // pass 2: vertical, a whole output row at a time (row-major reads); rows
    // outside the image are background rows, whose weights' sum stands for them
    const uint8_t *bg_cols = s->bg_cols;
    for (int j = 0; j < ch; j++) {
        const ResizeWindow *w = &s->y.win[j];
        uint8_t *out = dst + (size_t)cw * 3 * j;
        background_columns(out, bg_cols, 0, i0, w->ksum);
        background_columns(out, bg_cols, i0 + tw, cw, w->ksum);
        if (tw > 0) {
            const uint8_t *rows = w->count ? s->temp + row_bytes * (size_t)(w->first - r_first) : s->temp;
            weighted_lanes(s->acc, rows, row_bytes, s->y.k + w->k, w->count, row_bytes);
            const int32_t *acc = s->acc;  // a local: stores through uint8_t * could alias the field
            const uint8_t *bg = bg_cols + 3 * (size_t)i0;
            for (size_t l = 0; l < row_bytes; l++) out[3 * (size_t)i0 + l] = clip8(acc[l] + bg[l] * w->kbg);
        }
        s->products += (uint64_t)w->count * tw + (uint64_t)cw;
    }
    return VLM_OK;
}

int resize_bicubic_window(const PaddedImage *src, int out_w, int out_h, int x0, int y0, int cw, int ch,
                          uint8_t *dst, ResizeScratch *s) {
    return resize_window(src, RESIZE_BICUBIC, out_w, out_h, x0, y0, cw, ch, dst, s);
}
