// The connector, see connector.h.
#include "model/connector.h"

void connector_acts_carve(ConnectorActs *a, Carve *c, const LlavaConfig *cfg, int max_images) {
    if (cfg->projector == PROJECTOR_ABSTRACTOR) abstractor_acts_carve(&a->abstractor, c, cfg, max_images);
    else projector_acts_carve(&a->projector, c, cfg, (size_t)max_images * llava_feature_rows(cfg));
}

void connector_init(ConnectorActs *a, const LlavaConfig *cfg) {
    if (cfg->projector == PROJECTOR_ABSTRACTOR) abstractor_init_tables(&a->abstractor, cfg);
}

void connector_acts_free(ConnectorActs *a) { abstractor_acts_free(&a->abstractor); }

void connector_forward(ConnectorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, const float *feat, float *out,
                       int n) {
    if (cfg->projector == PROJECTOR_ABSTRACTOR) abstractor_forward(&a->abstractor, cfg, w, feat, out, n);
    else projector_forward(&a->projector, cfg, w, feat, out, n * llava_feature_rows(cfg));
}

void connector_backward(ConnectorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, LlavaWeights *g,
                        const float *dout, const float *feat, float *dfeat, int n) {
    if (cfg->projector == PROJECTOR_ABSTRACTOR) abstractor_backward(&a->abstractor, cfg, w, g, dout, feat, dfeat, n);
    else projector_backward(&a->projector, cfg, w, g, dout, feat, dfeat, n * llava_feature_rows(cfg));
}
