// JPEG decoding with libjpeg-turbo, matching Pillow's JpegImagePlugin:
// default decoder settings (islow IDCT, fancy upsampling), 1 component -> L,
// 3 -> RGB, 4 -> CMYK read with Adobe's inverted polarity ("CMYK;I", which
// Pillow always assumes), then Pillow's convert("RGB") arithmetic.
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>  // before jpeglib.h, which needs FILE and size_t
#include <stdlib.h>

#include <jerror.h>
#include <jpeglib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "image/image.h"

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} JpegErrors;

static void on_error(j_common_ptr cinfo) {
    JpegErrors *e = (JpegErrors *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

// libjpeg reports damaged data as warnings and goes on with gray blocks;
// Pillow raises on a truncated file and we refuse every damaged stream,
// except stray bytes between markers, which lose no pixel data.
static void on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace messages
    if (cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
    on_error(cinfo);
}

// Pillow's MULDIV255: a * b / 255 rounded, in integers.
static inline int muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

static inline uint8_t clip8(int v) { return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v; }

// one decoded row (JCS_GRAYSCALE or JCS_CMYK) -> RGB
static void row_to_rgb(const uint8_t *in, int components, int width, uint8_t *out) {
    if (components == 1) {
        for (int x = 0; x < width; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
    } else {
        for (int x = 0; x < width; x++, in += 4, out += 3) {
            // "CMYK;I" unpacking inverts, then Pillow's cmyk2rgb
            int c = 255 - in[0], m = 255 - in[1], y = 255 - in[2], nk = in[3];
            out[0] = clip8(nk - muldiv255(c, nk));
            out[1] = clip8(nk - muldiv255(m, nk));
            out[2] = clip8(nk - muldiv255(y, nk));
        }
    }
}

int jpeg_decode(const void *data, size_t size, const char *name, Image *out) {
    struct jpeg_decompress_struct cinfo;
    JpegErrors err;
    uint8_t *volatile row = NULL;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = on_error;
    err.mgr.emit_message = on_message;
    snprintf(err.message, sizeof err.message, "out of memory");
    out->rgb = NULL;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(row);
        image_free(out);
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "corrupt JPEG: %s", err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int components = cinfo.num_components;
    if (components == 1) cinfo.out_color_space = JCS_GRAYSCALE;
    else if (components == 3) cinfo.out_color_space = JCS_RGB;
    else if (components == 4) cinfo.out_color_space = JCS_CMYK;
    else {
        jpeg_destroy_decompress(&cinfo);
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "cannot handle %d-component JPEG images", components);
    }
    if (image_alloc(out, (int)cinfo.image_width, (int)cinfo.image_height, name) != VLM_OK) {
        jpeg_destroy_decompress(&cinfo);
        return VLM_ERR_INPUT;
    }
    jpeg_start_decompress(&cinfo);
    int w = out->width;
    row = vlm_malloc((size_t)w * 4);
    if (!row) longjmp(err.jump, 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = out->rgb + (size_t)cinfo.output_scanline * w * 3;
        JSAMPROW rows[1] = {components == 3 ? dst : row};  // RGB straight into place
        jpeg_read_scanlines(&cinfo, rows, 1);
        if (components != 3) row_to_rgb(row, components, w, dst);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return VLM_OK;
}
