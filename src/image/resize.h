// Pillow's BICUBIC and BILINEAR resize (Resample.c), bit for bit: one
// convolution path for both, the filter being a kernel and its support
// (Pillow's struct filter; bicubic: Keys' cubic, a = -0.5, support 2;
// bilinear: the triangle, support 1): coefficients in double,
// rounded to 22-bit fixed point, a horizontal pass into an 8-bit
// intermediate, then a vertical pass, each pass skipped when its size is
// unchanged (here: a single weight of 1.0, which gives the same bytes). Any
// window of the resized image can be computed alone (each output pixel
// depends only on its own coefficients), so a centre crop costs only the
// pixels it keeps.
#ifndef VLM_IMAGE_RESIZE_H
#define VLM_IMAGE_RESIZE_H

#include <stddef.h>
#include <stdint.h>

// The source: an RGB image (height rows of width * 3 bytes) at (off_x, off_y)
// on a canvas_w x canvas_h canvas of colour bg that is never materialised
// (LLaVA's expand2square); an unpadded image is a canvas of its own size.
// Only pixels whose kernel window reaches the image are filtered: elsewhere
// a window holds bg alone, and a constant's weighted sum is bg times the sum
// of the weights, in the same integers as Pillow's. So the work and memory
// follow the image and the output window, not the canvas.
typedef struct {
    const uint8_t *rgb;
    int width, height;
    int canvas_w, canvas_h, off_x, off_y;
    uint8_t bg[3];
} PaddedImage;

// One output pixel's window along an axis, reduced to its image part.
typedef struct {
    int first, count;   // the image pixels in its window: the first, how many (0 when only background)
    int32_t kbg, ksum;  // the sums of its weights: over the background part, over the whole window
    size_t k;           // where its count weights start in ResizeAxis.k
} ResizeWindow;

// One axis' windows for the outputs of the window; weights are kept for the
// image parts only.
typedef struct {
    ResizeWindow *win;
    int32_t *k;
    int touch_first, touch_end;  // the outputs with an image part, [touch_first, touch_end)
    size_t cap_win, cap_k;
} ResizeAxis;

// Buffers reused across calls (grown on demand, freed by resize_scratch_free).
typedef struct {
    ResizeAxis x, y;
    uint8_t *bg_cols;  // a background row, horizontally resampled (cw, 3)
    uint8_t *temp;     // image rows horizontally resampled, only the columns with an image part
    double *kd;        // one kernel in double precision
    int32_t *acc;      // one output row of vertical sums
    uint8_t *block;    // a block of image rows, transposed
    size_t cap_bg_cols, cap_temp, cap_kd, cap_acc, cap_block;
    uint64_t products;  // the last call's work: products of a pixel (3 channels) by a weight
} ResizeScratch;

void resize_scratch_free(ResizeScratch *s);
// The bytes the buffers hold.
size_t resize_scratch_bytes(const ResizeScratch *s);

// Pillow's resampling filters (values are ours, not Pillow's Resampling codes).
typedef enum { RESIZE_BICUBIC, RESIZE_BILINEAR } ResizeFilter;

// Resizes the canvas to (out_w, out_h) with filter and writes the window of
// cw x ch pixels at (x0, y0) of the result to dst (ch, cw, 3). The window
// must lie inside the result, the image inside the canvas.
int resize_window(const PaddedImage *src, ResizeFilter filter, int out_w, int out_h, int x0, int y0, int cw, int ch,
                  uint8_t *dst, ResizeScratch *s);
// resize_window with RESIZE_BICUBIC (CLIP's preprocessing).
int resize_bicubic_window(const PaddedImage *src, int out_w, int out_h, int x0, int y0, int cw, int ch,
                          uint8_t *dst, ResizeScratch *s);

#endif
