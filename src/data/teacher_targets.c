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

int teacher_targets_read(const char *dir, const char *image, const OlaConfig *o, float *const out[OLA_TASKS]) {
    size_t n = strlen(dir) + strlen(image) + 32;
    char *path = malloc(n);
    if (!path) return VLM_ERR_FAIL;
    snprintf(path, n, "%s/%s.safetensors", dir, image);
    SafetensorsFile f;
    int rc = file_exists(path) ? safetensors_open(&f, path)
                               : vlm_fail(VLM_ERR_INPUT, path, NULL, "missing: the teachers' embeddings of image %s", image);
    free(path);
    if (rc != VLM_OK) return rc;
    for (int k = 0; rc == VLM_OK && k < o->n_order; k++) rc = read_task(&f, o, o->order[k], out[o->order[k]]);
    safetensors_close(&f);
    return rc;
}
