// PNG decoding with libpng, matching Pillow's PngImagePlugin modes and
// convert("RGB"): gray 1/2/4-bit scaled to 8 (x255, x85, x17), palette
// expanded, alpha dropped, 16-bit colour and alpha images keep the high byte
// ("RGB;16B", "LA;16B", "RGBA;16B"), 16-bit gray is mode I;16, whose RGB
// conversion clips values above 255. No gamma or colour management.
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "image/image.h"

typedef struct {
    const unsigned char *data;
    size_t size, pos;
    char message[256];
} PngSource;

static void on_read(png_structp png, png_bytep dst, png_size_t n) {
    PngSource *s = png_get_io_ptr(png);
    if (n > s->size - s->pos) png_error(png, "file is truncated");
    memcpy(dst, s->data + s->pos, n);
    s->pos += n;
}

static void on_error(png_structp png, png_const_charp msg) {
    PngSource *s = png_get_error_ptr(png);
    snprintf(s->message, sizeof s->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

int png_decode(const void *data, size_t size, const char *name, Image *out) {
    PngSource src = {.data = data, .size = size, .pos = 0, .message = "out of memory"};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    out->rgb = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return vlm_fail(VLM_ERR_FAIL, name, NULL, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        image_free(out);
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "corrupt PNG: %s", src.message);
    }
    png_set_read_fn(png, &src, on_read);
    // Pillow accepts any size its memory allows; libpng's default cap is 1M per side
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (image_check_size(w, h, name) != VLM_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return VLM_ERR_INPUT;
    }
    bool gray16 = (type == PNG_COLOR_TYPE_GRAY && depth == 16);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !gray16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (image_alloc(out, (int)w, (int)h, name) != VLM_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return VLM_ERR_INPUT;
    }
    size_t total;
    if (!size_mul(rowbytes, h, &total) || !(pixels = vlm_malloc(total)) || !(rows = vlm_malloc(sizeof(png_bytep) * h)))
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + y * rowbytes;
    png_read_image(png, rows);  // the IEND chunk is not required, as in Pillow

    uint8_t *dst = out->rgb;
    for (png_uint_32 y = 0; y < h; y++) {
        const uint8_t *p = rows[y];
        for (png_uint_32 x = 0; x < w; x++, dst += 3) {
            if (gray16) {  // big-endian 16-bit, I;16 -> RGB clips at 255
                int v = (p[2 * x] << 8) | p[2 * x + 1];
                dst[0] = dst[1] = dst[2] = (uint8_t)(v > 255 ? 255 : v);
            } else if (channels <= 2) {  // gray, gray + alpha
                dst[0] = dst[1] = dst[2] = p[x * channels];
            } else {  // RGB, RGBA
                dst[0] = p[x * channels];
                dst[1] = p[x * channels + 1];
                dst[2] = p[x * channels + 2];
            }
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(rows);
    return VLM_OK;
}
