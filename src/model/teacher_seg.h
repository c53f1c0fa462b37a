// OLA-VLM's seg teacher (model/teacher.h, OLA_SEG): the parts only its tests use.
#ifndef VLM_MODEL_TEACHER_SEG_H
#define VLM_MODEL_TEACHER_SEG_H

#include "model/teacher.h"

// Upstream's sizes, 768 x 768 before OneFormer's processor and 24 x 24 after the
// backbone (base_ola_vlm.py _get_seg_targets), are what seg_teacher_open sets.
#define SEG_PRE_RESIZE 768
#define SEG_SIDE 24

// TEST ONLY: other sizes for those two, so that a tiny fixture stays small
// (t->shape becomes (C, side, side)). Call after seg_teacher_open, before any
// prepare; the real path never calls it.
int seg_teacher_test_sizes(Teacher *t, int pre_resize, int side);
// TEST ONLY: slot's pixel_values (3, *h, *w) as prepare left them.
const float *seg_teacher_pixels(const Teacher *t, int slot, int *h, int *w);

#endif
