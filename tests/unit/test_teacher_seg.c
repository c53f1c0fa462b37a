// OLA-VLM's seg teacher (model/teacher_seg.c: OneFormer's Swin backbone, model/swin.c) against
// upstream's target restated on transformers 4.41.2 + Pillow 10.4.0 (tools/make_teacher_seg_fixtures.sh:
// tests/fixtures/teachers_seg): a tiny random OneFormer, its pixel_values, every stage's map and the
// target, on the tiny processor's sizes and on upstream's real ones (768 -> 800 px, 24 x 24).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/threads.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "image/image.h"
#include "image/resize.h"
#include "model/swin.h"
#include "model/teacher_seg.h"
#include "test_util.h"

#define PHOTOS VLM_SOURCE_DIR "/../shared/assets/images"
static const char *const PHOTO[2] = {PHOTOS "/extreme_ironing.jpg", PHOTOS "/211.jpg"};

// ||got - want|| / ||want||
static double rel_diff(const float *got, const float *want, size_t n) {
    double d = 0, w = 0;
    for (size_t i = 0; i < n; i++)
        d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]), w += (double)want[i] * want[i];
    return sqrt(d / w);
}

static double max_abs_diff(const float *got, const float *want, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)got[i] - want[i]));
    return m;
}

static void open_ref(SafetensorsFile *ref) {
    ck_assert_int_eq(safetensors_open(ref, fixture("teachers_seg/reference.safetensors")), VLM_OK);
}

// a folder of links to the tiny model's files, with preprocessor_config.json from processor_dir
// (NULL: none) and config.json from config_path (NULL: the tiny one)
static void link_folder(char *dir, const char *processor_dir, const char *config_path, bool weights) {
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char src[700], dst[700];
    snprintf(src, sizeof src, "%s", config_path ? config_path : fixture("teachers_seg/tiny_oneformer/config.json"));
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    ck_assert_int_eq(symlink(src, dst), 0);
    if (weights) {
        snprintf(src, sizeof src, "%s", fixture("teachers_seg/tiny_oneformer/pytorch_model.bin"));
        snprintf(dst, sizeof dst, "%s/pytorch_model.bin", dir);
        ck_assert_int_eq(symlink(src, dst), 0);
    }
    if (processor_dir) {
        snprintf(src, sizeof src, "%s/preprocessor_config.json", fixture(processor_dir));
        snprintf(dst, sizeof dst, "%s/preprocessor_config.json", dir);
        ck_assert_int_eq(symlink(src, dst), 0);
    }
}

// The backbone alone on the reference pixel_values of both photos, as one batch of 2: every stage's map.
START_TEST(swin_stage_maps_match_transformers) {
    SafetensorsFile ref;
    open_ref(&ref);
    char config[600];
    snprintf(config, sizeof config, "%s", fixture("teachers_seg/tiny_oneformer/config.json"));
    json_error_t jerr;
    json_t *root = vlm_json_load_file(config, 0, &jerr);
    ck_assert_ptr_nonnull(root);
    SwinConfig c;
    ck_assert_msg(swin_config_read(&c, root, "backbone_config", config) == VLM_OK, "%s", vlm_last_error());
    json_decref(root);
    ck_assert_msg(c.embed_dim == 6 && c.window == 6 && c.stages == 4 && c.out_stage == 4 && c.outs == 15u,
                  "embed %d window %d stages %d out %d outs %u", c.embed_dim, c.window, c.stages, c.out_stage, c.outs);
    ck_assert(fabsf(c.eps - 1e-3f) < 1e-9f);
    Checkpoint ck;
    ck_assert_int_eq(checkpoint_open(&ck, fixture("teachers_seg/tiny_oneformer")), VLM_OK);
    SwinWeights w;
    ck_assert_msg(swin_weights_load(&w, &c, &ck, "model.pixel_level_module.encoder.") == VLM_OK, "%s",
                  vlm_last_error());
    checkpoint_close(&ck);
    SwinActs a;
    ck_assert_int_eq(swin_acts_init(&a, &c, &w, 54, 54, 2, 15u), VLM_OK);
    size_t px = 3 * 54 * 54;
    float *pixels = malloc(sizeof(float) * 2 * px);
    for (int i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof key, "small.%d.pixel_values", i);
        memcpy(pixels + px * i, ref_tensor(&ref, key, NULL), sizeof(float) * px);
    }
    swin_forward(&a, &c, &w, pixels, 2);
    static const int side[4] = {14, 7, 4, 2};
    for (int s = 0; s < 4; s++) {
        ck_assert_int_eq(a.g[s].H, side[s]);
        size_t n = (size_t)swin_dim(&c, s) * side[s] * side[s];
        for (int i = 0; i < 2; i++) {
            char key[64];
            snprintf(key, sizeof key, "small.%d.stage%d", i, s + 1);
            const TensorInfo *info;
            const float *want = ref_tensor(&ref, key, &info);
            ck_assert_uint_eq(info->numel, n);
            double r = rel_diff(a.map[s] + n * i, want, n);
            fprintf(stderr, "teacher_seg: %s within %.2e of its norm\n", key, r);
            ck_assert_msg(r <= 1e-5, "%s differs by %g of its norm", key, r);
        }
    }
    free(pixels);
    swin_acts_free(&a);
    swin_weights_free(&w);
    safetensors_close(&ref);
}
END_TEST

// Both photos prepared into one batch of 2 (tiny processor, test sizes 48 and 5); returns the targets.
static float *small_targets(int max_batch, bool check, const SafetensorsFile *ref) {
    Teacher t;
    ck_assert_msg(seg_teacher_open(&t, fixture("teachers_seg/tiny_oneformer"), max_batch) == VLM_OK, "%s",
                  vlm_last_error());
    ck_assert_int_eq(seg_teacher_test_sizes(&t, 48, 5), VLM_OK);
    ck_assert_int_eq(t.ndim, 3);
    ck_assert(t.shape[0] == 48 && t.shape[1] == 5 && t.shape[2] == 5);
    size_t per = teacher_target_floats(&t);
    float *out = malloc(sizeof(float) * 2 * per);
    for (int i0 = 0; i0 < 2; i0 += max_batch) {
        int n = 2 - i0 < max_batch ? 2 - i0 : max_batch;
        for (int j = 0; j < n; j++) {
            Image im;
            ck_assert_int_eq(image_decode_file(PHOTO[i0 + j], &im), VLM_OK);
            ck_assert_msg(teacher_prepare(&t, j, &im, PHOTO[i0 + j]) == VLM_OK, "%s", vlm_last_error());
            image_free(&im);
            if (check) {
                int h, w;
                const float *pv = seg_teacher_pixels(&t, j, &h, &w);
                ck_assert(h == 54 && w == 54);
                char key[64];
                snprintf(key, sizeof key, "small.%d.pixel_values", i0 + j);
                double m = max_abs_diff(pv, ref_tensor(ref, key, NULL), (size_t)3 * h * w);
                fprintf(stderr, "teacher_seg: %s max abs diff %g\n", key, m);
                ck_assert_msg(m <= 1e-6, "%s differs by %g", key, m);
            }
        }
        ck_assert_msg(teacher_forward(&t, n, out + per * i0) == VLM_OK, "%s", vlm_last_error());
    }
    teacher_close(&t);
    return out;
}

START_TEST(seg_teacher_matches_upstream_small) {
    SafetensorsFile ref;
    open_ref(&ref);
    float *two = small_targets(2, true, &ref);
    size_t per = 48 * 5 * 5;
    for (int i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof key, "small.%d.target", i);
        double r = rel_diff(two + per * i, ref_tensor(&ref, key, NULL), per);
        fprintf(stderr, "teacher_seg: %s within %.2e of its norm\n", key, r);
        ck_assert_msg(r <= 1e-5, "%s differs by %g of its norm", key, r);
    }
    // a batch of 2 is two batches of 1, bit for bit
    float *ones = small_targets(1, false, &ref);
    ck_assert_msg(!memcmp(two, ones, sizeof(float) * 2 * per), "a batch of 2 differs from two batches of 1");
    free(ones);
    // the same bytes for any thread count (the teacher sized for each)
    int saved = threads_get();
    for (int th = 1; th <= 3; th += 2) {
        threads_set(th);
        float *again = small_targets(2, false, &ref);
        ck_assert_msg(!memcmp(two, again, sizeof(float) * 2 * per), "targets differ with %d threads", th);
        free(again);
    }
    threads_set(saved);
    free(two);
    safetensors_close(&ref);
}
END_TEST

// Upstream's own sizes: 768 x 768 bicubic, COCO Swin-L's processor (800 px, bilinear), 24 x 24.
START_TEST(seg_teacher_matches_upstream_coco) {
    SafetensorsFile ref;
    open_ref(&ref);
    char dir[] = "/tmp/vlm-seg-coco-XXXXXX";
    link_folder(dir, "teachers_seg/processor_coco", NULL, true);
    Teacher t;
    ck_assert_msg(seg_teacher_open(&t, dir, 1) == VLM_OK, "%s", vlm_last_error());
    ck_assert(t.task == OLA_SEG && t.shape[0] == 48 && t.shape[1] == SEG_SIDE && t.shape[2] == SEG_SIDE);
    ck_assert_ptr_nonnull(strstr(t.name, "Swin"));
    Image im;
    ck_assert_int_eq(image_decode_file(PHOTO[0], &im), VLM_OK);
    ck_assert_msg(teacher_prepare(&t, 0, &im, PHOTO[0]) == VLM_OK, "%s", vlm_last_error());
    int h, w;
    const float *pv = seg_teacher_pixels(&t, 0, &h, &w);
    ck_assert(h == 800 && w == 800);
    const TensorInfo *info;
    const float *rows = ref_tensor(&ref, "coco.pixel_rows", &info);
    static const int ROWS[9] = {0, 100, 200, 300, 400, 500, 600, 700, 799};
    ck_assert_int_eq(info->shape[1], 9);
    double m = 0;
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < 9; r++)
            m = fmax(m, max_abs_diff(pv + ((size_t)c * 800 + ROWS[r]) * 800, rows + ((size_t)c * 9 + r) * 800, 800));
    fprintf(stderr, "teacher_seg: coco.pixel_rows max abs diff %g\n", m);
    ck_assert_msg(m <= 1e-6, "pixel_values rows differ by %g", m);
    size_t per = teacher_target_floats(&t);
    float *out = malloc(sizeof(float) * per);
    ck_assert_msg(teacher_forward(&t, 1, out) == VLM_OK, "%s", vlm_last_error());
    double r = rel_diff(out, ref_tensor(&ref, "coco.target", NULL), per);
    fprintf(stderr, "teacher_seg: coco.target within %.2e of its norm\n", r);
    ck_assert_msg(r <= 1e-5, "the target differs by %g of its norm", r);
    // a slot is used once: forward again without prepare is an error
    ck_assert_int_eq(teacher_forward(&t, 1, out), VLM_ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(vlm_last_error(), "slot 0"));
    free(out);
    teacher_close(&t);
    // Pillow's BILINEAR downscale, bit for bit (570 x 380 -> 61 x 37)
    ResizeScratch s = {0};
    uint8_t down[37 * 61 * 3];
    PaddedImage src = {
        .rgb = im.rgb, .width = im.width, .height = im.height, .canvas_w = im.width, .canvas_h = im.height};
    ck_assert_int_eq(resize_window(&src, RESIZE_BILINEAR, 61, 37, 0, 0, 61, 37, down, &s), VLM_OK);
    ck_assert_msg(!memcmp(down, ref_tensor(&ref, "bilinear.down", NULL), sizeof down), "BILINEAR differs from Pillow");
    resize_scratch_free(&s);
    image_free(&im);
    remove_tree(dir);
    safetensors_close(&ref);
}
END_TEST

// opening dir must fail with a message holding each of want (NULL-terminated)
static void open_fails(const char *dir, const char *const *want) {
    Teacher t;
    ck_assert_int_eq(seg_teacher_open(&t, dir, 1), VLM_ERR_INPUT);
    for (; *want; want++) ck_assert_msg(strstr(vlm_last_error(), *want), "'%s' not in: %s", *want, vlm_last_error());
    ck_assert_ptr_null(t.impl);
}

START_TEST(seg_teacher_errors) {
    // a backbone other than Swin, named
    char cfg[] = "/tmp/vlm-seg-cfg-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(cfg));
    json_error_t jerr;
    json_t *root = vlm_json_load_file(fixture("teachers_seg/tiny_oneformer/config.json"), 0, &jerr);
    ck_assert_ptr_nonnull(root);
    json_object_set_new(json_object_get(root, "backbone_config"), "model_type", json_string("dinat"));
    char path[700];
    snprintf(path, sizeof path, "%s/dinat.json", cfg);
    ck_assert_int_eq(json_dump_file(root, path, 0), 0);
    json_object_set_new(json_object_get(root, "backbone_config"), "model_type", json_string("swin"));
    json_object_set_new(json_object_get(root, "backbone_config"), "embed_dim", json_integer(12));
    snprintf(path, sizeof path, "%s/wide.json", cfg);
    ck_assert_int_eq(json_dump_file(root, path, 0), 0);
    json_object_set_new(root, "model_type", json_string("mask2former"));
    snprintf(path, sizeof path, "%s/mask2former.json", cfg);
    ck_assert_int_eq(json_dump_file(root, path, 0), 0);
    json_decref(root);
    char d1[] = "/tmp/vlm-seg-e1-XXXXXX", d2[] = "/tmp/vlm-seg-e2-XXXXXX", d3[] = "/tmp/vlm-seg-e3-XXXXXX";
    char d4[] = "/tmp/vlm-seg-e4-XXXXXX";
    snprintf(path, sizeof path, "%s/dinat.json", cfg);
    link_folder(d1, "teachers_seg/tiny_oneformer", path, true);
    open_fails(d1, (const char *const[]){"config.json", "backbone_config.model_type", "dinat", "only swin", NULL});
    snprintf(path, sizeof path, "%s/mask2former.json", cfg);
    link_folder(d2, "teachers_seg/tiny_oneformer", path, true);
    open_fails(d2, (const char *const[]){"model_type", "mask2former", NULL});
    // a tensor of another shape, named with both shapes
    char d5[] = "/tmp/vlm-seg-e5-XXXXXX", d6[] = "/tmp/vlm-seg-e6-XXXXXX";
    snprintf(path, sizeof path, "%s/wide.json", cfg);
    link_folder(d5, "teachers_seg/tiny_oneformer", path, true);
    open_fails(d5, (const char *const[]){"pytorch_model.bin", "embeddings.patch_embeddings.projection.weight",
                                         "[6, 3, 4, 4], expected [12, 3, 4, 4]", NULL});
    // a resampling filter OneFormer's processor could name but vlm does not run
    link_folder(d6, NULL, NULL, true);
    snprintf(path, sizeof path, "%s/preprocessor_config.json", d6);
    write_text_file(path, "{\"image_processor_type\": \"OneFormerImageProcessor\", \"resample\": 0}");
    open_fails(d6, (const char *const[]){"preprocessor_config.json", "resample", "NEAREST", NULL});
    remove_tree(d5), remove_tree(d6);
    // no preprocessor_config.json
    link_folder(d3, NULL, NULL, true);
    open_fails(d3, (const char *const[]){"preprocessor_config.json", "missing", NULL});
    // a checkpoint without one of the backbone's tensors, named
    link_folder(d4, "teachers_seg/tiny_oneformer", NULL, false);
    Checkpoint ck;
    ck_assert_int_eq(checkpoint_open(&ck, fixture("teachers_seg/tiny_oneformer")), VLM_OK);
    const char *drop = "model.pixel_level_module.encoder.encoder.layers.1.blocks.1.attention.self.key.weight";
    TensorInfo *infos = calloc((size_t)ck.count, sizeof *infos);
    const void **datas = calloc((size_t)ck.count, sizeof *datas);
    int n = 0;
    for (int i = 0; i < ck.count; i++) {
        const TensorInfo *info = ck.tensors[i].info;
        if (!strcmp(info->name, drop)) continue;
        void *buf = malloc(info->nbytes ? info->nbytes : 1);
        ck_assert_int_eq(checkpoint_read(&ck, i, buf), VLM_OK);
        infos[n] = *info, datas[n++] = buf;
    }
    ck_assert_int_eq(n, ck.count - 1);
    snprintf(path, sizeof path, "%s/model.safetensors", d4);
    ck_assert_int_eq(safetensors_write(path, infos, datas, n, NULL), VLM_OK);
    for (int i = 0; i < n; i++) free((void *)datas[i]);
    free(infos), free(datas);
    checkpoint_close(&ck);
    open_fails(d4, (const char *const[]){"model.safetensors", drop, "missing tensor", NULL});
    // not a folder
    open_fails(fixture("teachers_seg/tiny_oneformer/config.json"), (const char *const[]){"not a folder", NULL});
    remove_tree(d1), remove_tree(d2), remove_tree(d3), remove_tree(d4), remove_tree(cfg);
}
END_TEST

Suite *teacher_seg_suite(void) {
    return SUITE("teacher_seg", "", 60, swin_stage_maps_match_transformers, seg_teacher_matches_upstream_small,
                 seg_teacher_matches_upstream_coco);
}

// the folder's and config's error paths, also under ASan + UBSan (tag parser)
Suite *teacher_seg_files_suite(void) { return SUITE("teacher_seg_files", "parser", 60, seg_teacher_errors); }
