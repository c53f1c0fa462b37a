// Format detection and dispatch, see image.h.
#include "image/image.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"

ImageFormat image_sniff(const void *data, size_t size) {
    const unsigned char *h = data;
    if (size >= 3 && h[0] == 0xff && h[1] == 0xd8 && h[2] == 0xff) return IMAGE_JPEG;
    if (size >= 8 && memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0) return IMAGE_PNG;
    if (size >= 6 && (memcmp(h, "GIF87a", 6) == 0 || memcmp(h, "GIF89a", 6) == 0)) return IMAGE_GIF;
    return IMAGE_UNKNOWN;
}

const char *image_format_name(ImageFormat f) {
    static const char *const names[] = {"unknown", "JPEG", "PNG", "GIF"};
    return names[f];
}

static long long max_pixels = IMAGE_MAX_PIXELS;

void image_set_max_pixels(long long limit) { max_pixels = limit > 0 && limit < IMAGE_MAX_PIXELS ? limit : IMAGE_MAX_PIXELS; }

int image_check_size(long long width, long long height, const char *name) {
    if (width <= 0 || height <= 0)
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "image has no pixels (%lld x %lld)", width, height);
    if (width > max_pixels / height)
        return vlm_fail(VLM_ERR_INPUT, name, NULL,
                        "image of %lld x %lld pixels exceeds the limit of %lld (a decompression bomb, as Pillow says)",
                        width, height, max_pixels);
    return VLM_OK;
}

int image_alloc(Image *im, int width, int height, const char *name) {
    im->width = im->height = 0;
    im->rgb = NULL;
    int rc = image_check_size(width, height, name);
    if (rc != VLM_OK) return rc;
    im->rgb = vlm_malloc((size_t)width * height * 3);
    if (!im->rgb) return VLM_ERR_FAIL;
    im->width = width;
    im->height = height;
    return VLM_OK;
}

void image_free(Image *im) {
    free(im->rgb);
    im->rgb = NULL;
    im->width = im->height = 0;
}

int image_decode_memory(const void *data, size_t size, const char *name, Image *out) {
    out->rgb = NULL;
    out->width = out->height = 0;
    switch (image_sniff(data, size)) {
    case IMAGE_JPEG: return jpeg_decode(data, size, name, out);
    case IMAGE_PNG: return png_decode(data, size, name, out);
    case IMAGE_GIF: return gif_decode(data, size, name, out);
    default: return vlm_fail(VLM_ERR_INPUT, name, NULL, "not a JPEG, PNG or GIF file");
    }
}

int image_decode_file(const char *path, Image *out) {
    out->rgb = NULL;
    out->width = out->height = 0;
    if (!file_exists(path)) return vlm_fail(VLM_ERR_INPUT, path, NULL, "image not found");
    MappedFile m;
    int rc = file_map(path, &m);
    if (rc != VLM_OK) return rc;
    rc = image_decode_memory(m.data, m.size, path, out);
    file_unmap(&m);
    return rc;
}
