// Random initialisation of LLaVA's parameters, seeded with our Philox RNG
// (the distributions of PyTorch / transformers, not their random streams:
// torch's generator is not reproduced bit for bit). Each tensor draws from
// its own stream (seed, tensor index), so the result depends on the seed
// and the architecture alone, not on threads or the order of the calls.
#ifndef VLM_MODEL_INIT_H
#define VLM_MODEL_INIT_H

#include <stdint.h>

#include "model/weights.h"

// The projector as a fresh torch nn.Linear (LLaVA's PT builds it after
// loading LLaMA and CLIP): kaiming_uniform_(a=sqrt(5)) for the weight and
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias, i.e. every element
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in the layer's input width.
void llava_projector_init_default(LlavaParams *p, uint64_t seed);

// Every parameter as a fresh LlavaForConditionalGeneration(config) of
// transformers 4.37.2 gets it (each submodule's post_init runs its own
// _init_weights and marks its modules initialised, so the outer model's
// rule reaches only the projector):
//   CLIP vision (CLIPPreTrainedModel, f = initializer_factor, r = initializer_range, C = hidden, L = layers):
//     class_embedding N(0, C^-0.5 f); patch and position embeddings N(0, r f);
//     q/k/v N(0, C^-0.5 (2L)^-0.5 f), out_proj N(0, C^-0.5 f);
//     fc1 N(0, (2C)^-0.5 f), fc2 N(0, C^-0.5 (2L)^-0.5 f); biases 0; LayerNorms weight 1, bias 0.
//   LLaMA (LlamaPreTrainedModel, r = text initializer_range): every Linear and the embedding
//     N(0, r), the pad_token_id row 0; RMSNorm weights 1; a tied lm_head is the embedding.
//   projector (LlavaPreTrainedModel): weights N(0, initializer_range of the LlavaConfig, else
//     the text config's), biases 0.
//   OLA-VLM's parts (a config with its keys): llava_ola_init_default.
// An mPLUG-Owl2 config: as MPLUGOwl2LlamaForCausalLM(config) under
// transformers 4.31 (checked by running upstream, mplug_owl2.md §10.1): the
// ViT's and abstractor's Linear / Conv2d keep torch's default (every element
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in the input width, 3 P^2 for the
// patch conv), their LayerNorms weight 1 bias 0; cls_token, position_embedding,
// query_embeds and vit_eos N(0, 1) (torch.randn); the LLaMA's Linears and
// embedding N(0, initializer_range), the pad row 0, RMSNorms 1.
int llava_params_init_random(LlavaParams *p, uint64_t seed);

// The vision tower's class token and position embedding redrawn as CLIP
// draws them (CLIPPreTrainedModel: class_embedding N(0, C^-0.5 f), position
// N(0, initializer_range f); mPLUG-Owl2's cls_token takes class_embedding's
// rule), the same streams as llava_params_init_random: for a LLaVA model it
// changes nothing, and the patch conv and layers keep their architecture's
// rules. Why: a fresh MPLUGOwl2 draws both from torch.randn (std 1), which
// upstream never trains from (it loads CLIP ViT-L/14, trained from CLIP's
// init). Trained from scratch at a small width, a position embedding of std 1
// swamps what the patch conv makes of a patch's content (std about 0.6), and
// the demo's tower learnt exposure and contrast but little of noise or JPEG
// (docs/demo.md). The whole tower by CLIP's rules (patch conv std 0.02 too)
// trained worse there. `vlm init --vision-init clip-embeddings`.
void llava_vision_init_clip_embeddings(LlavaParams *p, uint64_t seed);

// OLA-VLM's parts as upstream creates them (init_heads after from_pretrained,
// so torch's defaults, not transformers' _init_weights): every nn.Linear
// weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), LayerNorms weight 1
// bias 0, the special task tokens N(0, 1) (torch.randn), logit scales 2.0.
void llava_ola_init_default(LlavaParams *p, uint64_t seed);

#endif
