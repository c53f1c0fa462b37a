// OLA-VLM's embedding predictors and their distillation losses
// (SHI-Labs/OLA-VLM base_ola_vlm.py, resampler.py TaskTokenResampler,
// aux_heads TaskToken{Depth,Seg,Gen}Head).
//
// For each task (depth, seg, gen) and each of its LLM layers, a one-block
// Perceiver resampler reads one sample's hidden states at that layer: the
// rows up to the end of the image features (system prompt and image), the
// task's own task-token rows, and the text after all task tokens. Its
// queries are the task's learnt tokens (depth, seg: num_tokens of them) or
// the mean of the task-token rows (gen: one query). It predicts the frozen
// teacher's embedding of the image (num_tokens x output_dim), compared with
// the precomputed target by smooth-L1 + InfoNCE (kernels/distill_loss.h).
// Only samples with one image, a target and all their task tokens within
// the sequence take part.
//
// Where we differ from upstream, on purpose: (1) upstream zeroes the sample
// mask in place before the loss, so its embedding losses are always 0; here
// they count. (2) Upstream slices every sample at the same positions
// (NUM_SYS_TOKENS + 576) and passes right padding into the resampler; here
// each sample's own image position and length are used (the same inputs when
// every sample has its image at that position and no padding).
//
// Memory: predictions of the batch are kept per predictor; a predictor's
// activations for one sample are recomputed in the backward (one sample's
// worth of scratch instead of the batch's).
#ifndef VLM_MODEL_OLA_H
#define VLM_MODEL_OLA_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/distill_loss.h"
#include "model/carve.h"
#include "model/extension.h"
#include "model/llama.h"
#include "model/weights.h"

typedef struct {
    // one sample through one predictor (sized for the largest task): the Perceiver resampler's
    // inputs X, queries, their projections and norms, latents after proj_in (latents), after the
    // attention block (lat_attn) and the feed-forward block (lat_ff), the output norm (head_out),
    // the optional MLP (mlp_up, mlp_act); d* their gradients (dlat the latents' residual stream's)
    const float *q_in;           // the queries: the task's tokens, or gen's rows in queries
    float *X, *queries, *x_proj, *kvin, *mean, *rstd, *latents, *q, *kv, *lse, *ao, *lat_attn, *ff_in, *ff_mean,
        *ff_rstd, *ff_up, *ff_act, *lat_ff, *head_out, *pred, *out_mean, *out_rstd, *mlp_up, *mlp_act, *out;
    float *dX, *dqueries, *dx_proj, *dkvin, *dq, *dkv, *dao, *dff_in, *dff_up, *dff_act, *dlat,
        *dhead_out, *dpred, *dmlp_up, *dmlp_act, *dout, *scratch;
    int32_t *rows;                               // (max_seq) the gathered inputs' positions in the B*T states
    // the batch
    float *preds, *targets;                      // (max_batch, P) one predictor's predictions / the targets in use
    float *dpreds[OLA_TASKS][OLA_MAX_LAYERS];    // (max_batch, P_task) d loss / d prediction of the last forward
    float dscale[OLA_TASKS];                     // d loss / d logit_scale of the last forward
    float *loss_scratch;
    float **dstates;                             // (layers + 1) d loss / d hidden state, NULL where no predictor reads
    int *active;                                 // (max_batch) the samples that took part
    int n_active;
    DistillLoss part[OLA_TASKS][OLA_MAX_LAYERS]; // the last forward's, per predictor (their sums: Extension.part)
} OlaActs;

// Predicted floats per sample: num_tokens x output_dim.
static inline int ola_pred_size(const OlaConfig *o, OlaTask t) { return o->task[t].num_tokens * o->task[t].output_dim; }

// The auxiliary losses' inputs (Extension.inputs): targets[t] (B,
// ola_pred_size) per task of the model, rows = the teacher's tokens (query
// order); has_target (B): the samples that have them. The losses are
// OLA-VLM's, upstream's total being the cross-entropy plus their sum.
typedef struct {
    const float *targets[OLA_TASKS];
    const bool *has_target;
} OlaInputs;

// OLA-VLM as an extension (model/extension.h): span rows = append_special_tokens,
// the rows added after each image's features (num_task_tokens rows per task in
// aux_mode's order: gen's tokens as they are, depth's and seg's num_tokens rows
// mean-pooled in consecutive groups down to num_task_tokens); auxiliary losses =
// the predictors' (parts depth, seg, gen, by OlaTask). NULL: out of memory.
#define OLA_EXTENSION "OLA-VLM"  // its Extension.name
Extension *ola_extension_new(const LlavaConfig *cfg);
// Its activations and per-(task, layer) losses of the last forward (inspection, tests).
const OlaActs *ola_acts(const Extension *e);

#endif
