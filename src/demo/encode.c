// The demo's image files: PNG (libpng) and JPEG (libjpeg-turbo's encoder, so
// the compression distortion is real JPEG at a real quality), in memory.
#include <stdio.h>   // FILE, size_t: jpeglib.h needs them first
#include <stdlib.h>  // free
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>  // memcpy

#include "core/alloc.h"
#include "core/error.h"
#include "demo/demo.h"

// ---- PNG

typedef struct {
    unsigned char *data;
    size_t size, cap;
    bool oom;
} ByteBuf;

static void png_on_write(png_structp png, png_bytep src, png_size_t n) {
    ByteBuf *b = png_get_io_ptr(png);
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->size + n) cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown) {
            b->oom = true;
            png_error(png, "out of memory");
        }
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->size, src, n);
    b->size += n;
}

static void png_on_flush(png_structp png) { (void)png; }

int demo_encode_png(const Image *im, unsigned char **data, size_t *size) {
    ByteBuf buf = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(buf.data);
        return vlm_fail(VLM_ERR_FAIL, "demo image", NULL, "PNG encoding failed%s", buf.oom ? ": out of memory" : "");
    }
    png_set_write_fn(png, &buf, png_on_write, png_on_flush);
    png_set_IHDR(png, info, (png_uint_32)im->width, (png_uint_32)im->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < im->height; y++) png_write_row(png, im->rgb + (size_t)y * im->width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *data = buf.data;
    *size = buf.size;
    return VLM_OK;
}

// ---- JPEG

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
} JpegError;

static void jpeg_on_error(j_common_ptr cinfo) { longjmp(((JpegError *)cinfo->err)->jump, 1); }

int demo_encode_jpeg(const Image *im, int quality, bool chroma_444, unsigned char **data, size_t *size) {
    struct jpeg_compress_struct cinfo;
    JpegError err;
    // jpeg_mem_dest allocates the buffer (and moves it when it grows) through this pointer
    unsigned char *mem = NULL;
    unsigned long out_size = 0;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(mem);
        return vlm_fail(VLM_ERR_FAIL, "demo image", NULL, "JPEG encoding failed");
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &mem, &out_size);
    cinfo.image_width = (JDIMENSION)im->width;
    cinfo.image_height = (JDIMENSION)im->height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (chroma_444) cinfo.comp_info[0].h_samp_factor = cinfo.comp_info[0].v_samp_factor = 1;
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = im->rgb + (size_t)cinfo.next_scanline * im->width * 3;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *data = mem;
    *size = out_size;
    return VLM_OK;
}

// ---- a scene's file

int demo_scene_file(const DemoScene *s, int size, Rng *rng, unsigned char **data, size_t *bytes, const char **ext) {
    Image im = {0};
    int rc = demo_draw(s, size, &im);
    if (rc == VLM_OK) rc = demo_distort(&im, s, size, rng);
    if (rc == VLM_OK) {
        if (s->jpeg_file) {
            int level = s->distortion == DIST_JPEG ? s->level : 0;
            // the distortion levels subsample chroma as most JPEGs do; the near-lossless files do not
            rc = demo_encode_jpeg(&im, demo_jpeg_quality(level), level == 0, data, bytes);
            *ext = ".jpg";
        } else {
            rc = demo_encode_png(&im, data, bytes);
            *ext = ".png";
        }
    }
    image_free(&im);
    return rc;
}
