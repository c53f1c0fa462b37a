// OLA-VLM's frozen teachers, inference only: each turns one decoded RGB image
// into the target embedding upstream computes on the fly during PT
// (ola_vlm/model/language_model/base_ola_vlm.py, SHI-Labs/OLA-VLM 6032a6c),
// in the layout data/teacher_targets.h reads back:
//   OLA_DEPTH  Depth-Anything-v2 ViT-L (its DINOv2): the mean of the final-normed
//              hidden states of blocks 4, 11, 17, 23 without the class token,
//              image resized to 336 x 336 first (_get_dav2_feats): (576, 1024)
//   OLA_SEG    OneFormer COCO Swin-L: the Swin backbone's last feature map (after
//              its stage-4 norm) bilinearly resized to 24 x 24, image resized to
//              768 x 768 first, then OneFormer's processor (_get_seg_targets): (1536, 24, 24)
//   OLA_GEN    SD-2.1-unCLIP's image encoder (CLIPVisionModelWithProjection, OpenCLIP
//              ViT-H/14) on its feature_extractor's pixels: image_embeds (1024)
// Each teacher reproduces its own upstream preprocessing (documented in its file).
// Weights are float32 in memory whatever the file holds (upstream runs gen in fp16
// and the others in the training dtype; float32 is the parity reference).
//
// Use: teacher_open, then per batch teacher_prepare for slots 0..n-1 (any order,
// from several threads at once: slots are independent), then teacher_forward.
#ifndef VLM_MODEL_TEACHER_H
#define VLM_MODEL_TEACHER_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"
#include "model/config.h"

typedef struct Teacher Teacher;

typedef struct {
    // decoded RGB -> the teacher's input for batch slot `slot` (errors name `name`)
    int (*prepare)(Teacher *t, int slot, const Image *im, const char *name);
    // slots 0..n-1 -> out (n x teacher_target_floats), float32
    int (*forward)(Teacher *t, int n, float *out);
    void (*close)(Teacher *t);
} TeacherOps;

struct Teacher {
    OlaTask task;
    char name[96];              // what it is, for messages and progress ("Depth-Anything-v2 (DINOv2 ViT-L/14)")
    char path[512];             // the file or folder it was opened from
    int ndim;
    int64_t shape[3];           // one image's target: depth (576, 1024), seg (1536, 24, 24), gen (1024)
    int max_batch;
    size_t param_count;         // floats of weights held
    const TeacherOps *ops;
    void *impl;                 // the teacher's own state
};

// Opens the teacher of `task` from what upstream's flags name (pretrain.sh):
//   OLA_DEPTH  --depth_estimator: depth_anything_v2_vitl.pth (the original
//              checkpoint, a torch pickle), or a transformers Depth-Anything folder
//   OLA_SEG    --image_segmentor: a OneFormer folder (shi-labs/oneformer_coco_swin_large)
//   OLA_GEN    --image_generator: a StableUnCLIPImg2ImgPipeline folder
//              (stabilityai/stable-diffusion-2-1-unclip: image_encoder/ + feature_extractor/),
//              or an image_encoder folder itself (then CLIP's default preprocessing)
// max_batch: the most images one teacher_forward takes (prepare's slot < max_batch, forward's
// 1 <= n <= max_batch: the caller's contract). Errors name the path and reason.
int teacher_open(Teacher *t, OlaTask task, const char *path, int max_batch);
static inline size_t teacher_target_floats(const Teacher *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}
// The calls through the ops (inline, so a teacher's own tests need only its opener).
static inline int teacher_prepare(Teacher *t, int slot, const Image *im, const char *name) {
    return t->ops->prepare(t, slot, im, name);
}
static inline int teacher_forward(Teacher *t, int n, float *out) { return t->ops->forward(t, n, out); }
static inline void teacher_close(Teacher *t) {
    if (t->ops && t->ops->close) t->ops->close(t);
    t->ops = NULL, t->impl = NULL;
}

// The per-teacher openers teacher_open dispatches to (model/teacher_{depth,seg,gen}.c).
int depth_teacher_open(Teacher *t, const char *path, int max_batch);
int seg_teacher_open(Teacher *t, const char *path, int max_batch);
int gen_teacher_open(Teacher *t, const char *path, int max_batch);

#endif
