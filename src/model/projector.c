// The projector, see projector.h. Shapes: n feature rows, Cv the vision
// width, H the LLM's.
#include "model/projector.h"

#include <stddef.h>  // NULL

#include "kernels/activation.h"
#include "kernels/linear.h"

void projector_acts_carve(ProjectorActs *a, Carve *c, const LlavaConfig *cfg, size_t rows) {
    size_t H = (size_t)cfg->text.hidden;
    a->h1 = carve(c, rows * H), a->g1 = carve(c, rows * H);
    a->dh1 = carve(c, rows * H), a->dg1 = carve(c, rows * H);
}

void projector_forward(ProjectorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, const float *feat, float *out,
                       int n) {
    int Cv = cfg->vision.hidden, H = cfg->text.hidden;
    if (cfg->projector == PROJECTOR_LINEAR) {
        linear_forward(out, feat, w->p1_w, w->p1_b, n, Cv, H);
        return;
    }
    linear_forward(a->h1, feat, w->p1_w, w->p1_b, n, Cv, H);
    gelu_forward(a->g1, a->h1, (size_t)n * H);
    linear_forward(out, a->g1, w->p2_w, w->p2_b, n, H, H);
}

#define GRAD(field) (g ? g->field : NULL)

void projector_backward(ProjectorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, LlavaWeights *g,
                        const float *dout, const float *feat, float *dfeat, int n) {
    int Cv = cfg->vision.hidden, H = cfg->text.hidden;
    const float *dh1 = dout;  // the linear projector: linear_1 alone
    if (cfg->projector == PROJECTOR_MLP2X_GELU) {
        linear_backward(a->dg1, GRAD(p2_w), GRAD(p2_b), dout, a->g1, w->p2_w, n, H, H);
        gelu_backward(a->dh1, a->dg1, a->h1, (size_t)n * H);
        dh1 = a->dh1;
    }
    linear_backward(dfeat, GRAD(p1_w), GRAD(p1_b), dh1, feat, w->p1_w, n, Cv, H);
}
