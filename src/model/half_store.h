// The frozen LLM's layers held in 16 bits (upstream's --bits 16 with --bf16 /
// --fp16: LLaVA's train.py casts the model before adding LoRA): each frozen
// 2-D weight of an LLM layer is kept as bf16 / fp16, and its float32 copy in
// the parameter buffer exists only while the layer runs (param_hooks.h:
// HOOK_FETCH widens it, HOOK_RELEASE hands its pages back). The products
// still run in float32, on the 16-bit values: what the base's weights are is
// rounded as upstream's cast rounds them. Chains the hooks already set
// (ZeRO-2 / 3).
#ifndef VLM_MODEL_HALF_STORE_H
#define VLM_MODEL_HALF_STORE_H

#include "formats/dtype.h"
#include "model/llava.h"

typedef struct HalfStore HalfStore;

// What a store keeps in 16 bits when the LLM is frozen: an LLM layer's matrix.
bool half_store_holds(const ParamSpec *s);

// dtype DT_BF16 or DT_F16. Only tensors of frozen modules are stored (m->trainable as it is now).
int half_store_attach(HalfStore **out, LlavaModel *m, DType dtype);
// Every stored tensor widened back into the parameter buffer for good (to save the model), and the hooks restored.
void half_store_free(HalfStore *s);
// The bytes it saves: float32 minus 16-bit copies.
size_t half_store_saved_bytes(const HalfStore *s);

#endif
