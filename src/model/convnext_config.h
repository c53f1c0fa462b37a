// OLA-VLM's CLIP-ConvNeXt vision tower as users name and store it: the --vision_tower /
// mm_vision_tower name (upstream's CLIPConvNextVisionTower: the folder is the part before
// "-res", the image size the number after it, 768 without one), an open_clip hub folder
// (open_clip_config.json + open_clip_model.safetensors / open_clip_pytorch_model.bin, tensors
// visual.trunk.*), and the VisionConfig read from them (model/convnext.h runs it).
#ifndef VLM_MODEL_CONVNEXT_CONFIG_H
#define VLM_MODEL_CONVNEXT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "formats/checkpoint.h"
#include "model/config.h"

#define CONVNEXT_DEFAULT_SIZE 768     // upstream's image size without a -res suffix
#define CONVNEXT_TRUNK_PREFIX "visual.trunk."                       // in an open_clip checkpoint
#define CONVNEXT_SAVED_PREFIX "model.vision_tower.vision_tower."    // in an (OLA-VLM) LLaVA checkpoint

typedef struct {
    char folder[512];   // the name without its -resNNN suffix
    int image_size;     // NNN, else CONVNEXT_DEFAULT_SIZE
    bool convnext;      // a ConvNeXt tower: folder/open_clip_config.json exists, or (no such folder) the
                        // name contains "convnext" (upstream's builder picks the tower by that word)
    bool have_folder;   // folder/open_clip_config.json exists
} ConvNextTower;

// Reads a tower name. A name that is not a ConvNeXt tower (a CLIP folder) gives convnext false
// and no error. For a ConvNeXt: errors for upstream's variants not supported (-interpNNN,
// multi-stage), a size that is not a positive multiple of 32, a name too long.
int convnext_tower_parse(ConvNextTower *t, const char *name);

// The folder's weights: open_clip_model.safetensors, else open_clip_pytorch_model.bin (a fresh
// string; NULL with an error naming the folder when neither is there).
char *convnext_weights_file(const char *folder);

// The vision config of the ConvNeXt tower t named name (kept in v->tower):
//   with its folder: open_clip_config.json's model_cfg.vision_cfg.timm_model_name and
//     preprocess_cfg (mean, std; resize_mode shortest and interpolation bicubic only), the
//     structure read off its weights' visual.trunk.* shapes;
//   without (a saved model whose tower folder is elsewhere): the timm model from the name's last
//     component as upstream maps it (CLIP-convnext_xxlarge*, CLIP-convnext_large*), OpenAI's
//     mean / std, the structure read off saved's model.vision_tower.vision_tower.* (saved_label
//     names it in messages; saved NULL: an error saying the tower is needed).
// depths / dims from the stages.S.blocks.B.conv_dw.weight tensors, eps from the timm model
// (timm 1.0.8: convnext_xxlarge passes norm_eps 1e-5, the others keep LayerNorm's 1e-6). Errors
// name the file and key or tensor: an unknown timm_model_name, a missing stage or block, a kernel
// or stem other than timm's patch stem and 7x7 conv_dw.
int convnext_vision_config(VisionConfig *v, const ConvNextTower *t, const char *name, Checkpoint *saved,
                           const char *saved_label);

// The structure alone from a checkpoint's tensors under prefix (used by convnext_vision_config).
int convnext_structure_from_checkpoint(VisionConfig *v, const Checkpoint *ck, const char *prefix, const char *label);

#endif
