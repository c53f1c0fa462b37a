// The demo's synthetic dataset: determinism, images our decoders read at the
// size written, files the dataset tools accept (with a tokenizer trained by
// spm_train as `make demo` does), distortions that move the measures they
// should, and balanced answers.
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "core/str.h"
#include "demo/conversations.h"
#include "demo/demo.h"
#include "image/image.h"
#include "test_util.h"

enum { BUF = 1 << 16 };
static char out[BUF], err[BUF];

static const char *const FILES[] = {"pt.json",       "high.json",       "qinstruct.json", "eval_high.json",
                                    "eval_mcq.json", "eval_score.json", "scenes.json",    "corpus.txt"};
#define N_FILES (sizeof FILES / sizeof *FILES)

// A fresh folder name under /tmp (the folder itself is made by the generator).
static void temp_dir(char *buf, size_t size) {
    snprintf(buf, size, "/tmp/vlm-demo-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(buf));
    rmdir(buf);
}

static void rm_rf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *slurp(const char *dir, const char *name, size_t *size) {
    char *path = path_join(dir, name), *data = NULL;
    ck_assert_msg(file_read_all(path, 1u << 30, &data, size) == VLM_OK, "%s", vlm_last_error());
    free(path);
    return data;
}

static bool same_file(const char *a, const char *b, const char *name) {
    size_t na, nb;
    char *x = slurp(a, name, &na), *y = slurp(b, name, &nb);
    bool same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static json_t *load(const char *dir, const char *name) {
    char *path = path_join(dir, name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    ck_assert_msg(j != NULL, "%s: %s", path, e.text);
    free(path);
    return j;
}

static const char *str(const json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    ck_assert_msg(s != NULL, "missing string \"%s\"", key);
    return s;
}

// ---------------------------------------------------------------------------- determinism

START_TEST(same_seed_same_bytes_other_seed_other_data) {
    char a[64], b[64], c[64], args[256];
    temp_dir(a, sizeof a), temp_dir(b, sizeof b), temp_dir(c, sizeof c);
    // one through the command line, one in process: the same bytes
    snprintf(args, sizeof args, "demo data --out %s --seed 7 --train 60 --eval 20", a);
    ck_assert_msg(run_vlm(args, out, BUF, err, BUF) == 0, "%s", err);
    ck_assert_msg(strstr(err, "80 images") != NULL, "%s", err);
    DemoStats st;
    DemoOptions opt = {.seed = 7, .size = 32, .n_train = 60, .n_eval = 20};
    ck_assert_msg(demo_write_dataset(b, &opt, &st) == VLM_OK, "%s", vlm_last_error());
    ck_assert_uint_eq(st.n_images, 80);
    ck_assert_uint_eq(st.n_pt, 60);
    ck_assert_uint_eq(st.n_qinstruct, 120);
    ck_assert_uint_eq(st.n_high, 63);  // 3 text-only
    ck_assert_uint_eq(st.n_eval_score, 20);
    opt.seed = 8;
    ck_assert_msg(demo_write_dataset(c, &opt, &st) == VLM_OK, "%s", vlm_last_error());
    for (size_t f = 0; f < N_FILES; f++) {
        ck_assert_msg(same_file(a, b, FILES[f]), "%s differs for the same seed", FILES[f]);
        ck_assert_msg(!same_file(a, c, FILES[f]), "%s is the same for another seed", FILES[f]);
    }
    json_t *scenes = load(a, "scenes.json");
    int differ = 0;
    for (size_t i = 0; i < json_array_size(scenes); i++) {
        char name[128];
        snprintf(name, sizeof name, "images/%s", str(json_array_get(scenes, i), "image"));
        ck_assert_msg(same_file(a, b, name), "%s differs for the same seed", name);
        char *other = path_join(c, name);
        if (!file_exists(other) || !same_file(a, c, name)) differ++;
        free(other);
    }
    ck_assert_int_ge(differ, 75);
    ck_assert_int_eq(count_dir_entries(b) - 1, (int)N_FILES);  // + images/
    json_decref(scenes);
    rm_rf(a), rm_rf(b), rm_rf(c);
}
END_TEST

// ---------------------------------------------------------------------------- images

// Every image decodes at the size written, JPEGs are JPEGs, and a pristine
// image shows its shape's colour at the shape's centre.
START_TEST(images_decode_at_their_size) {
    static const unsigned char RGB[DEMO_N_COLOURS][3] = {
        {215, 40, 40}, {40, 170, 60}, {40, 80, 220}, {235, 205, 40}, {150, 60, 190}};
    for (int size = 32; size <= 48; size += 16) {
        char dir[64];
        temp_dir(dir, sizeof dir);
        DemoStats st;
        DemoOptions opt = {.seed = 3, .size = size, .n_train = 150, .n_eval = 10};
        ck_assert_msg(demo_write_dataset(dir, &opt, &st) == VLM_OK, "%s", vlm_last_error());
        ck_assert_uint_gt(st.n_jpeg, 30);
        json_t *scenes = load(dir, "scenes.json");
        int kinds[DEMO_N_DISTORTIONS] = {0}, checked_colour = 0;
        for (size_t i = 0; i < json_array_size(scenes); i++) {
            json_t *s = json_array_get(scenes, i);
            char path[256];
            snprintf(path, sizeof path, "%s/images/%s", dir, str(s, "image"));
            size_t n;
            char *bytes = slurp(dir, path + strlen(dir) + 1, &n);
            bool jpg = str_has_suffix(path, ".jpg");
            ck_assert_int_eq(image_sniff(bytes, n), jpg ? IMAGE_JPEG : IMAGE_PNG);
            free(bytes);
            if (strcmp(str(s, "distortion"), "jpeg") == 0) ck_assert(jpg);
            Image im;
            ck_assert_msg(image_decode_file(path, &im) == VLM_OK, "%s", vlm_last_error());
            ck_assert_int_eq(im.width, size);
            ck_assert_int_eq(im.height, size);
            for (int d = 0; d < DEMO_N_DISTORTIONS; d++) kinds[d] += strcmp(str(s, "distortion"), demo_distortion_name(d)) == 0;
            if (strcmp(str(s, "distortion"), "none") == 0 && !jpg) {
                int colour = -1;
                for (int c = 0; c < DEMO_N_COLOURS; c++)
                    if (strcmp(str(s, "colour"), demo_colour_name(c)) == 0) colour = c;
                ck_assert_int_ge(colour, 0);
                // the shape covers its centre
                int cx = (int)json_real_value(json_object_get(s, "cx")), cy = (int)json_real_value(json_object_get(s, "cy"));
                ck_assert(abs(cx - size / 2) <= size / 10 + 1 && abs(cy - size / 2) <= size / 10 + 1);
                ck_assert(json_real_value(json_object_get(s, "radius")) > 0.25 * size);
                const uint8_t *px = im.rgb + ((size_t)cy * size + cx) * 3;
                for (int c = 0; c < 3; c++) ck_assert_int_eq(px[c], RGB[colour][c]);
                checked_colour++;
            }
            image_free(&im);
        }
        for (int d = 0; d < DEMO_N_DISTORTIONS; d++) ck_assert_msg(kinds[d] >= 5, "%s: %d", demo_distortion_name(d), kinds[d]);
        ck_assert_int_ge(checked_colour, 10);
        json_decref(scenes);
        rm_rf(dir);
    }
}
END_TEST

// Mean squared difference between horizontal and vertical neighbours: edges.
static double sharpness(const Image *im) {
    double acc = 0;
    int w = im->width, h = im->height;
    for (int y = 0; y + 1 < h; y++)
        for (int x = 0; x + 1 < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = im->rgb[((size_t)y * w + x) * 3 + c];
                double dx = im->rgb[((size_t)y * w + x + 1) * 3 + c] - v, dy = im->rgb[((size_t)(y + 1) * w + x) * 3 + c] - v;
                acc += dx * dx + dy * dy;
            }
    return acc / ((double)(w - 1) * (h - 1) * 3);
}

static double mse(const Image *a, const Image *b) {
    double acc = 0;
    size_t n = (size_t)a->width * a->height * 3;
    for (size_t i = 0; i < n; i++) acc += (double)(a->rgb[i] - b->rgb[i]) * (a->rgb[i] - b->rgb[i]);
    return acc / n;
}

static void stats(const Image *im, double *mean, double *std) {
    size_t n = (size_t)im->width * im->height * 3;
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += im->rgb[i], s2 += (double)im->rgb[i] * im->rgb[i];
    *mean = s / n;
    *std = sqrt(s2 / n - *mean * *mean);
}

// The image of scene s at every level of distortion d (after the encoder for JPEG).
static void levels_of(DemoScene s, int d, Image out[DEMO_N_LEVELS]) {
    for (int l = 0; l < DEMO_N_LEVELS; l++) {
        s.distortion = l ? d : DIST_NONE;
        s.level = l;
        s.jpeg_file = d == DIST_JPEG && l > 0;
        Rng rng;
        rng_init(&rng, 11, 0);
        unsigned char *data;
        size_t n;
        const char *ext;
        ck_assert_msg(demo_scene_file(&s, 32, &rng, &data, &n, &ext) == VLM_OK, "%s", vlm_last_error());
        ck_assert_msg(image_decode_memory(data, n, "scene", &out[l]) == VLM_OK, "%s", vlm_last_error());
        free(data);
    }
}

START_TEST(distortions_are_monotone_in_level) {
    for (int l = 1; l < DEMO_N_LEVELS; l++) {
        ck_assert(demo_quality(l) < demo_quality(l - 1));
        ck_assert(demo_mos(l) < demo_mos(l - 1));
        ck_assert(demo_p_good(l) <= demo_p_good(l - 1));
        ck_assert(demo_blur_sigma(l, 32) > demo_blur_sigma(l - 1, 32));
        ck_assert(demo_noise_sigma(l) > demo_noise_sigma(l - 1));
        ck_assert(demo_jpeg_quality(l) < demo_jpeg_quality(l - 1));
    }
    ck_assert(demo_quality(0) <= 1 && demo_quality(DEMO_N_LEVELS - 1) >= 0);
    ck_assert(demo_mos(0) <= 5 && demo_mos(DEMO_N_LEVELS - 1) >= 1);
    for (int shape = 0; shape < DEMO_N_SHAPES; shape++) {
        DemoScene s = {.shape = shape, .colour = (shape + 1) % DEMO_N_COLOURS, .background = BACKGROUND_GRAY,
                       .cx = 16, .cy = 16, .radius = 10, .gradient = 10};
        Image im[DEMO_N_LEVELS];
        levels_of(s, DIST_BLUR, im);  // blur takes edges away
        for (int l = 1; l < DEMO_N_LEVELS; l++) ck_assert(sharpness(&im[l]) < 0.8 * sharpness(&im[l - 1]));
        for (int l = 0; l < DEMO_N_LEVELS; l++) image_free(&im[l]);
        // noise and JPEG move further from the clean image at each level (by a clear margin)
        int far[] = {DIST_NOISE, DIST_JPEG};
        for (int k = 0; k < 2; k++) {
            levels_of(s, far[k], im);
            double prev = 0;
            for (int l = 1; l < DEMO_N_LEVELS; l++) {
                double e = mse(&im[l], &im[0]);
                ck_assert_msg(e > 1.3 * prev + 5, "%s level %d: mse %.1f after %.1f", demo_distortion_name(far[k]), l, e, prev);
                prev = e;
            }
            if (far[k] == DIST_NOISE)  // noise adds edges everywhere
                ck_assert(sharpness(&im[3]) > sharpness(&im[0]));
            for (int l = 0; l < DEMO_N_LEVELS; l++) image_free(&im[l]);
        }
        double mean[DEMO_N_LEVELS], std[DEMO_N_LEVELS];
        levels_of(s, DIST_BRIGHT, im);
        for (int l = 0; l < DEMO_N_LEVELS; l++) stats(&im[l], &mean[l], &std[l]), image_free(&im[l]);
        for (int l = 1; l < DEMO_N_LEVELS; l++) ck_assert(mean[l] > mean[l - 1] + 10);
        levels_of(s, DIST_DARK, im);
        for (int l = 0; l < DEMO_N_LEVELS; l++) stats(&im[l], &mean[l], &std[l]), image_free(&im[l]);
        for (int l = 1; l < DEMO_N_LEVELS; l++) ck_assert(mean[l] < mean[l - 1] - 10);
        levels_of(s, DIST_CONTRAST, im);
        for (int l = 0; l < DEMO_N_LEVELS; l++) stats(&im[l], &mean[l], &std[l]), image_free(&im[l]);
        for (int l = 1; l < DEMO_N_LEVELS; l++) {
            ck_assert(std[l] < 0.75 * std[l - 1]);
            ck_assert(fabs(mean[l] - mean[0]) < 2);  // contrast, not brightness
        }
    }
}
END_TEST

// ---------------------------------------------------------------------------- files

// The dataset the tests below read: 400 training and 200 evaluation images.
static void make_dataset(char *dir, size_t size) {
    temp_dir(dir, size);
    DemoStats st;
    DemoOptions opt = {.seed = 5, .size = 32, .n_train = 400, .n_eval = 200};
    ck_assert_msg(demo_write_dataset(dir, &opt, &st) == VLM_OK, "%s", vlm_last_error());
}

// Runs `vlm data check --json ARGS`: exit 0 and no problem of any kind; returns the report.
static json_t *check_clean(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "data check --json %s", args);
    ck_assert_msg(run_vlm(cmd, out, BUF, err, BUF) == 0, "%s\n%s\n%s", cmd, out, err);
    json_error_t e;
    json_t *report = json_loads(out, 0, &e), *p;
    ck_assert_msg(report != NULL, "%s", e.text);
    const char *name;
    json_object_foreach(json_object_get(report, "problems"), name, p)
        ck_assert_msg(json_integer_value(json_object_get(p, "count")) == 0, "%s: %s: %s", cmd, name, out);
    return report;
}

START_TEST(files_pass_data_check_with_spm_tokenizer) {
    char d[64], cmd[2048];
    make_dataset(d, sizeof d);
    // the tokenizer `make demo` trains (spm_train from Debian's sentencepiece)
    snprintf(cmd, sizeof cmd,
             "cd %s && spm_train --input=corpus.txt --model_prefix=tok --vocab_size=800 --model_type=bpe "
             "--byte_fallback=true --normalization_rule_name=identity --character_coverage=1.0 --bos_id=1 "
             "--eos_id=2 --unk_id=0 --pad_id=-1 --num_threads=1 --minloglevel=2 >/dev/null 2>&1",
             d);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "--image-folder %s/images --tokenizer %s/tok.model --template v1 %s/high.json %s/qinstruct.json",
             d, d, d, d);
    json_t *report = check_clean(cmd);
    ck_assert_int_eq(json_integer_value(json_object_get(report, "records")), 420 + 800);
    ck_assert_int_eq(json_integer_value(json_object_get(report, "text_only")), 20);
    ck_assert(json_integer_value(json_object_get(json_object_get(report, "tokens"), "max")) < 200);
    json_decref(report);
    snprintf(cmd, sizeof cmd, "--image-folder %s/images --tokenizer %s/tok.model --template plain %s/pt.json", d, d, d);
    json_decref(check_clean(cmd));
    // LLaMA-2's own tokenizer renders the same files without a mismatch too
    snprintf(cmd, sizeof cmd, "--quick --image-folder %s/images --tokenizer %s --template v1 %s/high.json %s/qinstruct.json", d,
             VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model", d, d);
    json_decref(check_clean(cmd));
    // A3's words are one token each, also after "ASSISTANT:" and at the end of a pathway
    snprintf(cmd, sizeof cmd, "tokenize --tokenizer %s/tok.model --no-bos", d);
    const char *in = temp_file("\"good\"\n\"poor\"\n\"ASSISTANT: good\"\n\"ASSISTANT: poor\"\n"
                               "\"Thus the quality of the image is good.\"\n\"Thus the quality of the image is poor.\"\n");
    ck_assert_msg(run_vlm_input(cmd, in, out, BUF, err, BUF) == 0, "%s", err);
    json_t *lines[6];
    char *at = out;
    for (int i = 0; i < 6; i++) {
        json_error_t e;
        lines[i] = json_loads(at, JSON_DISABLE_EOF_CHECK, &e);
        ck_assert_msg(lines[i] != NULL, "%s", out);
        at = strchr(at, '\n') + 1;
    }
    ck_assert_int_eq(json_array_size(lines[0]), 1);
    ck_assert_int_eq(json_array_size(lines[1]), 1);
    int64_t word[2] = {json_integer_value(json_array_get(lines[0], 0)), json_integer_value(json_array_get(lines[1], 0))};
    ck_assert_int_ne(word[0], word[1]);
    for (int k = 0; k < 2; k++) {
        size_t n = json_array_size(lines[2 + k]), m = json_array_size(lines[4 + k]);
        ck_assert_int_eq(json_integer_value(json_array_get(lines[2 + k], n - 1)), word[k]);
        ck_assert_int_eq(json_integer_value(json_array_get(lines[4 + k], m - 2)), word[k]);
    }
    for (int i = 0; i < 6; i++) json_decref(lines[i]);
    unlink(in);
    rm_rf(d);
}
END_TEST

static bool yes_word(const char *a) { return strcmp(a, "Yes.") == 0 || strcmp(a, "Yes") == 0; }
static bool no_word(const char *a) { return strcmp(a, "No.") == 0 || strcmp(a, "No") == 0; }

// Yes and No, and the correct letters A-D of four-option questions, are
// balanced within one per file; every record is well formed.
START_TEST(answers_are_balanced) {
    char shared_dir[64];
    make_dataset(shared_dir, sizeof shared_dir);
    static const char *const TRAIN[] = {"high.json", "qinstruct.json"};
    for (int f = 0; f < 2; f++) {
        json_t *recs = load(shared_dir, TRAIN[f]);
        int yes = 0, no = 0, letters[4] = {0};
        for (size_t i = 0; i < json_array_size(recs); i++) {
            json_t *convs = json_object_get(json_array_get(recs, i), "conversations");
            if (!json_object_get(json_array_get(recs, i), "image")) continue;  // text-only: world knowledge
            ck_assert_int_eq(json_array_size(convs) % 2, 0);
            for (size_t t = 0; t + 1 < json_array_size(convs); t += 2) {
                const char *q = str(json_array_get(convs, t), "value"), *a = str(json_array_get(convs, t + 1), "value");
                ck_assert_str_eq(str(json_array_get(convs, t), "from"), "human");
                ck_assert_str_eq(str(json_array_get(convs, t + 1), "from"), "gpt");
                const char *opt = strstr(q, "\nA. ");
                bool four = opt && strstr(q, "\nD. ");
                if (opt) {
                    // LLaVA-1.5's Q-Bench prompt: question, instruction, options, each line ended
                    char head[128];
                    snprintf(head, sizeof head, "\n%s\nA. ", DEMO_MCQ_SUFFIX);
                    ck_assert_msg(strstr(q, head) != NULL && q[strlen(q) - 1] == '\n', "%s", q);
                    ck_assert_msg(strlen(a) == 2 && a[0] >= 'A' && a[0] <= 'D' && a[1] == '.', "%s", a);
                    // the letter's option exists, and "Yes"/"No" options count as yes/no answers
                    char line[8];
                    snprintf(line, sizeof line, "\n%c. ", a[0]);
                    const char *chosen = strstr(q, line);
                    ck_assert_ptr_nonnull(chosen);
                    if (four) letters[a[0] - 'A']++;
                    else if (strncmp(chosen + 4, "Yes\n", 4) == 0) yes++;
                    else if (strncmp(chosen + 4, "No\n", 3) == 0) no++;
                } else {
                    yes += yes_word(a), no += no_word(a);
                }
            }
        }
        ck_assert_msg(abs(yes - no) <= 1 && yes > 50, "%s: %d yes, %d no", TRAIN[f], yes, no);
        for (int k = 0; k < 4; k++)
            ck_assert_msg(abs(letters[k] - letters[0]) <= 1 && letters[k] > 20, "%s: %c %d, A %d", TRAIN[f], 'A' + k,
                          letters[k], letters[0]);
        json_decref(recs);
    }
    static const char *const EVAL[] = {"eval_high.json", "eval_mcq.json"};
    for (int f = 0; f < 2; f++) {
        json_t *items = load(shared_dir, EVAL[f]);
        ck_assert_int_eq(json_array_size(items), 200);
        int yes = 0, no = 0, letters[4] = {0}, types[3] = {0};
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *it = json_array_get(items, i);
            ck_assert_int_ge(json_object_size(it), 6);
            str(it, "img_path"), str(it, "question"), str(it, "concern");
            const char *type = str(it, "type"), *correct = str(it, "correct_ans");
            types[strcmp(type, "yes-or-no") == 0 ? 0 : strcmp(type, "what") == 0 ? 1 : 2]++;
            json_t *cands = json_object_get(it, "candidates");
            int at = -1;
            for (size_t c = 0; c < json_array_size(cands); c++) {
                const char *cand = json_string_value(json_array_get(cands, c));
                if (strcmp(cand, correct) == 0) {
                    ck_assert_int_eq(at, -1);
                    at = (int)c;
                }
                for (size_t o = 0; o < c; o++) ck_assert_str_ne(cand, json_string_value(json_array_get(cands, o)));
            }
            ck_assert_int_ge(at, 0);
            if (strcmp(type, "yes-or-no") == 0) {
                ck_assert_int_eq(json_array_size(cands), 2);
                yes += at == 0, no += at == 1;
            } else {
                ck_assert_int_eq(json_array_size(cands), 4);
                letters[at]++;
            }
        }
        ck_assert_msg(abs(yes - no) <= 1 && yes > 10, "%s: %d yes, %d no", EVAL[f], yes, no);
        for (int k = 0; k < 4; k++) ck_assert_msg(abs(letters[k] - letters[0]) <= 1, "%s: letters", EVAL[f]);
        ck_assert_int_gt(types[0], 10);
        ck_assert_int_gt(types[1], 10);
        if (f == 1) ck_assert_int_gt(types[2], 10);
        json_decref(items);
    }
    rm_rf(shared_dir);
}
END_TEST

// A3: gt_score follows the distortion level; the rating answers are only
// "good" or "poor" (as the pathways' conclusions), always "good" for pristine
// and "poor" for severe images, in between less "good" as the level rises.
START_TEST(scores_and_ratings_follow_quality) {
    char shared_dir[64];
    make_dataset(shared_dir, sizeof shared_dir);
    json_t *items = load(shared_dir, "eval_score.json"), *scenes = load(shared_dir, "scenes.json");
    int per_level[DEMO_N_LEVELS] = {0};
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        int level = (int)json_integer_value(json_object_get(it, "level"));
        ck_assert(level >= 0 && level < DEMO_N_LEVELS);
        ck_assert(fabs(json_real_value(json_object_get(it, "gt_score")) - demo_mos(level)) < 1e-9);
        ck_assert_str_eq(str(it, "img_path"), str(json_array_get(scenes, 400 + i), "image"));
        per_level[level]++;
    }
    for (int l = 0; l < DEMO_N_LEVELS; l++) ck_assert_int_gt(per_level[l], 25);
    json_t *qi = load(shared_dir, "qinstruct.json");
    int rated = 0, good_at[DEMO_N_LEVELS] = {0}, n_at[DEMO_N_LEVELS] = {0};
    for (size_t i = 0; i < json_array_size(qi); i++) {
        json_t *r = json_array_get(qi, i), *convs = json_object_get(r, "conversations");
        const char *q = str(json_array_get(convs, 0), "value");
        if (strcmp(q, "<image>\nRate the quality of the image.") != 0) continue;
        const char *a = str(json_array_get(convs, 1), "value");
        bool good = strcmp(a, "good") == 0;
        ck_assert_msg(good || strcmp(a, "poor") == 0, "%s", a);
        // the image's conversation, just before, has the pathway with the same verdict
        json_t *turns = json_object_get(json_array_get(qi, i - 1), "conversations");
        int pathways = 0;
        for (size_t t = 1; t < json_array_size(turns); t += 2) {
            const char *answer = str(json_array_get(turns, t), "value");
            if (!strstr(answer, "Thus the quality of the image is ")) continue;
            ck_assert_msg(str_has_suffix(answer, good ? "is good." : "is poor."), "%s", answer);
            pathways++;
        }
        ck_assert_int_eq(pathways, 1);
        json_t *scene = json_array_get(scenes, i / 2);
        ck_assert_str_eq(str(scene, "image"), str(r, "image"));
        int level = (int)json_integer_value(json_object_get(scene, "level"));
        ck_assert(good == json_is_true(json_object_get(scene, "rated_good")));
        good_at[level] += good, n_at[level]++;
        rated++;
    }
    ck_assert_int_eq(rated, 400);
    ck_assert_int_eq(good_at[0], n_at[0]);
    ck_assert_int_eq(good_at[3], 0);
    ck_assert(good_at[1] * n_at[2] > good_at[2] * n_at[1]);  // p(good) falls with the level
    json_decref(qi);
    json_decref(items);
    json_decref(scenes);
    rm_rf(shared_dir);
}
END_TEST

START_TEST(usage_errors) {
    ck_assert_int_eq(run_vlm("demo data", out, BUF, err, BUF), 2);
    ck_assert(strstr(err, "missing --out") != NULL);
    ck_assert_int_eq(run_vlm("demo data --out /tmp/x --size 4", out, BUF, err, BUF), 2);
    ck_assert_int_eq(run_vlm("demo data --out /tmp/x --train -3", out, BUF, err, BUF), 2);
    ck_assert_int_eq(run_vlm("demo frobnicate", out, BUF, err, BUF), 2);
    ck_assert_int_eq(run_vlm("demo data --out /nonexistent/dir/x --train 1 --eval 1", out, BUF, err, BUF), 1);
    ck_assert_msg(strncmp(err, "vlm: error: /nonexistent/dir/x: cannot create folder", 52) == 0, "%s", err);
}
END_TEST

Suite *demo_suite(void) {
    return SUITE("demo", "", 120, same_seed_same_bytes_other_seed_other_data, images_decode_at_their_size,
                 distortions_are_monotone_in_level, files_pass_data_check_with_spm_tokenizer, answers_are_balanced,
                 scores_and_ratings_follow_quality, usage_errors);
}
