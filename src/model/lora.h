// LoRA adapters of a model (LlavaConfig.lora; their tensors are walked by
// weights.c after every other, MODULE_LORA, under the names of the module
// they adapt + ".lora_A.weight" / ".lora_B.weight", as PEFT names them
// inside its base_model.model. wrapper).
#ifndef VLM_MODEL_LORA_H
#define VLM_MODEL_LORA_H

#include <stdbool.h>

#include "model/weights.h"

// The base weight each adapter adds to, and its shape: W (out, in) for target g of layer l.
float *lora_target_weight(const LlavaParams *p, int l, LoraTarget g, int *in, int *out);
// PEFT's init of fresh adapters: lora_A kaiming_uniform(a = sqrt(5)), i.e. uniform in
// +-1/sqrt(in), from seed; lora_B zero (the model starts as the base).
void lora_init(LlavaParams *p, uint64_t seed);
// merge_and_unload: every W += alpha / r * B A, then the adapters dropped (cfg.lora.r 0).
int llava_lora_merge(LlavaParams *p);

// PEFT's adapter folder (save_pretrained of a PeftModel, 0.8.2's files):
//   adapter_config.json         r, lora_alpha, lora_dropout, the full names of the adapted modules
//   adapter_model.safetensors   base_model.model.NAME.lora_{A,B}.weight, float32
// and LLaVA's non_lora_trainables.bin beside them (train.py's torch.save of the
// other trained tensors, the projector's: base_model.model.NAME).
bool lora_adapter_dir(const char *dir);
// trained: which modules' tensors go into non_lora_trainables.bin (NULL: none);
// base: adapter_config.json's base_model_name_or_path. Names: the original
// LLaVA layout's when cfg.lora.original_names (LlavaLlamaForCausalLM:
// base_model.model.model.layers..., ...model.mm_projector.0.weight), as
// upstream's train.py writes them over an LLM + CLIP + projector start; else
// the model's own (llava-hf, mPLUG-Owl2).
int lora_save_adapter(const LlavaParams *p, const char *dir, const bool *trained, const char *base);
// Lays p out with the folder's adapters (its r and alpha) and reads them, and
// non_lora_trainables.bin when there is one (either layout's names). Missing, unexpected or
// mis-shaped tensors are one error naming them.
int lora_load_adapter(LlavaParams *p, const char *dir);

#endif
