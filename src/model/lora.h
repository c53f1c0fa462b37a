// LoRA adapters of a model (LlavaConfig.lora; their tensors are walked by
// weights.c after every other, MODULE_LORA, under the names of the module
// they adapt + ".lora_A.weight" / ".lora_B.weight", as PEFT names them
// inside its base_model.model. wrapper).
#ifndef VLM_MODEL_LORA_H
#define VLM_MODEL_LORA_H

#include "model/weights.h"

// The base weight each adapter adds to, and its shape: W (out, in) for target g of layer l.
float *lora_target_weight(const LlavaParams *p, int l, LoraTarget g, int *in, int *out);
// PEFT's init of fresh adapters: lora_A kaiming_uniform(a = sqrt(5)), i.e. uniform in
// +-1/sqrt(in), from seed; lora_B zero (the model starts as the base).
void lora_init(LlavaParams *p, uint64_t seed);
// merge_and_unload: every W += alpha / r * B A, then the adapters dropped (cfg.lora.r 0).
int llava_lora_merge(LlavaParams *p);

#endif
