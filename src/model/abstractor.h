// mPLUG-Owl2's visual abstractor, the connector between its ViT and the LLM
// (upstream MplugOwlVisualAbstractorModel; the algebra in
// ../shared/reference/mplug_owl2.md §2). Per image, NQ learnt queries and
// the ViT's NI = 1 + grid^2 output rows (CLS included); each layer:
//   qn  = norm1(q)                         (the residual below is qn, not q)
//   kvi = [qn; normk(img)]                 (NQ + NI keys: the queries attend to themselves too)
//   A   = attn(query(qn + q_pos), key(kvi + [q_pos; k_pos]), value(kvi))
//   h   = qn + out_proj(A)
//   q'  = h + w2(ffn_ln(silu(w1(norm2 h)) * w3(norm2 h)))
// then visual_fc to the LLM's width and vit_eos appended: NQ + 1 rows. The
// image rows are the same raw ViT output in every layer (each re-normalises
// them with its normk), so their gradient is the sum over the layers.
// q_pos, k_pos: fixed sin-cos tables (MAE's), k_pos's CLS row zero.
#ifndef VLM_MODEL_ABSTRACTOR_H
#define VLM_MODEL_ABSTRACTOR_H

#include "model/carve.h"
#include "model/weights.h"

typedef struct {
    float *q_in;                    // (n, NQ, D) the layer's query stream (layer 0: query_embeds repeated)
    float *qn, *qn_mean, *qn_rstd;  // norm1(q_in)
    float *nk, *nk_mean, *nk_rstd;  // normk(img) (n, NI, D)
    float *kvin;                    // (n, NQ + NI, D) [qn; nk]
    float *qp, *kp;                 // qn + q_pos, kvin + [q_pos; k_pos]
    float *q, *k, *v, *lse, *ao;    // query, key, value products, attention state and output
    float *h, *n2, *n2_mean, *n2_rstd, *gu, *act, *f, *f_mean, *f_rstd;
} AbstractorLayerActs;

typedef struct {
    int max_images;
    float *qk_pos;                  // (NQ + NI, D): [q_pos; k_pos], the sin-cos tables (abstractor_init_tables)
    AbstractorLayerActs *l;         // layers + 1 query streams: l[layers].q_in is the last layer's output
    float *fc;                      // (n, NQ, H) visual_fc's output
    float *tmp, *dq, *dqn, *dkvin, *dk, *dv, *dnk, *dao, *dqp, *dn2, *dgu, *dact, *df, *dfc, *deos, *scratch;
} AbstractorActs;

void abstractor_acts_carve(AbstractorActs *a, Carve *c, const LlavaConfig *cfg, int max_images);
void abstractor_acts_free(AbstractorActs *a);
// Fills qk_pos (once, after carving).
void abstractor_init_tables(AbstractorActs *a, const LlavaConfig *cfg);
// upstream's q_pos_embed (NQ, D) and k_pos_embed (1 + grid^2, D), computed in
// float32 as its numpy code does
void abstractor_pos_tables(const AbstractorConfig *c, float *q_pos, float *k_pos);
// img (n, NI, D) -> out (n, NQ + 1, H)
void abstractor_forward(AbstractorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, const float *img, float *out,
                        int n);
// dout (n, NQ + 1, H) -> dimg (n, NI, D), written (NULL: not needed); weight
// gradients accumulate into g (NULL: frozen).
void abstractor_backward(AbstractorActs *a, const LlavaConfig *cfg, const LlavaWeights *w, LlavaWeights *g,
                         const float *dout, const float *img, float *dimg, int n);

#endif
