// The teachers' common entry points (model/teacher.h): dispatch and checks.
#include "model/teacher.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

int teacher_open(Teacher *t, OlaTask task, const char *path, int max_batch) {
    memset(t, 0, sizeof *t);
    if (max_batch < 1) return vlm_fail(VLM_ERR_INPUT, path, NULL, "a teacher's batch must be at least 1 (got %d)", max_batch);
    t->task = task, t->max_batch = max_batch;
    snprintf(t->path, sizeof t->path, "%s", path);
    switch (task) {
    case OLA_DEPTH: return depth_teacher_open(t, path, max_batch);
    case OLA_SEG: return seg_teacher_open(t, path, max_batch);
    case OLA_GEN: return gen_teacher_open(t, path, max_batch);
    default: return vlm_fail(VLM_ERR_INPUT, path, NULL, "no teacher for task %d", (int)task);
    }
}
