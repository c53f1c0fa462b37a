// Dataset mixing, see mix.h.
#include "data/mix.h"

#include <jansson.h>  // records that need rewriting
#include <math.h>     // floor, llround
#include <stdlib.h>   // free, qsort
#include <string.h>   // strcmp, strstr

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "text/conversation.h"

typedef struct { uint32_t file; uint64_t record; } Pick;

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

// Every record floor(ratio) times, then a seeded sample of the fraction (kept
// in file order), all appended to picks.
static int pick_records(const DatasetFile *f, uint32_t file, double ratio, uint64_t seed, Pick **picks, size_t *n,
                        size_t *cap) {
    size_t whole = (size_t)floor(ratio);
    size_t extra = (size_t)llround((ratio - (double)whole) * (double)f->count);
    size_t need = *n + whole * f->count + extra;
    if (need > *cap) {
        Pick *p = vlm_realloc(*picks, need * sizeof *p);
        if (!p) return VLM_ERR_FAIL;
        *picks = p;
        *cap = need;
    }
    for (size_t w = 0; w < whole; w++)
        for (size_t i = 0; i < f->count; i++) (*picks)[(*n)++] = (Pick){file, i};
    if (extra) {
        uint64_t *order = vlm_malloc(f->count * sizeof *order);
        if (!order) return VLM_ERR_FAIL;
        for (size_t i = 0; i < f->count; i++) order[i] = i;
        Rng rng;
        rng_init(&rng, seed, 1000 + file);  // one stream per input file
        rng_shuffle_u64(&rng, order, f->count);
        qsort(order, extra, sizeof *order, cmp_u64);
        for (size_t i = 0; i < extra; i++) (*picks)[(*n)++] = (Pick){file, order[i]};
        free(order);
    }
    return VLM_OK;
}

// Applies the prefix and the placeholder dialect to one parsed record.
static int rewrite(json_t *rec, const char *prefix, const char *placeholder, size_t *converted) {
    json_t *image = json_object_get(rec, "image");
    if (prefix && prefix[0] && json_is_string(image)) {
        size_t n = strlen(prefix) + json_string_length(image) + 1;
        char *joined = vlm_malloc(n);
        if (!joined) return VLM_ERR_FAIL;
        snprintf(joined, n, "%s%s", prefix, json_string_value(image));
        json_object_set_new(rec, "image", json_string(joined));
        free(joined);
    }
    if (!placeholder) return VLM_OK;
    const char *other = strcmp(placeholder, "<image>") == 0 ? "<|image|>" : "<image>";
    size_t i;
    json_t *turn;
    json_array_foreach(json_object_get(rec, "conversations"), i, turn) {
        const char *value = json_string_value(json_object_get(turn, "value"));
        if (!value || !strstr(value, other)) continue;
        char *fixed = str_replace_all(value, other, placeholder);
        if (!fixed) return VLM_ERR_FAIL;
        json_object_set_new(turn, "value", json_string(fixed));
        free(fixed);
        (*converted)++;
    }
    return VLM_OK;
}

// A record needs parsing only if a prefix or a dialect change may touch it.
static bool needs_rewrite(const DatasetFile *f, uint64_t r, const char *prefix, const char *placeholder) {
    if (prefix && prefix[0]) return true;
    if (!placeholder) return false;
    const char *other = strcmp(placeholder, "<image>") == 0 ? "<|image|>" : "<image>";
    size_t n = strlen(other);
    const unsigned char *s = f->map.data + f->start[r];
    for (size_t i = 0; i + n <= f->len[r]; i++)
        if (s[i] == '<' && memcmp(s + i, other, n) == 0) return true;
    return false;
}

int data_mix(const MixInput *inputs, int n, const MixOptions *opt, const char *out_path, MixReport *report) {
    memset(report, 0, sizeof *report);
    DatasetFile *files = vlm_calloc((size_t)n, sizeof *files);
    Pick *picks = NULL;
    size_t n_picks = 0, cap = 0;
    int rc = files ? VLM_OK : VLM_ERR_FAIL;
    for (int i = 0; i < n && rc == VLM_OK; i++) {
        if (!(inputs[i].ratio >= 0)) rc = vlm_fail(VLM_ERR_INPUT, inputs[i].path, NULL, "ratio must be >= 0");
        if (rc == VLM_OK) rc = dataset_file_open(&files[i], inputs[i].path, NULL);
        if (rc == VLM_OK) rc = pick_records(&files[i], (uint32_t)i, inputs[i].ratio, opt->seed, &picks, &n_picks, &cap);
        if (rc == VLM_OK && i < 64) report->read[i] = files[i].count;
    }
    if (rc == VLM_OK && opt->shuffle) {
        // shuffle pick indices with the run's seed, then permute
        uint64_t *order = vlm_malloc((n_picks ? n_picks : 1) * sizeof *order);
        Pick *shuffled = vlm_malloc((n_picks ? n_picks : 1) * sizeof *shuffled);
        if (!order || !shuffled) rc = VLM_ERR_FAIL;
        for (size_t i = 0; rc == VLM_OK && i < n_picks; i++) order[i] = i;
        if (rc == VLM_OK) {
            Rng rng;
            rng_init(&rng, opt->seed, 0);
            rng_shuffle_u64(&rng, order, n_picks);
            for (size_t i = 0; i < n_picks; i++) shuffled[i] = picks[order[i]];
            free(picks);
            picks = shuffled;
            shuffled = NULL;
        }
        free(order);
        free(shuffled);
    }
    AtomicFile af = {0};
    if (rc == VLM_OK) rc = atomic_open(&af, out_path);
    for (size_t k = 0; rc == VLM_OK && k < n_picks; k++) {
        const Pick *p = &picks[k];
        const DatasetFile *f = &files[p->file];
        const MixInput *in = &inputs[p->file];
        fputs(k ? ",\n" : "[\n", af.fp);
        if (!needs_rewrite(f, p->record, in->prefix, opt->placeholder)) {
            fwrite(f->map.data + f->start[p->record], 1, f->len[p->record], af.fp);  // the record's own bytes
        } else {
            json_t *rec;
            rc = dataset_file_record(f, p->record, &rec);
            if (rc == VLM_OK) rc = rewrite(rec, in->prefix, opt->placeholder, &report->placeholders_converted);
            if (rc == VLM_OK && json_dumpf(rec, af.fp, JSON_COMPACT) != 0)
                rc = vlm_fail_errno(VLM_ERR_FAIL, out_path, NULL, "write failed");
            json_decref(rec);
        }
        if (p->file < 64) report->written[p->file]++;
    }
    if (rc == VLM_OK) {
        fputs(n_picks ? "\n]\n" : "[]\n", af.fp);
        rc = atomic_commit(&af);
        report->total = n_picks;
    } else if (af.fp) {
        atomic_abort(&af);
    }
    for (int i = 0; files && i < n; i++) dataset_file_close(&files[i]);
    free(files);
    free(picks);
    return rc;
}
