// The benchmarks' "small" configs (bench_model.c describes them): LLaVA, or
// mPLUG-Owl2 with the same ViT and LLaMA sizes.
#ifndef VLM_BENCH_SMALL_CONFIG_H
#define VLM_BENCH_SMALL_CONFIG_H

#include <stdbool.h>

#include "core/rng.h"
#include "model/llava.h"
#include "text/template.h"  // IGNORE_INDEX

static inline LlavaConfig bench_small_config(bool owl2) {
    LlavaConfig cfg = {
        .vision = {.hidden = 384, .intermediate = 1536, .layers = 6, .heads = 6, .image_size = 224, .patch = 16, .eps = 1e-5f},
        .text = {.hidden = 512, .intermediate = 1376, .layers = 8, .heads = 8, .kv_heads = 4, .vocab = 32000,
                 .rms_eps = 1e-5f, .rope = {.theta = 10000.0f}},
        .projector = PROJECTOR_MLP2X_GELU, .feature_layer = -2, .image_token_index = 32000 - 1};
    if (owl2) {
        cfg.arch = ARCH_MPLUG_OWL2, cfg.projector = PROJECTOR_ABSTRACTOR, cfg.feature_layer = -1, cfg.feature_full = true;
        cfg.vision.eps = 1e-6f, cfg.vision.post_norm = true;
        cfg.text.kv_heads = 8, cfg.text.rms_eps = 1e-6f, cfg.text.multiway = true;
        cfg.abstractor = (AbstractorConfig){.hidden = 384, .encoder_hidden = 384, .layers = 2, .heads = 6,
                                            .intermediate = 1024, .queries = 64, .grid = 14, .eps = 1e-6f};
    }
    return cfg;
}

// B samples of T tokens, each with one image (3 x S x S) after its first token, the first 8
// tokens without a target; random ids and pixels from rng.
static inline void bench_random_batch(Rng *rng, int B, int T, int S, int32_t *ids, int32_t *labels, int *lengths,
                                      float *pixels) {
    for (int b = 0; b < B; b++) {
        lengths[b] = T;
        for (int t = 0; t < T; t++) {
            ids[b * T + t] = t == 1 ? IMAGE_TOKEN_INDEX : (int32_t)rng_below(rng, 31000) + 2;
            labels[b * T + t] = t < 8 ? IGNORE_INDEX : ids[b * T + t];
        }
    }
    for (long i = 0; i < (long)B * 3 * S * S; i++) pixels[i] = rng_normal(rng);
}

#endif
