// LoRA fine-tuning (LLaVA's / mPLUG-Owl2's --lora_enable True): the run's
// side of model/lora.h.
#ifndef VLM_TRAIN_LORA_TRAIN_H
#define VLM_TRAIN_LORA_TRAIN_H

#include "model/open.h"
#include "model/weights.h"
#include "train/args.h"

// --lora_enable True: lays fresh adapters (--lora_r, --lora_alpha,
// --lora_dropout) out on p's LLM linears and initialises them as PEFT does
// (from --seed). Nothing to do without the flag.
int lora_prepare(const TrainArgs *a, LlavaParams *p);

// The config.json LLaVA's train.py saves beside the adapters (model.config.save_pretrained),
// which its load_pretrained_model reads with the base: the base's own config.json, and over an
// LLM + CLIP + projector start (layout LAYOUT_PARTS) the LLM's with LLaVA's multimodal keys from
// the run's flags (model_type llava_llama, mm_vision_tower, mm_projector_type, ...).
// vision_hidden: the tower's width (mm_hidden_size).
int lora_write_base_config(const TrainArgs *a, const char *base_dir, ModelLayout layout, int vision_hidden,
                           const char *out_dir);

#endif
