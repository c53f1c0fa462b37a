// Opens whichever LLaVA starting point a user has, the way upstream's
// train.py and the recipes' scripts accept them:
//   a llava-hf folder (config.json with a vision_config);
//   an original LLaVA folder (config.json with mm_vision_tower) plus the CLIP
//     folder it names (vision_tower overrides the name, which is usually a
//     hub id);
//   a plain LLaMA / Vicuna folder plus a CLIP folder (vision_tower) and, for
//     instruction tuning, the projector pretraining saved (projector:
//     mm_projector.bin); without it the projector starts fresh (pretraining).
#ifndef VLM_MODEL_OPEN_H
#define VLM_MODEL_OPEN_H

#include <stdbool.h>

#include "image/preprocess.h"
#include "model/weights.h"

// LAYOUT_MPLUG_OWL2: an mPLUG-Owl2 folder (model_type "mplug_owl2"), as
// upstream's converter or save_pretrained writes it.
typedef enum { LAYOUT_HF, LAYOUT_ORIGINAL, LAYOUT_PARTS, LAYOUT_MPLUG_OWL2 } ModelLayout;

// Which of them a folder is (from its config.json).
int llava_detect_layout(const char *dir, ModelLayout *layout);
const char *llava_layout_name(ModelLayout layout);

typedef struct {
    const char *vision_tower;   // CLIP folder (original and parts layouts)
    const char *projector;      // mm_projector.bin (parts layout), NULL: a fresh projector
    int feature_layer;          // parts layout: mm_vision_select_layer
    bool feature_full;          // parts layout: mm_vision_select_feature "cls_patch"
    ProjectorType projector_type;  // parts layout
    unsigned long long seed;    // a fresh projector's initialisation
    const char *model_base;     // a LoRA adapter folder's base model; NULL: its adapter_config.json's
} LlavaOpenOptions;

// dir may also be a PEFT LoRA adapter folder (adapter_config.json, model/lora.h): the base model
// it names (base_model_name_or_path, or o->model_base) is opened and the adapters added, unmerged.
int llava_open(LlavaParams *p, const char *dir, const LlavaOpenOptions *o, ModelLayout *layout);

// The image preprocessing the model's vision tower was trained with, at its size: a CLIP's
// (model_dir's preprocessor_config.json, else CLIP's defaults: preprocessor_for_model), a
// ConvNeXt's open_clip transform (its preprocess_cfg mean / std, torchvision's crop rounding:
// preprocessor_open_clip); pad: LLaVA's image_aspect_ratio pad.
int llava_preprocessor(Preprocessor *p, const LlavaConfig *c, const char *model_dir, bool pad);

#endif
