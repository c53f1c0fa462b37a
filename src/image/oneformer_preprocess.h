// transformers' OneFormerImageProcessor (4.41.2, the slow Pillow path) on one
// image, as OneFormerProcessor(image, ["panoptic"]) gives its pixel_values:
//   resize: size {shortest_edge, longest_edge} (the short side to shortest_edge,
//     the long one to int(S * long / short), both scaled down when that passes
//     longest_edge: get_resize_output_image_size) or {height, width}; Pillow's
//     resize of the uint8 image with `resample` (2 BILINEAR, the default, or 3 BICUBIC);
//   rescale: x rescale_factor in float64, stored as float32;
//   normalize: (x - mean) / std in float32; CHW;
//   pad: to the largest image of the batch: one image at a time, none.
// Settings from the folder's preprocessor_config.json, absent keys taking
// OneFormerImageProcessor's defaults (size: shortest_edge 800, longest_edge
// max_size (1333); ImageNet's mean and std; rescale 1/255). The task inputs,
// class metadata and segmentation maps are not this module's.
#ifndef VLM_IMAGE_ONEFORMER_PREPROCESS_H
#define VLM_IMAGE_ONEFORMER_PREPROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "image/image.h"
#include "image/resize.h"

typedef struct {
    bool do_resize, do_rescale, do_normalize;
    int shortest_edge, longest_edge;  // shortest_edge 0: a fixed height x width
    int height, width;
    ResizeFilter filter;
    double rescale_factor;
    float mean[3], std[3];  // float32, as numpy holds them
} OneFormerPreprocessor;

void oneformer_preprocessor_default(OneFormerPreprocessor *p);
// Reads a preprocessor_config.json; unsupported settings (a resample other than
// bilinear or bicubic, a size OneFormer's resize refuses) are errors naming the key.
int oneformer_preprocessor_load(OneFormerPreprocessor *p, const char *path);

// The size of pixel_values for an image of w x h (errors name `name`).
int oneformer_output_size(const OneFormerPreprocessor *p, int w, int h, int *out_w, int *out_h, const char *name);

// im -> pixel_values (3, out_h, out_w) of oneformer_output_size; u8 holds the
// resized image (out_h, out_w, 3) on the way (unused without do_resize).
int oneformer_preprocess(const OneFormerPreprocessor *p, const Image *im, float *pixel_values, uint8_t *u8,
                         ResizeScratch *scratch, const char *name);

#endif
