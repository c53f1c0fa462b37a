// The demo dataset on disk: images, the LLaVA training files, the Q-Bench-style
// evaluation files, every image's ground truth, and the tokenizer corpus.
//
// Random streams (key = seed): scene i of the training split uses stream
// (1 << 32) + i, of the evaluation split (2 << 32) + i; each output file's
// wording and balance has its own stream (3 << 32) + file.
#include <errno.h>     // errno, EEXIST
#include <stdio.h>     // FILE, snprintf
#include <stdlib.h>    // free
#include <string.h>    // strlen, strcmp
#include <sys/stat.h>  // mkdir

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/str.h"
#include "demo/conversations.h"
#include "demo/demo.h"
#include "text/template.h"

enum { SPLIT_TRAIN = 1, SPLIT_EVAL = 2, WORDING = 3 };
enum { FILE_HIGH, FILE_QINSTRUCT, FILE_EVAL_HIGH, FILE_EVAL_MCQ };
#define TEXT_ONLY_EVERY 20  // one text-only record per this many images in high.json

static uint64_t stream_of(int kind, uint64_t index) { return ((uint64_t)kind << 32) + index; }

static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || (errno == EEXIST && dir_exists(path))) return VLM_OK;
    return vlm_fail(VLM_ERR_FAIL, path, NULL, "cannot create folder: %s", strerror(errno));
}

static int write_bytes(const char *path, const unsigned char *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return vlm_fail(VLM_ERR_FAIL, path, NULL, "cannot create: %s", strerror(errno));
    size_t n = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || n != size) return vlm_fail(VLM_ERR_FAIL, path, NULL, "write failed: %s", strerror(errno));
    return VLM_OK;
}

// A JSON array with one element per line (diffable, and `jq` reads it), atomically.
static int write_json_array(const char *dir, const char *name, const json_t *array) {
    char *path = path_join(dir, name);
    if (!path) return VLM_ERR_FAIL;
    AtomicFile af;
    int rc = atomic_open(&af, path);
    if (rc == VLM_OK) {
        fputs("[\n", af.fp);
        for (size_t i = 0; i < json_array_size(array) && rc == VLM_OK; i++) {
            if (i) fputs(",\n", af.fp);
            if (json_dumpf(json_array_get(array, i), af.fp, JSON_COMPACT | JSON_REAL_PRECISION(6)) != 0)
                rc = vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "write failed");
        }
        fputs("\n]\n", af.fp);
        rc = rc == VLM_OK ? atomic_commit(&af) : (atomic_abort(&af), rc);
    }
    free(path);
    return rc;
}

// One corpus line per conversation, as the template shows it to the tokenizer:
// v1's system prompt, "USER: q ASSISTANT: a" per turn (the "</s>" separators and
// the image placeholder are special and left out); plain: the caption.
static void corpus_record(FILE *f, const json_t *rec, const char *system) {
    const json_t *convs = json_object_get(rec, "conversations");
    if (system) fputs(system, f);
    for (size_t i = 0; i < json_array_size(convs); i++) {
        const json_t *t = json_array_get(convs, i);
        const char *v = json_string_value(json_object_get(t, "value"));
        bool human = strcmp(json_string_value(json_object_get(t, "from")), "human") == 0;
        if (str_has_prefix(v, "<image>")) v += str_has_prefix(v, "<image>\n") ? 8 : 7;
        if (!system) {
            if (!human) fprintf(f, "%s\n", v);
            continue;
        }
        fputs(human ? " USER: " : " ASSISTANT: ", f);
        for (; *v; v++) fputc(*v == '\n' ? ' ' : *v, f);  // one sentence per line for spm_train
    }
    if (system) fputc('\n', f);
}

static int write_corpus(const char *dir, const json_t *pt, const json_t *high, const json_t *qinstruct) {
    const Template *v1 = template_find("v1");
    char *path = path_join(dir, "corpus.txt");
    if (!path) return VLM_ERR_FAIL;
    AtomicFile af;
    int rc = atomic_open(&af, path);
    if (rc == VLM_OK) {
        for (size_t i = 0; i < json_array_size(pt); i++) corpus_record(af.fp, json_array_get(pt, i), NULL);
        for (size_t i = 0; i < json_array_size(high); i++) corpus_record(af.fp, json_array_get(high, i), v1->system);
        for (size_t i = 0; i < json_array_size(qinstruct); i++)
            corpus_record(af.fp, json_array_get(qinstruct, i), v1->system);
        rc = atomic_commit(&af);
    }
    free(path);
    return rc;
}

static json_t *scene_json(const DemoScene *s, const char *image, const char *split) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:s, s:i, s:f, s:f, s:b}", "image", image, "split", split,
                     "shape", demo_shape_name(s->shape), "colour", demo_colour_name(s->colour), "background",
                     demo_background_name(s->background), "cx", (double)s->cx, "cy", (double)s->cy, "radius",
                     (double)s->radius, "distortion", demo_distortion_name(s->distortion), "level", s->level,
                     "quality", demo_quality(s->level), "mos", demo_mos(s->level), "rated_good", s->rated_good);
}

// Draws, distorts and writes the images of one split; scenes[i] and names[i] are filled.
static int write_split(const char *images_dir, const DemoOptions *opt, int split, int n, DemoScene *scenes,
                       char (*names)[32], DemoStats *st) {
    for (int i = 0; i < n; i++) {
        Rng rng;
        rng_init(&rng, opt->seed, stream_of(split, (uint64_t)i));
        demo_scene_sample(&scenes[i], opt->size, &rng);
        unsigned char *data = NULL;
        size_t bytes = 0;
        const char *ext = "";
        int rc = demo_scene_file(&scenes[i], opt->size, &rng, &data, &bytes, &ext);
        if (rc != VLM_OK) return rc;
        snprintf(names[i], sizeof names[i], "%s-%05d%s", split == SPLIT_TRAIN ? "train" : "eval", i, ext);
        char *path = path_join(images_dir, names[i]);
        rc = path ? write_bytes(path, data, bytes) : VLM_ERR_FAIL;
        free(path);
        free(data);
        if (rc != VLM_OK) return rc;
        st->n_images++;
        st->n_jpeg += scenes[i].jpeg_file;
        st->image_bytes += bytes;
    }
    return VLM_OK;
}

int demo_write_dataset(const char *out_dir, const DemoOptions *opt, DemoStats *st) {
    *st = (DemoStats){0};
    if (opt->size < 16 || opt->size > 1024 || opt->n_train < 1 || opt->n_eval < 1)
        return vlm_fail(VLM_ERR_INPUT, out_dir, NULL, "demo data: size 16..1024 and at least one image per split");
    char *images_dir = path_join(out_dir, "images");
    DemoScene *train = vlm_calloc((size_t)opt->n_train, sizeof *train);
    DemoScene *eval = vlm_calloc((size_t)opt->n_eval, sizeof *eval);
    char (*train_names)[32] = vlm_calloc((size_t)opt->n_train, sizeof *train_names);
    char (*eval_names)[32] = vlm_calloc((size_t)opt->n_eval, sizeof *eval_names);
    json_t *files[7] = {0};  // pt, high, qinstruct, eval_high, eval_mcq, eval_score, scenes
    int rc = images_dir && train && eval && train_names && eval_names ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK) rc = make_dir(out_dir);
    if (rc == VLM_OK) rc = make_dir(images_dir);
    if (rc == VLM_OK) rc = write_split(images_dir, opt, SPLIT_TRAIN, opt->n_train, train, train_names, st);
    if (rc == VLM_OK) rc = write_split(images_dir, opt, SPLIT_EVAL, opt->n_eval, eval, eval_names, st);
    for (int f = 0; f < 7; f++) files[f] = json_array();
    json_t *pt = files[0], *high = files[1], *qi = files[2], *e_high = files[3], *e_mcq = files[4],
           *e_score = files[5], *scenes = files[6];
    if (rc == VLM_OK) {
        DemoBalance b_high, b_qi, b_ehigh, b_emcq;
        demo_balance_init(&b_high, opt->seed, stream_of(WORDING, FILE_HIGH));
        demo_balance_init(&b_qi, opt->seed, stream_of(WORDING, FILE_QINSTRUCT));
        demo_balance_init(&b_ehigh, opt->seed, stream_of(WORDING, FILE_EVAL_HIGH));
        demo_balance_init(&b_emcq, opt->seed, stream_of(WORDING, FILE_EVAL_MCQ));
        char id[64];
        for (int i = 0; i < opt->n_train; i++) {
            const DemoScene *s = &train[i];
            const char *image = train_names[i];
            snprintf(id, sizeof id, "pt-%05d", i);
            json_array_append_new(pt, demo_caption_record(s, id, image));
            snprintf(id, sizeof id, "high-%05d", i);
            json_array_append_new(high, demo_high_record(s, id, image, &b_high));
            if (i % TEXT_ONLY_EVERY == TEXT_ONLY_EVERY - 1) {
                snprintf(id, sizeof id, "text-%05d", i / TEXT_ONLY_EVERY);
                json_array_append_new(high, demo_text_only_record(id, &b_high));
                st->n_text_only++;
            }
            snprintf(id, sizeof id, "qi-%05d", i);
            demo_qinstruct_records(s, id, image, &b_qi, qi);
            json_array_append_new(scenes, scene_json(s, image, "train"));
        }
        for (int i = 0; i < opt->n_eval; i++) {
            const DemoScene *s = &eval[i];
            json_array_append_new(e_high, demo_eval_high_item(s, eval_names[i], &b_ehigh));
            json_array_append_new(e_mcq, demo_eval_mcq_item(s, eval_names[i], &b_emcq));
            json_array_append_new(e_score, demo_eval_score_item(s, eval_names[i]));
            json_array_append_new(scenes, scene_json(s, eval_names[i], "eval"));
        }
        static const char *const NAMES[7] = {"pt.json",       "high.json",     "qinstruct.json", "eval_high.json",
                                             "eval_mcq.json", "eval_score.json", "scenes.json"};
        for (int f = 0; f < 7 && rc == VLM_OK; f++) rc = write_json_array(out_dir, NAMES[f], files[f]);
        if (rc == VLM_OK) rc = write_corpus(out_dir, pt, high, qi);
        st->n_pt = json_array_size(pt);
        st->n_high = json_array_size(high);
        st->n_qinstruct = json_array_size(qi);
        st->n_eval_high = json_array_size(e_high);
        st->n_eval_mcq = json_array_size(e_mcq);
        st->n_eval_score = json_array_size(e_score);
    }
    for (int f = 0; f < 7; f++) json_decref(files[f]);
    free(images_dir);
    free(train);
    free(eval);
    free(train_names);
    free(eval_names);
    return rc;
}
