// The teachers' targets of a dataset's images, see ola_targets.h.
#include "train/ola_targets.h"

#include <jansson.h>
#include <omp.h>     // the batch's images decode and prepare in parallel
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/strmap.h"
#include "core/timer.h"
#include "data/dataset.h"
#include "data/teacher_targets.h"
#include "image/image.h"
#include "model/teacher.h"

// One distinct image: where it came from (for messages) and its paths.
typedef struct {
    char *name;        // the record's "image" (also the key of the target file)
    char *path;        // the image file
    int file;          // the data file of its first record
    size_t record;
} Item;

typedef struct {
    Item *items;
    size_t n, cap;
    StrMap seen;       // name -> index (keys: items' names)
} Items;

static int items_add(Items *s, const Dataset *d, int file, size_t record, const char *name) {
    if (strmap_get(&s->seen, name, strlen(name)) >= 0) return VLM_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        Item *grown = realloc(s->items, cap * sizeof *grown);
        if (!grown) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory listing images");
        s->items = grown, s->cap = cap;
    }
    if (s->n >= INT32_MAX) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "more than 2^31 distinct images");
    Item *it = &s->items[s->n];
    it->name = strdup(name);
    it->path = dataset_image_path(&d->files[file], name);
    it->file = file, it->record = record;
    if (!it->name || !it->path) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory listing images");
    int rc = strmap_put(&s->seen, it->name, strlen(it->name), (int32_t)s->n);
    if (rc == VLM_OK) s->n++;
    return rc;
}

static void items_free(Items *s) {
    for (size_t i = 0; i < s->n; i++) free(s->items[i].name), free(s->items[i].path);
    free(s->items);
    strmap_free(&s->seen);
}

// Every record's image, in data order, each name once.
static int list_images(const Dataset *d, Items *s, OlaTargetsReport *r) {
    int rc = strmap_init(&s->seen, d->count);
    for (size_t g = 0; rc == VLM_OK && g < d->count; g++) {
        int file;
        size_t rec;
        dataset_locate(d, g, &file, &rec);
        json_t *j = NULL;
        rc = dataset_file_record(&d->files[file], rec, &j);
        if (rc != VLM_OK) break;
        r->records++;
        json_t *image = json_object_get(j, "image");
        if (image && !json_is_string(image))
            rc = vlm_fail(VLM_ERR_INPUT, d->files[file].path, NULL, "record %zu: \"image\" is not a string", rec);
        else if (image)
            rc = items_add(s, d, file, rec, json_string_value(image));
        json_decref(j);
    }
    r->images = s->n;
    return rc;
}

// The targets of one image as the writer takes them, out[t] its rows of each teacher's output.
static int fill_targets(TeacherTarget *tt, const Teacher *teachers, const bool *use, float *const *out, size_t slot) {
    int n = 0;
    for (int t = 0; t < OLA_TASKS; t++) {
        if (!use[t]) continue;
        tt[n].task = (OlaTask)t, tt[n].ndim = teachers[t].ndim;
        memcpy(tt[n].shape, teachers[t].shape, sizeof tt[n].shape);
        tt[n].data = out ? out[t] + slot * teacher_target_floats(&teachers[t]) : NULL;
        n++;
    }
    return n;
}

typedef struct {
    Image im;
    int rc;
    char error[512];
} Slot;

// Decodes and prepares the batch's images: slot i for batch[i]; failures stay in slots[i].
static void prepare_batch(Teacher *teachers, const bool *use, const Item *items, const size_t *batch, int n, Slot *slots) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
        Slot *s = &slots[i];
        const Item *it = &items[batch[i]];
        s->rc = image_decode_file(it->path, &s->im);
        for (int t = 0; s->rc == VLM_OK && t < OLA_TASKS; t++)
            if (use[t]) s->rc = teacher_prepare(&teachers[t], i, &s->im, it->path);
        if (s->rc != VLM_OK) snprintf(s->error, sizeof s->error, "%s", vlm_last_error());
        image_free(&s->im);
    }
}

int ola_targets_run(const OlaTargetsOptions *o, Teacher teachers[OLA_TASKS], OlaTargetsReport *r) {
    memset(r, 0, sizeof *r);
    double t0 = timer_now_s();
    bool use[OLA_TASKS] = {0};
    int n_use = 0;
    for (int t = 0; t < OLA_TASKS; t++) {
        use[t] = teachers[t].ops != NULL, n_use += use[t];
        if (use[t] && teachers[t].max_batch < o->batch)
            return vlm_fail(VLM_ERR_FAIL, teachers[t].path, NULL, "opened for batches of %d, not %d", teachers[t].max_batch,
                            o->batch);
    }
    if (n_use == 0)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL,
                        "no teacher given: --depth_estimator, --image_segmentor and/or --image_generator");
    if (o->batch < 1) return vlm_fail(VLM_ERR_INPUT, NULL, "--batch_size", "%d: at least 1", o->batch);
    Dataset d = {0};
    Items items = {0};
    float *out[OLA_TASKS] = {0};
    size_t *batch = malloc(sizeof(size_t) * (size_t)o->batch);
    Slot *slots = calloc((size_t)o->batch, sizeof(Slot));
    int rc = batch && slots ? VLM_OK : vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    for (int i = 0; rc == VLM_OK && i < o->n_data; i++) rc = dataset_add(&d, o->data_paths[i], o->image_folder);
    if (rc == VLM_OK) rc = list_images(&d, &items, r);
    for (int t = 0; rc == VLM_OK && t < OLA_TASKS; t++) {
        if (!use[t]) continue;
        out[t] = malloc(sizeof(float) * teacher_target_floats(&teachers[t]) * (size_t)o->batch);
        if (!out[t]) rc = vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory for the %s teacher's batch", ola_task_name(t));
    }
    TeacherTarget tt[OLA_TASKS];
    Progress p;
    if (rc == VLM_OK) progress_begin(&p, stderr, "targets", "images", items.n);
    if (o->quiet) p.enabled = false;
    size_t next = 0;
    while (rc == VLM_OK && next < items.n) {
        // the next batch of images without a complete file
        int n = 0;
        for (; next < items.n && n < o->batch; next++) {
            char *path = teacher_targets_path(o->out_dir, items.items[next].name);
            if (!path) {
                rc = vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
                break;
            }
            int k = fill_targets(tt, teachers, use, NULL, 0);
            if (teacher_targets_complete(path, tt, k)) r->present++;
            else batch[n++] = next;
            free(path);
        }
        if (rc != VLM_OK || n == 0) {
            progress_update(&p, next);
            continue;
        }
        prepare_batch(teachers, use, items.items, batch, n, slots);
        // a bad image stops the run, or is counted and its slot filled by the next good one
        int good = 0;
        for (int i = 0; i < n && rc == VLM_OK; i++) {
            const Item *it = &items.items[batch[i]];
            if (slots[i].rc == VLM_OK) {
                batch[good++] = batch[i];
                continue;
            }
            if (!o->skip_bad) {
                vlm_fail(slots[i].rc, d.files[it->file].path, NULL, "record %zu: %s", it->record, slots[i].error);
                rc = slots[i].rc;
            } else {
                r->bad++;
                log_msg(LOG_WARN, "skipped: %s: record %zu: %s", d.files[it->file].path, it->record, slots[i].error);
            }
        }
        // the good ones packed to the front: prepared again in their new slots (only after a bad image)
        if (rc == VLM_OK && good < n && good > 0) prepare_batch(teachers, use, items.items, batch, good, slots);
        for (int t = 0; rc == VLM_OK && good > 0 && t < OLA_TASKS; t++) {
            if (!use[t]) continue;
            double ts = timer_now_s();
            rc = teacher_forward(&teachers[t], good, out[t]);
            r->teacher_seconds[t] += timer_now_s() - ts;
        }
        for (int i = 0; rc == VLM_OK && i < good; i++) {
            char *path = teacher_targets_path(o->out_dir, items.items[batch[i]].name);
            int k = fill_targets(tt, teachers, use, out, (size_t)i);
            rc = path ? teacher_targets_write(path, tt, k, o->dtype) : vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
            free(path);
            if (rc == VLM_OK) r->computed++;
        }
        progress_update(&p, next);
    }
    if (rc == VLM_OK) progress_end(&p);
    for (int t = 0; t < OLA_TASKS; t++) free(out[t]);
    free(batch), free(slots);
    items_free(&items);
    dataset_close(&d);
    r->seconds = timer_now_s() - t0;
    return rc;
}
