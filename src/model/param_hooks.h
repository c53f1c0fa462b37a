// Where a model's forward and backward use each group of parameters, for
// whoever keeps only part of them at hand (ZeRO-3 gathers a group before it
// is used and drops it after; ZeRO-2 reduces a group's gradients as soon as
// they are complete). A group is a module's layer l, or its other tensors
// (layer -1; the projector / abstractor and an extension are one group each),
// and for the LLM its head (PARAM_GROUP_HEAD: the final norm and lm_head; with
// tied embeddings the head's events stand for the embeddings' group, and its
// HOOK_GRADS for nothing: the embeddings' gradient is complete only after the
// embedding's backward).
//
// The contract the model keeps: the same sequence of events on every call
// with the same shapes planned, whatever the batch holds (a batch without
// images still walks the vision tower's and connector's events without
// computing), because every rank must make the same collective calls.
//   HOOK_FETCH    the group's parameters are about to be read
//   HOOK_RELEASE  they are not read again in this pass
//   HOOK_GRADS    (backward) this pass will not add to the group's gradients again
// No hooks (fn NULL): every parameter is always at hand.
#ifndef VLM_MODEL_PARAM_HOOKS_H
#define VLM_MODEL_PARAM_HOOKS_H

#include "model/weights.h"

typedef enum { HOOK_FETCH, HOOK_RELEASE, HOOK_GRADS } HookEvent;
enum { PARAM_GROUP_HEAD = -2 };

typedef struct {
    void (*fn)(void *ctx, HookEvent event, Module module, int layer);
    void *ctx;
} ParamHooks;

static inline void param_hook(const ParamHooks *h, HookEvent event, Module module, int layer) {
    if (h && h->fn) h->fn(h->ctx, event, module, layer);
}

#endif
