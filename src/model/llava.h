// LLaVA: CLIP vision tower -> projector -> spliced into the LLaMA input
// sequence at each image placeholder -> logits -> shifted token-mean
// cross-entropy. The model API: init (plan memory once), forward, zero_grad,
// backward. A module marked frozen gets no weight gradients, and the vision
// tower is not even back-propagated through when it is frozen.
#ifndef VLM_MODEL_LLAVA_H
#define VLM_MODEL_LLAVA_H

#include <stdbool.h>
#include <stdint.h>

#include "model/clip.h"
#include "model/convnext.h"
#include "model/llama.h"
#include "model/extension.h"
#include "model/connector.h"
#include "model/weights.h"

typedef struct {
    LlavaParams params;            // owned
    float *grad;                   // params.numel floats, same layout (a zeroed mapping: only trained tensors' pages are ever touched)
    size_t grad_bytes;
    LlavaWeights g;
    bool trainable[MODULE_COUNT];
    bool all_logits;               // logits at every position (inspection); default: only where a target is
    int max_images, max_batch, max_text, max_seq;
    bool recompute;                // the plan's: layers recomputed in the backward
    bool vision_frozen;            // the plan's: the vision tower is never back-propagated through
    float *memory;                 // every activation, one allocation
    ClipActs vis;
    ConvNextActs cnx;              // the vision tower's when it is a ConvNeXt (VisionConfig.kind)
    LlamaActs llm;
    float *feat, *proj, *text;     // the connector's input (images * llava_feature_rows), its output (images * llava_image_tokens), text embeddings
    ConnectorActs conn;            // the connector's own
    float *img;                    // (images, llava_image_span) rows spliced in: projected features, task tokens
    float *extra, *dextra;         // the extension's rows added after each image's features, NULL: none
    float *dimg, *dproj, *dfeat, *dvis, *dtext;  // proj / dproj alias img / dimg without extra rows
    Extension *ext;                // the variant's own parts (model/extension.h), NULL: none
    int *image_pos;                // (max_batch) where each sample's image span starts, -1: none, -2: several
    float *lse;                    // (max_batch * max_seq) log-sum-exp of each row, for the backward
    int32_t *src, *targets;        // (max_batch * max_seq): splice map and shifted labels
    int32_t *rows, *row_targets;   // positions with a target and those targets
    int *seq_len;                  // (max_batch) spliced lengths
    // the last forward
    const int32_t *input_ids;
    int n_images, B, T_text, T;
    double loss;
    long n_targets;
    // since the last llava_zero_grad: whether any forward had rows of modality 0 / 1 (multiway)
    bool saw_modality[2];
    // where the forward and backward use each parameter group (param_hooks.h); fn NULL: none.
    // The towers' acts point at it: a LlavaModel is not moved after llava_model_init.
    ParamHooks hooks;
} LlavaModel;

// Whether s got a gradient since the last llava_zero_grad: a multiway
// branch only when rows of its modality were seen (torch leaves the other's
// grad None: AdamW skips it, moments and step count untouched).
static inline bool llava_param_has_grad(const LlavaModel *m, const ParamSpec *s) {
    return s->modality < 0 || m->saw_modality[s->modality];
}

// The auxiliary losses of the last forward (0 without an extension or its inputs) and the samples in them.
static inline double llava_aux_loss(const LlavaModel *m) { return m->ext ? m->ext->loss : 0.0; }
static inline int llava_aux_samples(const LlavaModel *m) { return m->ext ? m->ext->samples : 0; }

// What a model is planned for: the largest batch (images, samples, the text
// batch's padded length, the spliced sequence: text plus image features) and
// whether the backward recomputes each layer (--gradient_checkpointing), and whether the vision
// tower stays frozen (then a ConvNeXt tower keeps no activations for a backward: model/convnext.h;
// CLIP's plan is the same either way).
typedef struct {
    int max_images, max_batch, max_text, max_seq;
    bool recompute;
    bool vision_frozen;
} LlavaPlan;

// The bytes a model holds (llava_model_init allocates exactly these), by kind.
typedef struct {
    size_t params, grads, activations;  // activations: every buffer of one micro-batch at the plan's sizes
    size_t workspace;                   // the matrix products' own (linear_workspace_bytes)
} LlavaMemory;

LlavaMemory llava_memory_plan(const LlavaConfig *cfg, const LlavaPlan *plan);

// Takes ownership of params (also on failure).
int llava_model_init(LlavaModel *m, LlavaParams *params, const LlavaPlan *plan);
void llava_model_free(LlavaModel *m);

// input_ids, labels (B, T_text) with one IMAGE_TOKEN_INDEX per image, in
// batch order; lengths (B) the real text tokens; pixels (n_images,3,S,S).
// The spliced sequence is truncated to max_len (0: none), as upstream
// truncates to model_max_length after inserting the image features.
// *loss is the mean over the targets (NaN when there is none).
int llava_forward(LlavaModel *m, const int32_t *input_ids, const int32_t *labels, const int *lengths, int B,
                  int T_text, const float *pixels, int n_images, int max_len, double *loss);
void llava_zero_grad(LlavaModel *m);
// The extension's per-sample inputs for the following forwards (its own
// type, e.g. OlaInputs; NULL: no auxiliary losses). llava_forward computes
// those losses into m->ext (*loss stays the cross-entropy).
void llava_set_aux_inputs(LlavaModel *m, const void *inputs);
// Gradients of the last forward's mean loss plus its auxiliary losses, accumulated into m->grad.
void llava_backward(LlavaModel *m);
// Gradients of ce_scale * (the sum of the last forward's per-token losses) +
// aux_scale * its auxiliary losses, accumulated into m->grad: llava_backward
// is (1 / n_targets, 1). A trainer accumulating micro-batches passes
// 1 / (targets of the whole accumulated batch) for a token mean over it, and
// 1 / micro-batches for the mean of the per-micro-batch auxiliary losses (as
// HF's Trainer divides each micro-batch's loss).
void llava_backward_scaled(LlavaModel *m, float ce_scale, float aux_scale);
// A forward's and a backward's parameter events without computing anything (param_hooks.h):
// a rank with fewer micro-batches in a step, or one whose forward failed, still makes them.
void llava_walk_hooks(LlavaModel *m);
// The backward's alone (a forward that ran but whose loss cannot be back-propagated).
void llava_walk_backward_hooks(LlavaModel *m);
// Upstream's cut to model_max_length after the splice: LLaVA cuts the
// spliced sequence (prepare_inputs_labels_for_multimodal), mPLUG-Owl2 only
// the text (its collator, before the image rows go in), so its sequences
// grow by each image's span less the placeholder.
static inline bool llava_cuts_after_splice(const LlavaConfig *c) { return c->arch != ARCH_MPLUG_OWL2; }
// The longest spliced sequence of a sample of max_text tokens with one image (max_len of the plan).
static inline int llava_planned_length(const LlavaConfig *c, int max_text) {
    return llava_cuts_after_splice(c) ? max_text : max_text + llava_image_span(c) - 1;
}
// The spliced length of one sample of len text tokens: each placeholder
// becomes the image's span, then the cut to max_len (0: none), as upstream
// truncates after inserting the image features.
int llava_spliced_length(const LlavaConfig *cfg, const int32_t *ids, int len, int max_len);
// The targets (next-token labels that are not IGNORE_INDEX) llava_forward
// would find in this batch, after the splice and truncation to max_len,
// without running it.
long llava_count_targets(const LlavaConfig *cfg, const int32_t *input_ids, const int32_t *labels, const int *lengths,
                         int B, int T_text, int max_len);

// The parameter ranges the optimiser updates: reachable tensors of trainable
// modules (torch skips parameters whose grad is None, and frozen modules
// have requires_grad False). ranges receives (offset, count) pairs; returns
// their number (at most params.n_specs).
int llava_trained_ranges(const LlavaModel *m, size_t *ranges);

// Row t of sample b of the last logits (V floats); needs all_logits.
const float *llava_logits(const LlavaModel *m, int b, int t);

#endif
