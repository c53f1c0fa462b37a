// The visual abstractor, see abstractor.h. Shapes: n images, NQ queries, NI
// image rows, K = NQ + NI keys, D the width, I the SwiGLU width, H the LLM's.
#include "model/abstractor.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/activation.h"
#include "kernels/cross_attention.h"
#include "kernels/embedding.h"
#include "kernels/gradients.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/residual.h"

#define LN_EPS 1e-5f  // norm1, normk, norm2: nn.LayerNorm's default (ffn_ln: layer_norm_eps)

typedef struct {
    int NQ, NI, K, D, I, H, NH, HS;
} Dims;

static Dims dims_of(const LlavaConfig *cfg) {
    const AbstractorConfig *a = &cfg->abstractor;
    Dims z = {.NQ = a->queries, .NI = vision_patches(&cfg->vision) + 1, .D = a->hidden, .I = a->intermediate,
              .H = cfg->text.hidden, .NH = a->heads};
    z.K = z.NQ + z.NI, z.HS = z.D / z.NH;
    return z;
}

void abstractor_acts_carve(AbstractorActs *a, Carve *c, const LlavaConfig *cfg, int max_images) {
    Dims z = dims_of(cfg);
    int L = cfg->abstractor.layers;
    size_t n = (size_t)max_images, Q = n * z.NQ, NI = n * z.NI, K = n * z.K, D = z.D, I = z.I;
    a->max_images = max_images;
    if (c->base && !a->l) a->l = calloc((size_t)L + 1, sizeof(AbstractorLayerActs));
    AbstractorLayerActs dummy;
    a->qk_pos = carve(c, (size_t)z.K * D);
    for (int l = 0; l <= L; l++) {
        AbstractorLayerActs *A = c->base && a->l ? &a->l[l] : &dummy;
        A->q_in = carve(c, Q * D);
        if (l == L) break;
        A->qn = carve(c, Q * D), A->qn_mean = carve(c, Q), A->qn_rstd = carve(c, Q);
        A->nk = carve(c, NI * D), A->nk_mean = carve(c, NI), A->nk_rstd = carve(c, NI);
        A->kvin = carve(c, K * D), A->qp = carve(c, Q * D), A->kp = carve(c, K * D);
        A->q = carve(c, Q * D), A->k = carve(c, K * D), A->v = carve(c, K * D);
        A->lse = carve(c, n * cross_attention_state_floats(z.NQ, z.NH)), A->ao = carve(c, Q * D);
        A->h = carve(c, Q * D), A->n2 = carve(c, Q * D), A->n2_mean = carve(c, Q), A->n2_rstd = carve(c, Q);
        A->gu = carve(c, Q * 2 * I), A->act = carve(c, Q * I), A->f = carve(c, Q * I);
        A->f_mean = carve(c, Q), A->f_rstd = carve(c, Q);
    }
    a->fc = carve(c, Q * z.H);
    a->tmp = carve(c, Q * D), a->dq = carve(c, Q * D), a->dqn = carve(c, Q * D), a->dkvin = carve(c, K * D);
    a->dk = carve(c, K * D), a->dv = carve(c, K * D), a->dnk = carve(c, NI * D), a->dao = carve(c, Q * D);
    a->dqp = carve(c, Q * D), a->dn2 = carve(c, Q * D), a->dgu = carve(c, Q * 2 * I), a->dact = carve(c, Q * I);
    a->df = carve(c, Q * I), a->dfc = carve(c, Q * z.H), a->deos = carve(c, (size_t)z.H);
    a->scratch = carve(c, cross_attention_scratch_floats(z.NQ, z.K));
}

void abstractor_init_tables(AbstractorActs *a, const LlavaConfig *cfg) {
    abstractor_pos_tables(&cfg->abstractor, a->qk_pos, a->qk_pos + (size_t)cfg->abstractor.queries * cfg->abstractor.hidden);
}

void abstractor_acts_free(AbstractorActs *a) {
    free(a->l);
    a->l = NULL;
}

// MAE's get_1d_sincos_pos_embed_from_grid in float32: omega[d] = 1 / 10000^(d / (D/2)),
// row = [sin(pos omega) | cos(pos omega)] (host-side, once at init)
static void sincos_1d(float *row, int D, float pos) {
    int half = D / 2;
    for (int d = 0; d < half; d++) {
        float omega = 1.0f / powf(10000.0f, (float)d / (float)half);
        float x = pos * omega;
        row[d] = sinf(x), row[half + d] = cosf(x);
    }
}

void abstractor_pos_tables(const AbstractorConfig *c, float *q_pos, float *k_pos) {
    int D = c->hidden, G = c->grid;
    for (int i = 0; i < c->queries; i++) sincos_1d(q_pos + (size_t)i * D, D, (float)i);
    for (int d = 0; d < D; d++) k_pos[d] = 0.0f;  // the CLS row
    // patch m = i * G + j: the first half encodes the column j, the second the row i (np.meshgrid's 'xy')
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            float *row = k_pos + (size_t)(1 + i * G + j) * D;
            sincos_1d(row, D / 2, (float)j);
            sincos_1d(row + D / 2, D / 2, (float)i);
        }
}

static void layer_forward(AbstractorActs *a, const Dims *z, const AbstractorLayerWeights *W, const AbstractorLayerActs *L,
                          const float *img, float eps, float *out, int n) {
    int Q = n * z->NQ, NI = n * z->NI, K = n * z->K, D = z->D, I = z->I;
    layernorm_forward(L->qn, L->qn_mean, L->qn_rstd, L->q_in, W->norm1_w, W->norm1_b, Q, D, LN_EPS);
    layernorm_forward(L->nk, L->nk_mean, L->nk_rstd, img, W->normk_w, W->normk_b, NI, D, LN_EPS);
    concat_rows_forward(L->kvin, L->qn, z->NQ, L->nk, z->NI, n, D);
    add_rows_forward(L->qp, L->qn, a->qk_pos, n, z->NQ, D);
    add_rows_forward(L->kp, L->kvin, a->qk_pos, n, z->K, D);
    linear_forward(L->q, L->qp, W->q_w, W->q_b, Q, D, D);
    linear_forward(L->k, L->kp, W->k_w, W->k_b, K, D, D);
    linear_forward(L->v, L->kvin, W->v_w, W->v_b, K, D, D);
    float scale = 1.0f / sqrtf((float)z->HS);
    size_t state = cross_attention_state_floats(z->NQ, z->NH);
    for (int i = 0; i < n; i++)
        cross_attention_forward(L->ao + (size_t)i * z->NQ * D, L->lse + i * state, L->q + (size_t)i * z->NQ * D, D,
                                L->k + (size_t)i * z->K * D, L->v + (size_t)i * z->K * D, D, z->NQ, z->K, z->NH, z->HS,
                                scale, a->scratch);
    linear_forward(a->tmp, L->ao, W->o_w, W->o_b, Q, D, D);
    residual_forward(L->h, L->qn, a->tmp, (size_t)Q * D);
    layernorm_forward(L->n2, L->n2_mean, L->n2_rstd, L->h, W->norm2_w, W->norm2_b, Q, D, LN_EPS);
    linear_forward(L->gu, L->n2, W->w13_w, W->w13_b, Q, D, 2 * I);
    swiglu_forward(L->act, L->gu, Q, I);
    layernorm_forward(L->f, L->f_mean, L->f_rstd, L->act, W->ffn_ln_w, W->ffn_ln_b, Q, I, eps);
    linear_forward(a->tmp, L->f, W->w2_w, W->w2_b, Q, I, D);
    residual_forward(out, L->h, a->tmp, (size_t)Q * D);
}

void abstractor_forward(AbstractorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, const float *img, float *out,
                        int n) {
    Dims z = dims_of(cfg);
    int layers = cfg->abstractor.layers;
    repeat_rows_forward(a->l[0].q_in, w->query_embeds, n, z.NQ, z.D);
    for (int l = 0; l < layers; l++)
        layer_forward(a, &z, &w->al[l], &a->l[l], img, cfg->abstractor.eps, a->l[l + 1].q_in, n);
    linear_forward(a->fc, a->l[layers].q_in, w->visual_fc_w, w->visual_fc_b, n * z.NQ, z.D, z.H);
    image_span_forward(out, a->fc, w->vit_eos, n, z.NQ, 1, z.H);
}

#define GRAD(field) (G ? G->field : NULL)

// dq (n, NQ, D): the gradient of the layer's output, used in place as the
// residual stream's; on return a->dq holds that of its input q_in. dimg += the
// image rows' gradient through normk (NULL: not needed).
static void layer_backward(AbstractorActs *a, const Dims *z, const AbstractorLayerWeights *W, AbstractorLayerWeights *G,
                           const AbstractorLayerActs *L, const float *img, float *dimg, int n) {
    int Q = n * z->NQ, NI = n * z->NI, K = n * z->K, D = z->D, I = z->I;
    float *dh = a->dq;  // out = h + w2(...): dh starts as dout
    linear_backward(a->df, GRAD(w2_w), GRAD(w2_b), dh, L->f, W->w2_w, Q, I, D);
    vlm_zero(a->dact, (size_t)Q * I);  // ffn_ln has no skip connection
    layernorm_backward(a->dact, GRAD(ffn_ln_w), GRAD(ffn_ln_b), a->df, L->act, W->ffn_ln_w, L->f_mean, L->f_rstd, Q, I);
    swiglu_backward(a->dgu, a->dact, L->gu, Q, I);
    linear_backward(a->dn2, GRAD(w13_w), GRAD(w13_b), a->dgu, L->n2, W->w13_w, Q, D, 2 * I);
    layernorm_backward(dh, GRAD(norm2_w), GRAD(norm2_b), a->dn2, L->h, W->norm2_w, L->n2_mean, L->n2_rstd, Q, D);
    // h = qn + out_proj(ao)
    linear_backward(a->dao, GRAD(o_w), GRAD(o_b), dh, L->ao, W->o_w, Q, D, D);
    float scale = 1.0f / sqrtf((float)z->HS);
    size_t state = cross_attention_state_floats(z->NQ, z->NH);
    for (int i = 0; i < n; i++)
        cross_attention_backward(a->tmp + (size_t)i * z->NQ * D, a->dk + (size_t)i * z->K * D, a->dv + (size_t)i * z->K * D,
                                 a->dao + (size_t)i * z->NQ * D, L->ao + (size_t)i * z->NQ * D, L->lse + i * state,
                                 L->q + (size_t)i * z->NQ * D, D, L->k + (size_t)i * z->K * D,
                                 L->v + (size_t)i * z->K * D, D, z->NQ, z->K, z->NH, z->HS, scale, a->scratch);
    // q = query(qn + q_pos), k = key(kvin + pos), v = value(kvin): the tables pass the gradient on
    linear_backward(a->dqp, GRAD(q_w), GRAD(q_b), a->tmp, L->qp, W->q_w, Q, D, D);
    linear_backward(a->dkvin, GRAD(k_w), GRAD(k_b), a->dk, L->kp, W->k_w, K, D, D);
    linear_backward_acc(a->dkvin, GRAD(v_w), GRAD(v_b), a->dv, L->kvin, W->v_w, K, D, D);
    concat_rows_backward(a->dqn, a->dnk, a->dkvin, z->NQ, z->NI, n, D);
    residual_forward(a->dqn, a->dqn, dh, (size_t)Q * D);
    residual_forward(a->dqn, a->dqn, a->dqp, (size_t)Q * D);
    if (dimg) layernorm_backward(dimg, GRAD(normk_w), GRAD(normk_b), a->dnk, img, W->normk_w, L->nk_mean, L->nk_rstd, NI, D);
    else if (G) {  // normk's weights still get their gradient; the image's is not needed
        vlm_zero(a->tmp, (size_t)NI * D);
        layernorm_backward(a->tmp, G->normk_w, G->normk_b, a->dnk, img, W->normk_w, L->nk_mean, L->nk_rstd, NI, D);
    }
    // qn = norm1(q_in): no skip connection
    vlm_zero(a->dq, (size_t)Q * D);
    layernorm_backward(a->dq, GRAD(norm1_w), GRAD(norm1_b), a->dqn, L->q_in, W->norm1_w, L->qn_mean, L->qn_rstd, Q, D);
}

void abstractor_backward(AbstractorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, LlavaWeights *g,
                         const float *dout, const float *img, float *dimg, int n) {
    Dims z = dims_of(cfg);
    int layers = cfg->abstractor.layers;
    LlavaWeights *G = g;
    image_span_backward(a->dfc, a->deos, dout, n, z.NQ, 1, z.H);
    if (G) residual_forward(G->vit_eos, G->vit_eos, a->deos, (size_t)z.H);
    linear_backward(a->dq, GRAD(visual_fc_w), GRAD(visual_fc_b), a->dfc, a->l[layers].q_in, w->visual_fc_w, n * z.NQ, z.D,
                    z.H);
    if (dimg) vlm_zero(dimg, (size_t)n * z.NI * z.D);  // every layer adds the image rows' gradient
    for (int l = layers - 1; l >= 0; l--)
        layer_backward(a, &z, &w->al[l], G ? &G->al[l] : NULL, &a->l[l], img, dimg, n);
    if (G) repeat_rows_backward(G->query_embeds, a->dq, n, z.NQ, z.D);
}
