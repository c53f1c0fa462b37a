// The two seams where a variant of the LLaVA composition adds its own parts
// (vision -> connector -> splice -> decoder -> loss), so llava.c, step.c and
// trainer.c call them without knowing what they are:
//
//   span rows: rows added after each image's features in the decoder's input
//     (the same rows for every image, made from the extension's parameters,
//     so they have a backward);
//   auxiliary losses: they read the decoder's hidden states of the last
//     forward (and per-sample inputs of the extension's own kind, set before
//     the forward) and return the gradients of those states.
//
// OLA-VLM's task tokens and embedding predictors (model/ola.c) are the one
// extension today; extension_new picks it from the config.
#ifndef VLM_MODEL_EXTENSION_H
#define VLM_MODEL_EXTENSION_H

#include "model/carve.h"
#include "model/llama.h"
#include "model/weights.h"

#define EXT_MAX_PARTS 4  // named parts of an auxiliary loss (OLA-VLM: depth, seg, gen)

// What the splice did with each sample of the last forward.
typedef struct {
    const int *image_pos;  // (B) where the sample's image span starts; -1: no image, -2: several
    const int *seq_len;    // (B) its spliced length
    int B, T;              // the padded batch
} SpliceInfo;

typedef struct Extension Extension;

typedef struct {
    // Lays out the activations for a plan (Carve's two passes, see carve.h); 0: out of memory.
    int (*carve)(Extension *e, Carve *c, const LlavaConfig *cfg, int max_batch, int max_seq);
    // rows (span_rows, H), appended after every image's features
    void (*rows_forward)(const Extension *e, const LlavaConfig *cfg, const LlavaWeights *w, float *rows);
    // drows (span_rows, H), summed over the images -> the parameters' gradients in g (+=)
    void (*rows_backward)(const Extension *e, const LlavaConfig *cfg, LlavaWeights *g, const float *drows);
    // The losses of the last forward's states given e->inputs (not NULL): adds them to e->loss,
    // e->part and e->samples, which the caller has reset to 0 (as it does when there are no inputs).
    void (*loss_forward)(Extension *e, const LlavaConfig *cfg, const LlavaWeights *w, const LlamaActs *llm,
                         const SpliceInfo *s);
    // Gradients of scale * e->loss: the parameters' into g (NULL: frozen, +=); returns the states'
    // (layers + 1 pointers as llama_backward's dstates, written).
    float *const *(*loss_backward)(Extension *e, const LlavaConfig *cfg, const LlavaWeights *w, LlavaWeights *g,
                                   const LlamaActs *llm, const SpliceInfo *s, float scale);
    void (*free)(Extension *e);
} ExtensionOps;

struct Extension {
    const ExtensionOps *ops;
    const char *name;
    Module module;          // whose trainable flag covers its parameters
    int span_rows;          // rows after each image's features (0: none)
    bool has_loss;          // it has auxiliary losses (their parts named below)
    int n_parts;
    const char *part_names[EXT_MAX_PARTS];
    const void *inputs;     // the next forwards' per-sample inputs (the extension's type); NULL: no losses
    // the last forward's losses: their weighted sum, its parts, the samples that took part
    double loss, part[EXT_MAX_PARTS];
    int samples;
    void *state;            // the extension's own
};

// The extension cfg describes (NULL: none). *out_of_memory tells a NULL that is a failure.
Extension *extension_new(const LlavaConfig *cfg, bool *out_of_memory);
void extension_free(Extension *e);

#endif
