// The depth teacher's opener with its internal option (model/teacher_depth.c;
// model/teacher.h has the interface). The original checkpoint does not say its
// number of heads: DINOv2's sizes all have heads of 64 (vits 6, vitb 12, vitl
// 16, vitg 24), so depth_teacher_open takes width / 64. A tiny test checkpoint
// has other heads: this opener takes them (0: width / 64). A transformers
// folder says its heads itself (num_attention_heads), and heads is ignored.
#ifndef VLM_MODEL_TEACHER_DEPTH_H
#define VLM_MODEL_TEACHER_DEPTH_H

#include "model/teacher.h"

// Depth-Anything-v2's input side (_get_dav2_feats: img.resize((336, 336)), infer_image's input_size).
#define DEPTH_TEACHER_SIDE 336

int depth_teacher_open_heads(Teacher *t, const char *path, int max_batch, int heads);

#endif
