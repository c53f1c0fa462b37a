// A LLaVA model run for inference: load a checkpoint, check a prompt's ids,
// preprocess its image, and get the next-token logits after a sequence.
// There is no KV cache: every call runs the whole sequence (image included),
// which is what the tiny models and the checks need. Shared by `vlm forward`,
// `vlm generate`, `vlm eval` and the trainer's demo.
#ifndef VLM_EVAL_INFER_H
#define VLM_EVAL_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/preprocess.h"
#include "model/llava.h"

typedef struct {
    LlavaConfig cfg;
    LlavaParams params;  // held here until the model is planned, then owned by m
    LlavaModel m;
    bool planned;
    Preprocessor pre;    // the model's preprocessor_config.json, or CLIP's defaults at the tower's size
    PreprocessScratch scratch;
    float *pixels;       // (3, S, S) of the current image
    int32_t *labels;     // (m.max_text) all IGNORE_INDEX
} Infer;

// Loads a llava-hf directory, or with vision_tower an original LLaVA
// directory and its CLIP directory. pad: LLaVA's image_aspect_ratio pad.
// model_dir: a llava-hf / mPLUG-Owl2 folder, an original LLaVA one with vision_tower, or a LoRA
// adapter folder (PEFT's files; run unmerged over the base its adapter_config.json names).
int infer_open(Infer *s, const char *model_dir, const char *vision_tower, bool pad);
void infer_close(Infer *s);

// Every id inside the vocabulary (IMAGE_TOKEN_INDEX aside), at most one
// image, not empty. *n_images receives the image count.
int infer_check_ids(const Infer *s, const int32_t *ids, size_t n, int *n_images);
// Decodes and preprocesses an image file into s->pixels (errors name it).
int infer_load_image(Infer *s, const char *path);
// Plans activations for sequences of up to max_text text tokens (re-plans
// when a longer one comes; plan once up front to avoid that).
int infer_reserve(Infer *s, int max_text);
// Runs ids (n tokens, n_images of them IMAGE_TOKEN_INDEX, s->pixels the
// image) and points *logits at the next-token logits (cfg.text.vocab floats,
// valid until the next call). *seq_len (may be NULL) receives the spliced length.
int infer_next_logits(Infer *s, const int32_t *ids, int n, int n_images, const float **logits, int *seq_len);

#endif
