// Decoded images: 8-bit RGB, row-major, 3 bytes per pixel, exactly what
// Pillow's Image.open(path).convert("RGB") holds (alpha dropped, palette and
// gray expanded, CMYK converted, EXIF orientation NOT applied).
#ifndef VLM_IMAGE_IMAGE_H
#define VLM_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int width, height;
    uint8_t *rgb;  // (height, width, 3)
} Image;

typedef enum { IMAGE_UNKNOWN, IMAGE_JPEG, IMAGE_PNG, IMAGE_GIF } ImageFormat;

// Pillow refuses images above this many pixels (DecompressionBombError,
// twice Image.MAX_IMAGE_PIXELS); so do we, before allocating anything.
#define IMAGE_MAX_PIXELS 178956970LL

// The format by the first bytes (the file name's extension is not trusted:
// LLaVA's data has GIFs named .jpg).
ImageFormat image_sniff(const void *data, size_t size);
const char *image_format_name(ImageFormat f);

// Decodes a whole file; errors name the file and the reason (not found,
// unsupported format, truncated, corrupt). out->rgb is freed by image_free.
int image_decode_file(const char *path, Image *out);
// The same over bytes in memory; name is used in errors.
int image_decode_memory(const void *data, size_t size, const char *name, Image *out);
void image_free(Image *im);

// The size limits: positive sides, at most IMAGE_MAX_PIXELS (errors name `name`).
// image_set_max_pixels lowers the limit (the fuzz harness does: a 170M-pixel
// canvas declared by a 1 KB GIF is legal, but takes seconds under ASan).
void image_set_max_pixels(long long limit);
int image_check_size(long long width, long long height, const char *name);
// Allocates an image after image_check_size.
int image_alloc(Image *im, int width, int height, const char *name);

// Per-format decoders (image_decode_memory dispatches by image_sniff).
int jpeg_decode(const void *data, size_t size, const char *name, Image *out);
int png_decode(const void *data, size_t size, const char *name, Image *out);
int gif_decode(const void *data, size_t size, const char *name, Image *out);

#endif
