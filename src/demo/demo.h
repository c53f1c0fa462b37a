// The demo's synthetic dataset: small images of one coloured shape on a plain
// background (the high-level content), degraded by one known distortion at a
// known level (the low-level content), with a ground-truth quality that falls
// with the level. From these, LLaVA-format training files (captions for the
// plain template, high-level and Q-Instruct-style instructions for v1),
// Q-Bench-style evaluation files (A1 multiple choice, A3 scores) on held-out
// images, and a text corpus for training the demo tokenizer.
//
// Everything is a function of the seed: scene i of a split draws from its own
// Philox stream, the conversations from theirs, so the files are identical
// for the same (seed, size, counts) on any machine.
#ifndef VLM_DEMO_DEMO_H
#define VLM_DEMO_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "image/image.h"

// ---- scenes (draw.c)

typedef enum { SHAPE_CIRCLE, SHAPE_SQUARE, SHAPE_TRIANGLE, SHAPE_CROSS, DEMO_N_SHAPES } DemoShape;
typedef enum { COLOUR_RED, COLOUR_GREEN, COLOUR_BLUE, COLOUR_YELLOW, COLOUR_PURPLE, DEMO_N_COLOURS } DemoColour;
typedef enum { BACKGROUND_GRAY, BACKGROUND_BLACK, BACKGROUND_WHITE, DEMO_N_BACKGROUNDS } DemoBackground;

// One distortion per image; level 0 (pristine) only with DIST_NONE.
typedef enum {
    DIST_NONE, DIST_BLUR, DIST_NOISE, DIST_JPEG, DIST_BRIGHT, DIST_DARK, DIST_CONTRAST, DEMO_N_DISTORTIONS
} DemoDistortion;
#define DEMO_N_LEVELS 4  // 0 pristine, 1 slight, 2 moderate, 3 severe

typedef struct {
    int shape, colour, background;  // DemoShape, DemoColour, DemoBackground
    float cx, cy, radius;           // in pixels
    float gradient;                 // background brightness change from top to bottom (0-255 units)
    int distortion, level;          // DemoDistortion, 0..3
    bool jpeg_file;                 // written as .jpg (always for DIST_JPEG; some others at quality 95)
    bool rated_good;                // the "annotator's" verdict, drawn with demo_p_good(level)
} DemoScene;

const char *demo_shape_name(int shape);            // "circle"
const char *demo_colour_name(int colour);          // "red"
const char *demo_background_name(int background);  // "gray"
const char *demo_distortion_name(int distortion);  // "blur", "noise", "jpeg", ... ("none")

// Draws a scene at size x size with every random choice from rng.
void demo_scene_sample(DemoScene *s, int size, Rng *rng);
// Renders the undistorted scene (4x4 supersampled edges) into im (allocated here).
int demo_draw(const DemoScene *s, int size, Image *im);

// ---- distortions and quality (distort.c)

// Ground-truth quality in [0, 1] (strictly decreasing in level) and as MOS 1-5.
double demo_quality(int level);
double demo_mos(int level);
// The probability that the rating answer for a scene of this level is "good".
double demo_p_good(int level);
// Distortion strengths per level (index 0 unused), exposed for the tests.
float demo_blur_sigma(int level, int size);     // Gaussian sigma in pixels
float demo_noise_sigma(int level);              // per-channel Gaussian noise, 0-255 units
int demo_jpeg_quality(int level);               // libjpeg quality (level 0: the near-lossless 95)

int demo_gaussian_blur(Image *im, float sigma);
void demo_add_noise(Image *im, float sigma, Rng *rng);
void demo_exposure(Image *im, float gain, float offset);  // clamp(x * gain + offset)
void demo_reduce_contrast(Image *im, float alpha);        // towards the image's mean grey
// Applies s's distortion in place; DIST_JPEG is applied by the encoder.
int demo_distort(Image *im, const DemoScene *s, int size, Rng *rng);

// ---- encoders (encode.c): whole files in memory, freed with free()

int demo_encode_png(const Image *im, unsigned char **data, size_t *size);
// quality 1-100; chroma_444 keeps full colour resolution (no 4:2:0 subsampling)
int demo_encode_jpeg(const Image *im, int quality, bool chroma_444, unsigned char **data, size_t *size);
// The image file of a scene: drawn, distorted, encoded (".png" or ".jpg" in *ext).
int demo_scene_file(const DemoScene *s, int size, Rng *rng, unsigned char **data, size_t *bytes, const char **ext);

// ---- the dataset (write.c)

typedef struct {
    uint64_t seed;
    int size;     // image side in pixels
    int n_train;  // training images
    int n_eval;   // held-out evaluation images
} DemoOptions;

#define DEMO_DEFAULT_SEED 1234
#define DEMO_DEFAULT_SIZE 32
#define DEMO_DEFAULT_TRAIN 4000  // what `make demo` trains on
#define DEMO_DEFAULT_EVAL 300

typedef struct {
    size_t n_images, n_jpeg;
    size_t n_pt, n_high, n_qinstruct, n_text_only;
    size_t n_eval_high, n_eval_mcq, n_eval_score;
    size_t image_bytes;
} DemoStats;

// Writes into out_dir (created if missing): images/, pt.json, high.json,
// qinstruct.json, eval_high.json, eval_mcq.json, eval_score.json,
// scenes.json (every image's ground truth) and corpus.txt.
int demo_write_dataset(const char *out_dir, const DemoOptions *opt, DemoStats *stats);

#endif
