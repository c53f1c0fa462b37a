// OLA-VLM's distillation targets, precomputed: the frozen teachers' embedding
// of each training image, read from TARGETS_DIR/<the record's "image">.safetensors
// (the image's path under the image folder, plus ".safetensors"), one tensor
// per task, float32 / float16 / bfloat16:
//   "depth" [num_tokens, output_dim]         Depth-Anything-v2: mean of its DINOv2 layers 4, 11, 17, 23 (576 x 1024)
//   "seg"   [output_dim, side, side]         OneFormer's last backbone map resized to side x side = num_tokens (1536 x 24 x 24)
//   "gen"   [output_dim] or [1, output_dim]  unCLIP SD-2.1's image embedding (1024)
// A leading batch dimension of 1 is accepted on each. Upstream computes these on
// the fly from the raw image; `vlm ola targets` (train/ola_targets.h) writes them.
#ifndef VLM_DATA_TEACHER_TARGETS_H
#define VLM_DATA_TEACHER_TARGETS_H

#include <stdbool.h>

#include "formats/dtype.h"
#include "model/config.h"

// The targets of one image for the model's tasks: out[t] (num_tokens x
// output_dim, query-major: seg's map transposed to rows of output_dim).
// Errors name the file and tensor (missing file or tensor, wrong shape or dtype).
int teacher_targets_read(const char *dir, const char *image, const OlaConfig *o, float *const out[OLA_TASKS]);

// One task's target as written: its tensor name is ola_task_name(task).
typedef struct {
    OlaTask task;
    int ndim;
    int64_t shape[3];
    const float *data;  // float32, shape's elements
} TeacherTarget;

// DIR/<image>.safetensors (a fresh string; NULL when out of memory).
char *teacher_targets_path(const char *dir, const char *image);
// Whether the file at path exists, opens, and holds every one of targets[0..n)
// under its name with its shape (any of the dtypes read accepts); data unused.
bool teacher_targets_complete(const char *path, const TeacherTarget *targets, int n);
// Writes the targets to path in dtype (DT_F32, DT_BF16 or DT_F16, rounded to
// nearest even), creating its folders; atomically: the file is either the
// old one or the whole new one (core/file.h's AtomicFile).
int teacher_targets_write(const char *path, const TeacherTarget *targets, int n, DType dtype);

#endif
