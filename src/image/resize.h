// Pillow's BICUBIC resize (Resample.c), bit for bit: coefficients in double,
// rounded to 22-bit fixed point, a horizontal pass into an 8-bit
// intermediate, then a vertical pass, each pass skipped when its size is
// unchanged. Any window of the resized image can be computed alone (each
// output pixel depends only on its own coefficients), so a centre crop costs
// only the pixels it keeps.
#ifndef VLM_IMAGE_RESIZE_H
#define VLM_IMAGE_RESIZE_H

#include <stddef.h>
#include <stdint.h>

// Rows of an RGB source image, fetched one at a time (lets a padded image be
// resized without materialising it). The returned row stays valid until the
// next call; a source returns the same pointer for consecutive rows only
// when they hold the same pixels (the resize then reuses the result).
typedef struct {
    int width, height;
    const uint8_t *(*row)(void *ctx, int y);
    void *ctx;
} RowSource;

// Buffers reused across calls (grown on demand, freed by resize_scratch_free).
typedef struct {
    int *bounds_x, *bounds_y;
    int32_t *k_x, *k_y;
    uint8_t *temp;     // the horizontally resampled rows
    double *kd;        // one kernel in double precision
    int32_t *acc;      // one output row of vertical sums
    uint8_t *block;    // a block of source rows, transposed
    size_t cap_bx, cap_by, cap_kx, cap_ky, cap_temp, cap_kd, cap_acc, cap_block;
} ResizeScratch;

void resize_scratch_free(ResizeScratch *s);

// Resizes src to (out_w, out_h) and writes the window of cw x ch pixels at
// (x0, y0) of the result to dst (ch, cw, 3). The window must lie inside.
int resize_bicubic_window(const RowSource *src, int out_w, int out_h, int x0, int y0, int cw, int ch,
                          uint8_t *dst, ResizeScratch *s);

#endif
