// LoRA fine-tuning (LLaVA's / mPLUG-Owl2's --lora_enable True): the run's
// side of model/lora.h.
#ifndef VLM_TRAIN_LORA_TRAIN_H
#define VLM_TRAIN_LORA_TRAIN_H

#include "model/weights.h"
#include "train/args.h"

// --lora_enable True: lays fresh adapters (--lora_r, --lora_alpha,
// --lora_dropout) out on p's LLM linears and initialises them as PEFT does
// (from --seed). Nothing to do without the flag.
int lora_prepare(const TrainArgs *a, LlavaParams *p);

#endif
