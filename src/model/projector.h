// LLaVA's multimodal projector, the connector between the vision tower's
// features and the LLM's width: mlp2x_gelu (linear_1, GELU, linear_2) or
// linear (linear_1 alone), as upstream's build_vision_projector.
#ifndef VLM_MODEL_PROJECTOR_H
#define VLM_MODEL_PROJECTOR_H

#include "model/carve.h"
#include "model/config.h"
#include "model/weights.h"

typedef struct {
    float *h1, *g1;    // (rows, H) linear_1's output and its GELU (mlp2x_gelu)
    float *dh1, *dg1;  // their gradients
} ProjectorActs;

// For up to rows feature rows (call twice, see carve.h).
void projector_acts_carve(ProjectorActs *a, Carve *c, const LlavaConfig *cfg, size_t rows);
// feat (n, Cv) -> out (n, H)
void projector_forward(ProjectorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, const float *feat, float *out,
                       int n);
// dout (n, H) -> dfeat (n, Cv), written (NULL: not needed); weight
// gradients accumulate into g (NULL: frozen).
void projector_backward(ProjectorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, LlavaWeights *g,
                        const float *dout, const float *feat, float *dfeat, int n);

#endif
