// The vision tower's image preprocessing, exactly as the recipes run it:
//   LLaVA's expand2square (optional, `image_aspect_ratio pad`): the image
//     centred on a square of colour int(mean * 255), (122,116,104) for CLIP;
//   transformers' CLIPImageProcessor (slow, Pillow path): shortest edge to
//     `shortest_edge` with Pillow BICUBIC (long edge int(S * long / short)),
//     centre crop, x rescale_factor (float64, then float32), (x - mean) / std
//     in float32, CHW.
// Settings come from a preprocessor_config.json or the CLIP defaults.
#ifndef VLM_IMAGE_PREPROCESS_H
#define VLM_IMAGE_PREPROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "image/image.h"
#include "image/resize.h"

typedef struct {
    int shortest_edge;      // resize target of the shorter side
    int crop_h, crop_w;     // centre crop
    bool pad;               // expand to square first (LLaVA image_aspect_ratio "pad")
    bool do_rescale, do_normalize;
    double rescale_factor;
    float mean[3], std[3];  // float32, as numpy holds them
    double mean_f64[3];     // as written, for the pad colour
    bool crop_round;        // the centre crop's offsets round((d) / 2), halves to even (torchvision's
                            // CenterCrop), not (d) // 2 (CLIPImageProcessor's)
} Preprocessor;

// CLIP's defaults at size S (shortest edge and crop S), no pad.
void preprocessor_default(Preprocessor *p, int size);
// Reads a preprocessor_config.json (CLIPImageProcessor fields; resample must
// be 3 = bicubic). Unknown processors or unsupported settings are errors.
int preprocessor_load(Preprocessor *p, const char *path);
// open_clip's eval transform at size S as OLA-VLM's CLIP-ConvNeXt tower sets it up (torchvision
// Resize(S) bicubic on the PIL image, CenterCrop(S), ToTensor, Normalize(mean, std)): the same
// resize and rescale as CLIPImageProcessor's (ToTensor's float32 v / 255 equals its float64
// v * (1/255) rounded, for every uint8), the crop rounding torchvision's; the pad colour is
// CLIP's mean (upstream's ProcessorWrapper.image_mean), whatever mean normalises.
void preprocessor_open_clip(Preprocessor *p, int size, const double mean[3], const double std[3]);
// Sets shortest edge and crop to S.
void preprocessor_set_size(Preprocessor *p, int size);
// A model folder's preprocessing: its preprocessor_config.json when it has
// one, else CLIP's defaults; always at the vision tower's size; pad as given
// (LLaVA's image_aspect_ratio pad).
int preprocessor_for_model(Preprocessor *p, const char *model_dir, int size, bool pad);

// The pad colour: int(mean * 255) per channel.
void preprocessor_pad_colour(const Preprocessor *p, uint8_t rgb[3]);

// Buffers reused from image to image (one per thread).
typedef struct {
    ResizeScratch resize;
    uint8_t *crop;  // the uint8 crop
    size_t cap_crop;
} PreprocessScratch;

void preprocess_scratch_free(PreprocessScratch *s);

// One image -> pixel_values (3, crop_h, crop_w) float32. crop_u8, when not
// NULL, receives the uint8 image after resize and crop (crop_h, crop_w, 3),
// the stage Pillow compares bit for bit. Errors name `name`.
int image_preprocess(const Image *im, const Preprocessor *p, float *pixel_values, uint8_t *crop_u8,
                     PreprocessScratch *scratch, const char *name);

// An image file decoded and preprocessed (errors name path); *width and
// *height (either may be NULL) receive its size.
int image_preprocess_file(const char *path, const Preprocessor *p, float *pixel_values, PreprocessScratch *scratch,
                          int *width, int *height);

#endif
