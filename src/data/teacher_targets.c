// Precomputed teacher embeddings, see teacher_targets.h.
#include "data/teacher_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "formats/safetensors.h"

// The shape without a leading 1 (a batch of one), in dims; returns their number.
static int squeeze_batch(const TensorInfo *info, int64_t *dims) {
    int skip = info->ndim > 1 && info->shape[0] == 1, n = 0;
    for (int i = skip; i < info->ndim; i++) dims[n++] = info->shape[i];
    return n;
}

static int read_task(const SafetensorsFile *f, const OlaConfig *o, OlaTask t, float *out) {
    const char *name = ola_task_name(t);
    int i = safetensors_find(f, name);
    if (i < 0) return vlm_fail(VLM_ERR_INPUT, f->path, name, "no such tensor (the %s teacher's embedding)", name);
    const TensorInfo *info = &f->tensors[i];
    if (info->dtype != DT_F32 && info->dtype != DT_F16 && info->dtype != DT_BF16)
        return vlm_fail(VLM_ERR_INPUT, f->path, name, "dtype %s: expected F32, F16 or BF16", dtype_name(info->dtype));
    int NQ = o->task[t].num_tokens, O = o->task[t].output_dim;
    int64_t d[TENSOR_MAX_DIMS];
    int n = squeeze_batch(info, d);
    bool ok = t == OLA_DEPTH ? n == 2 && d[0] == NQ && d[1] == O
            : t == OLA_SEG   ? n == 3 && d[0] == O && d[1] * d[2] == NQ
                             : (n == 1 && d[0] == O && NQ == 1) || (n == 2 && d[0] == NQ && d[1] == O);
    if (!ok) {
        char got[96];
        shape_format(info->shape, info->ndim, got, sizeof got);
        return vlm_fail(VLM_ERR_INPUT, f->path, name, "shape %s; the model's %s predictor needs %s [%d, %d]%s", got,
                        name, t == OLA_SEG ? "[output_dim, side, side] =" : "", t == OLA_SEG ? O : NQ,
                        t == OLA_SEG ? NQ : O, t == OLA_SEG ? " (side x side)" : "");
    }
    const void *data = safetensors_tensor_data(f, i);
    if (t != OLA_SEG) {
        dtype_to_f32(info->dtype, data, out, (size_t)NQ * O);
        return VLM_OK;
    }
    // the map (O, side*side) -> rows of O per position (the predictor's layout)
    float *map = malloc(sizeof(float) * (size_t)NQ * O);
    if (!map) return vlm_fail(VLM_ERR_FAIL, f->path, name, "out of memory");
    dtype_to_f32(info->dtype, data, map, (size_t)NQ * O);
    for (int c = 0; c < O; c++)
        for (int q = 0; q < NQ; q++) out[(size_t)q * O + c] = map[(size_t)c * NQ + q];
    free(map);
    return VLM_OK;
}

char *teacher_targets_path(const char *dir, const char *image) {
    size_t n = strlen(dir) + strlen(image) + 32;
    char *path = malloc(n);
    if (path) snprintf(path, n, "%s/%s.safetensors", dir, image);
    return path;
}

int teacher_targets_read(const char *dir, const char *image, const OlaConfig *o, float *const out[OLA_TASKS]) {
    char *path = teacher_targets_path(dir, image);
    if (!path) return vlm_fail(VLM_ERR_FAIL, dir, image, "out of memory");
    SafetensorsFile f;
    int rc = file_exists(path) ? safetensors_open(&f, path)
                               : vlm_fail(VLM_ERR_INPUT, path, NULL, "missing: the teachers' embeddings of image %s", image);
    free(path);
    if (rc != VLM_OK) return rc;
    for (int k = 0; rc == VLM_OK && k < o->n_order; k++) rc = read_task(&f, o, o->order[k], out[o->order[k]]);
    safetensors_close(&f);
    return rc;
}

bool teacher_targets_complete(const char *path, const TeacherTarget *targets, int n) {
    if (!file_exists(path)) return false;
    SafetensorsFile f;
    if (safetensors_open(&f, path) != VLM_OK) {
        vlm_clear_error();
        return false;
    }
    bool ok = true;
    for (int k = 0; ok && k < n; k++) {
        int i = safetensors_find(&f, ola_task_name(targets[k].task));
        const TensorInfo *info = i >= 0 ? &f.tensors[i] : NULL;
        ok = info && info->ndim == targets[k].ndim &&
             (info->dtype == DT_F32 || info->dtype == DT_BF16 || info->dtype == DT_F16);
        for (int d = 0; ok && d < targets[k].ndim; d++) ok = info->shape[d] == targets[k].shape[d];
    }
    safetensors_close(&f);
    return ok;
}

int teacher_targets_write(const char *path, const TeacherTarget *targets, int n, DType dtype) {
    if (n < 1 || n > OLA_TASKS || (dtype != DT_F32 && dtype != DT_BF16 && dtype != DT_F16))
        return vlm_fail(VLM_ERR_FAIL, path, NULL, "teacher_targets_write: %d targets in %s", n, dtype_name(dtype));
    char *dir = path_dirname(path);
    int rc = dir ? make_dirs(dir) : vlm_fail(VLM_ERR_FAIL, path, NULL, "out of memory");
    free(dir);
    if (rc != VLM_OK) return rc;
    TensorInfo infos[OLA_TASKS];
    const void *datas[OLA_TASKS];
    void *converted[OLA_TASKS] = {0};
    for (int k = 0; rc == VLM_OK && k < n; k++) {
        TensorInfo *t = &infos[k];
        memset(t, 0, sizeof *t);
        t->name = (char *)ola_task_name(targets[k].task);
        t->dtype = dtype, t->ndim = targets[k].ndim;
        for (int d = 0; d < t->ndim; d++) t->shape[d] = targets[k].shape[d];
        if (tensor_info_sizes(t) != 0) rc = vlm_fail(VLM_ERR_FAIL, path, t->name, "shape too large");
        datas[k] = targets[k].data;
        if (rc != VLM_OK || dtype == DT_F32) continue;
        uint16_t *h = malloc(t->nbytes);
        if (!h) {
            rc = vlm_fail(VLM_ERR_FAIL, path, t->name, "out of memory");
            break;
        }
        for (uint64_t e = 0; e < t->numel; e++)
            h[e] = dtype == DT_BF16 ? f32_to_bf16(targets[k].data[e]) : f32_to_f16(targets[k].data[e]);
        datas[k] = converted[k] = h;
    }
    if (rc == VLM_OK) rc = safetensors_write(path, infos, datas, n, NULL);
    for (int k = 0; k < n; k++) free(converted[k]);
    return rc;
}
