// OLA-VLM's ViT teachers (model/teacher_depth.c, teacher_gen.c) against upstream's
// own code (tools/make_teacher_vit_fixtures.sh: tests/fixtures/teachers): depth from
// Depth-Anything-v2's DINOv2 as _get_dav2_feats computes it, gen from SD-2.1-unCLIP's
// image encoder as _get_gen_feats does, on two of the shared photos; the position
// grid's bicubic interpolation; batching and threads changing nothing; bad files.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/threads.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "formats/torch_save.h"
#include "image/image.h"
#include "kernels/bicubic.h"
#include "model/teacher.h"
#include "model/teacher_depth.h"
#include "model/teacher_vit.h"
#include "test_util.h"

#define DEPTH_HEADS 2  // the tiny checkpoint's (DINOv2's own sizes have width / 64)
#define N_IMAGES 2
static const char *const IMAGES[N_IMAGES] = {"211.jpg", "rebecca_poster_small.jpeg"};

static void load_image(int i, Image *im) {
    char path[4096];
    snprintf(path, sizeof path, "%s/../shared/assets/images/%s", VLM_SOURCE_DIR, IMAGES[i]);
    ck_assert_msg(image_decode_file(path, im) == VLM_OK, "%s", vlm_last_error());
}

static const char *depth_pth(void) {
    static char path[4096];
    snprintf(path, sizeof path, "%s", fixture("teachers/depth/depth_anything_v2_vitl.pth"));
    return path;
}

static const char *gen_dir(const char *sub) {
    static char path[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s%s", fixture("teachers/gen"), sub);
    return path[k];
}

// |a - b| / |b| over n floats
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, w = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), w += (double)b[i] * b[i];
    return sqrt(d / w);
}

// slots 0..n-1 <- images first..first+n-1, then one forward into out
static void run_teacher(Teacher *t, int first, int n, float *out) {
    for (int s = 0; s < n; s++) {
        Image im;
        load_image(first + s, &im);
        ck_assert_msg(teacher_prepare(t, s, &im, IMAGES[first + s]) == VLM_OK, "%s", vlm_last_error());
        image_free(&im);
    }
    ck_assert_msg(teacher_forward(t, n, out) == VLM_OK, "%s", vlm_last_error());
}

// Each image's target against the reference's KEY.i (within 1e-5 of its norm); the worst ratio.
static double check_targets(Teacher *t, const SafetensorsFile *ref, const char *key, const char *what) {
    size_t F = teacher_target_floats(t);
    float *out = malloc(sizeof(float) * F * N_IMAGES);
    run_teacher(t, 0, N_IMAGES, out);
    double worst = 0;
    for (int i = 0; i < N_IMAGES; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%d", key, i);
        const TensorInfo *info;
        const float *want = ref_tensor(ref, name, &info);
        ck_assert_uint_eq(info->numel, F);
        double r = rel_diff(out + F * i, want, F);
        ck_assert_msg(r <= 1e-5, "%s: image %d differs by %g of its norm", what, i, r);
        if (r > worst) worst = r;
    }
    free(out);
    printf("teachers_vit: %s within %.2e of the reference's norm\n", what, worst);
    return worst;
}

static void open_ref(SafetensorsFile *ref) {
    ck_assert_int_eq(safetensors_open(ref, fixture("teachers/reference.safetensors")), VLM_OK);
}

static void open_depth(Teacher *t, const char *path, int max_batch) {
    memset(t, 0, sizeof *t);
    ck_assert_msg(depth_teacher_open_heads(t, path, max_batch, DEPTH_HEADS) == VLM_OK, "%s", vlm_last_error());
}

static void open_gen(Teacher *t, const char *path, int max_batch) {
    memset(t, 0, sizeof *t);
    ck_assert_msg(gen_teacher_open(t, path, max_batch) == VLM_OK, "%s", vlm_last_error());
}

START_TEST(depth_matches_upstream) {
    SafetensorsFile ref;
    open_ref(&ref);
    Teacher t;
    open_depth(&t, depth_pth(), N_IMAGES);
    ck_assert_int_eq(t.ndim, 2);
    ck_assert(t.shape[0] == 576 && t.shape[1] == 16 && t.task == OLA_DEPTH);
    check_targets(&t, &ref, "depth.target", "depth (Depth-Anything-v2 .pth)");
    // the pixels after image2tensor (the channel swap included): rows 0..13 of each image, bit for bit
    const VitTeacher *m = t.impl;
    for (int i = 0; i < N_IMAGES; i++) {
        char name[64];
        snprintf(name, sizeof name, "depth.pixels.%d", i);
        const float *want = ref_tensor(&ref, name, NULL), *px = m->pixels + (size_t)i * 3 * 336 * 336;
        for (int c = 0; c < 3; c++)
            ck_assert_msg(!memcmp(px + (size_t)c * 336 * 336, want + (size_t)c * 14 * 336, sizeof(float) * 14 * 336),
                          "image %d channel %d: pixels differ from image2tensor's", i, c);
    }
    teacher_close(&t);
    safetensors_close(&ref);
}
END_TEST

// a transformers Depth-Anything folder: its own names, heads and out_indices, upstream's preprocessing
START_TEST(depth_transformers_folder) {
    SafetensorsFile ref;
    open_ref(&ref);
    Teacher t;
    memset(&t, 0, sizeof t);
    ck_assert_msg(depth_teacher_open(&t, fixture("teachers/depth_hf"), N_IMAGES) == VLM_OK, "%s", vlm_last_error());
    ck_assert(t.shape[0] == 576 && t.shape[1] == 16);
    ck_assert_int_eq(((const VitTeacher *)t.impl)->v.heads, 4);
    check_targets(&t, &ref, "depth_hf.target", "depth (transformers folder)");
    teacher_close(&t);
    safetensors_close(&ref);
}
END_TEST

// interpolate_pos_encoding: the 37 x 37 grid to 24 x 24, the class position kept
START_TEST(depth_positions_bicubic) {
    SafetensorsFile ref;
    open_ref(&ref);
    const float *want = ref_tensor(&ref, "depth.pos", NULL);
    int C = 16, G0 = 37, G = 24;
    Checkpoint ck;
    ck_assert_int_eq(checkpoint_open(&ck, depth_pth()), VLM_OK);
    int i = checkpoint_find(&ck, "pretrained.pos_embed");
    ck_assert_int_ge(i, 0);
    float *pos0 = malloc(sizeof(float) * (size_t)(G0 * G0 + 1) * C), *pos = malloc(sizeof(float) * (size_t)G * G * C);
    ck_assert_int_eq(checkpoint_read_f32(&ck, i, pos0), VLM_OK);
    bicubic_resize_forward(pos, pos0 + C, G0, G0, C, G, G, (G + 0.1) / 37.0, (G + 0.1) / 37.0);
    double r = rel_diff(pos, want + C, (size_t)G * G * C);
    ck_assert_msg(r <= 1e-6, "interpolated positions differ by %g of their norm", r);
    printf("teachers_vit: bicubic positions within %.2e of torch's\n", r);
    // the teacher holds the same, after the class position
    Teacher t;
    open_depth(&t, depth_pth(), 1);
    const VitTeacher *m = t.impl;
    ck_assert(!memcmp(m->pos, pos0, sizeof(float) * C));
    ck_assert(!memcmp(m->pos + C, pos, sizeof(float) * (size_t)G * G * C));
    teacher_close(&t);
    checkpoint_close(&ck);
    free(pos0), free(pos);
    safetensors_close(&ref);
}
END_TEST

START_TEST(gen_matches_transformers) {
    SafetensorsFile ref;
    open_ref(&ref);
    Teacher t;
    // the pipeline folder: feature_extractor's processing, the fp16 variant's weights
    open_gen(&t, gen_dir(""), N_IMAGES);
    ck_assert(t.ndim == 1 && t.shape[0] == 20 && t.task == OLA_GEN);
    check_targets(&t, &ref, "gen.target", "gen (pipeline folder, fp16 variant)");
    const VitTeacher *m = t.impl;
    for (int i = 0; i < N_IMAGES; i++) {
        char name[64];
        snprintf(name, sizeof name, "gen.pixels.%d", i);
        const float *want = ref_tensor(&ref, name, NULL), *px = m->pixels + (size_t)i * 3 * 30 * 30;
        ck_assert_msg(!memcmp(px, want, sizeof(float) * 3 * 30 * 30),
                      "image %d: pixel_values differ from CLIPImageProcessor's", i);
    }
    teacher_close(&t);
    // the image_encoder folder alone: CLIP's default processing at its image_size
    open_gen(&t, gen_dir("/image_encoder"), N_IMAGES);
    check_targets(&t, &ref, "gen.target_default", "gen (image_encoder folder)");
    teacher_close(&t);
    // a pipeline without the fp16 variant: model.safetensors
    char dir[] = "/tmp/vlm-gen-XXXXXX", a[4200], b[4200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(b, sizeof b, "%s/image_encoder", dir);
    ck_assert_int_eq(make_dirs(b), 0);
    const char *files[] = {"image_encoder/config.json", "image_encoder/model.safetensors", "feature_extractor"};
    for (int k = 0; k < 3; k++) {
        snprintf(a, sizeof a, "%s/%s", gen_dir(""), files[k]);
        snprintf(b, sizeof b, "%s/%s", dir, files[k]);
        ck_assert_int_eq(symlink(a, b), 0);
    }
    open_gen(&t, dir, N_IMAGES);
    check_targets(&t, &ref, "gen.target_f32", "gen (fp32 weights)");
    teacher_close(&t);
    remove_tree(dir);
    safetensors_close(&ref);
}
END_TEST

// a batch of 2 gives what two batches of 1 give, bit for bit; so does another thread count
static void check_invariance(Teacher *t, const char *what) {
    size_t F = teacher_target_floats(t);
    size_t bytes = sizeof(float) * F * 2;
    float *two = malloc(bytes), *one = malloc(bytes), *th = malloc(bytes);
    int saved = omp_get_max_threads();
    threads_set(1);
    run_teacher(t, 0, 2, two);
    run_teacher(t, 0, 1, one);
    run_teacher(t, 1, 1, one + F);
    ck_assert_msg(!memcmp(one, two, sizeof(float) * F * 2), "%s: a batch of 2 differs from two batches of 1", what);
    threads_set(3);
    run_teacher(t, 0, 2, th);
    ck_assert_msg(!memcmp(th, two, sizeof(float) * F * 2), "%s: 3 threads differ from 1", what);
    threads_set(saved);
    free(two), free(one), free(th);
}

START_TEST(batch_and_threads_change_nothing) {
    int saved = omp_get_max_threads();
    threads_set(3);  // the attention scratch is sized for the most threads at open
    Teacher t;
    open_depth(&t, depth_pth(), 2);
    check_invariance(&t, "depth");
    teacher_close(&t);
    threads_set(3);
    open_gen(&t, gen_dir(""), 2);
    check_invariance(&t, "gen");
    teacher_close(&t);
    threads_set(saved);
}
END_TEST

// The fixture's .pth rewritten by torch_save with tensor `drop` left out, `reshape` flattened,
// and `add` added (a copy of the first tensor, under that name).
static void write_edited_pth(const char *out, const char *drop, const char *reshape, const char *add) {
    Checkpoint ck;
    ck_assert_int_eq(checkpoint_open(&ck, depth_pth()), VLM_OK);
    TorchSaveTensor *ts = calloc((size_t)ck.count + 1, sizeof *ts);
    float **data = calloc((size_t)ck.count, sizeof *data);
    int n = 0;
    for (int i = 0; i < ck.count; i++) {
        const TensorInfo *info = ck.tensors[i].info;
        if (drop && !strcmp(info->name, drop)) continue;
        data[n] = malloc(sizeof(float) * info->numel);
        ck_assert_int_eq(checkpoint_read_f32(&ck, i, data[n]), VLM_OK);
        ts[n] = (TorchSaveTensor){.name = info->name, .dtype = DT_F32, .ndim = info->ndim, .data = data[n]};
        memcpy(ts[n].shape, info->shape, sizeof(int64_t) * (size_t)info->ndim);
        if (reshape && !strcmp(info->name, reshape)) ts[n].ndim = 1, ts[n].shape[0] = (int64_t)info->numel;
        n++;
    }
    int m = n;
    if (add) ts[m] = ts[0], ts[m++].name = add;
    ck_assert_int_eq(torch_save(out, ts, m), VLM_OK);
    for (int i = 0; i < n; i++) free(data[i]);
    free(data), free(ts);
    checkpoint_close(&ck);
}

static void expect_error(int rc, const char *const *parts) {
    ck_assert_int_eq(rc, VLM_ERR_INPUT);
    for (; *parts; parts++)
        ck_assert_msg(strstr(vlm_last_error(), *parts), "'%s' lacks '%s'", vlm_last_error(), *parts);
}

START_TEST(bad_files_are_named) {
    char dir[] = "/tmp/vlm-teachers-XXXXXX", path[200], sub[300];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    Teacher t = {0};
    // depth: a tensor missing, a tensor of the wrong shape, not a checkpoint, no such file
    snprintf(path, sizeof path, "%s/missing.pth", dir);
    write_edited_pth(path, "pretrained.blocks.17.ls2.gamma", NULL, NULL);
    expect_error(depth_teacher_open_heads(&t, path, 1, DEPTH_HEADS),
                 (const char *[]){path, "pretrained.blocks.17.ls2.gamma", "missing", NULL});
    snprintf(path, sizeof path, "%s/shape.pth", dir);
    write_edited_pth(path, NULL, "pretrained.blocks.3.attn.proj.weight", NULL);
    expect_error(depth_teacher_open_heads(&t, path, 1, DEPTH_HEADS),
                 (const char *[]){path, "pretrained.blocks.3.attn.proj.weight", "[256]", "[16, 16]", NULL});
    snprintf(path, sizeof path, "%s/text.pth", dir);
    write_text_file(path, "not a checkpoint\n");
    ck_assert_int_ne(depth_teacher_open(&t, path, 1), VLM_OK);
    ck_assert_msg(strstr(vlm_last_error(), path), "%s", vlm_last_error());
    // vitg's SwiGLU FFN is refused
    snprintf(path, sizeof path, "%s/vitg.pth", dir);
    write_edited_pth(path, NULL, NULL, "pretrained.blocks.0.mlp.w12.weight");
    expect_error(depth_teacher_open_heads(&t, path, 1, DEPTH_HEADS),
                 (const char *[]){path, "pretrained.blocks.0.mlp.w12.weight", "SwiGLU", "vitg", NULL});
    // the real checkpoints' rule, heads of 64: width 16 has none
    expect_error(depth_teacher_open(&t, depth_pth(), 1), (const char *[]){"width 16 is not a multiple of 64", NULL});
    ck_assert_int_ne(depth_teacher_open(&t, "/nonexistent/depth_anything_v2_vitl.pth", 1), VLM_OK);
    ck_assert_msg(strstr(vlm_last_error(), "/nonexistent/depth_anything_v2_vitl.pth"), "%s", vlm_last_error());
    // gen: a crop the encoder cannot take, a missing tensor, not a folder
    snprintf(path, sizeof path, "%s/pipe", dir);
    ck_assert_int_eq(make_dirs(path), 0);
    snprintf(sub, sizeof sub, "%s/image_encoder", path);
    ck_assert_int_eq(symlink(gen_dir("/image_encoder"), sub), 0);
    snprintf(sub, sizeof sub, "%s/feature_extractor", path);
    ck_assert_int_eq(make_dirs(sub), 0);
    snprintf(sub, sizeof sub, "%s/feature_extractor/preprocessor_config.json", path);
    write_text_file(sub, "{\"crop_size\": 28, \"size\": 32}");
    expect_error(gen_teacher_open(&t, path, 1), (const char *[]){sub, "crop_size", "image_size is 30", NULL});
    snprintf(path, sizeof path, "%s/enc", dir);
    ck_assert_int_eq(make_dirs(path), 0);
    snprintf(sub, sizeof sub, "%s/config.json", path);
    ck_assert_int_eq(symlink(fixture("teachers/gen/image_encoder/config.json"), sub), 0);
    SafetensorsFile st;
    ck_assert_int_eq(safetensors_open(&st, fixture("teachers/gen/image_encoder/model.safetensors")), VLM_OK);
    TensorInfo *infos = calloc((size_t)st.count, sizeof *infos);
    const void **datas = calloc((size_t)st.count, sizeof *datas);
    int n = 0;
    for (int i = 0; i < st.count; i++)
        if (strcmp(st.tensors[i].name, "vision_model.post_layernorm.bias"))
            infos[n] = st.tensors[i], datas[n++] = safetensors_tensor_data(&st, i);
    snprintf(sub, sizeof sub, "%s/model.safetensors", path);
    ck_assert_int_eq(safetensors_write(sub, infos, (const void *const *)datas, n, NULL), VLM_OK);
    expect_error(gen_teacher_open(&t, path, 1),
                 (const char *[]){sub, "vision_model.post_layernorm.bias", "missing", NULL});
    safetensors_close(&st);
    free(infos), free(datas);
    expect_error(gen_teacher_open(&t, depth_pth(), 1), (const char *[]){"not a folder", NULL});
    remove_tree(dir);
}
END_TEST

Suite *teachers_vit_suite(void) {
    return SUITE("teachers_vit", "", 120, depth_matches_upstream, depth_transformers_folder, depth_positions_bicubic,
                 gen_matches_transformers, batch_and_threads_change_nothing);
}

// the checkpoints' and configs' error paths, also under ASan + UBSan (tag parser)
Suite *teachers_vit_files_suite(void) { return SUITE("teachers_vit_files", "parser", 120, bad_files_are_named); }
