// The connector between the vision tower and the LLM (the composition's
// "vision -> connector -> splice"): LLaVA's projector (mlp2x_gelu, linear;
// rows map one to one) or mPLUG-Owl2's visual abstractor (every ViT row in,
// queries + vit_eos out), by cfg->projector.
#ifndef VLM_MODEL_CONNECTOR_H
#define VLM_MODEL_CONNECTOR_H

#include "model/abstractor.h"
#include "model/projector.h"

typedef struct {
    ProjectorActs projector;
    AbstractorActs abstractor;
} ConnectorActs;

void connector_acts_carve(ConnectorActs *a, Carve *c, const LlavaConfig *cfg, int max_images);
void connector_init(ConnectorActs *a, const LlavaConfig *cfg);  // fixed tables, once after carving
void connector_acts_free(ConnectorActs *a);
// feat (n, llava_feature_rows, Cv) -> out (n, llava_image_tokens, H)
void connector_forward(ConnectorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, const float *feat, float *out,
                       int n);
// dout (n, llava_image_tokens, H) -> dfeat (n, llava_feature_rows, Cv), written
// (NULL: not needed); weight gradients accumulate into g (NULL: frozen).
void connector_backward(ConnectorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, LlavaWeights *g,
                        const float *dout, const float *feat, float *dfeat, int n);

#endif
