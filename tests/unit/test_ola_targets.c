// `vlm ola targets`' runner (train/ola_targets.h) over test teachers whose
// target is a function of the image alone (its size and mean colour): every
// distinct image gets one file, readable by data/teacher_targets.h, however
// the images fall into batches; a second run writes nothing; a file missing
// or of the wrong shape is made again; a bad image stops the run naming the
// data file and record, or is counted and skipped. The real teachers' parity
// is in their own suites.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "data/teacher_targets.h"
#include "image/image.h"
#include "test_util.h"
#include "train/ola_targets.h"

// ---- a teacher of 3 numbers per image, spread over its target's shape

typedef struct {
    float feat[16][3];   // per slot: width, height, mean red
    int forwards, most;  // forward calls, the largest batch seen
} TestTeacher;

static int test_prepare(Teacher *t, int slot, const Image *im, const char *name) {
    (void)name;
    TestTeacher *s = t->impl;
    double red = 0;
    for (long i = 0; i < (long)im->width * im->height; i++) red += im->rgb[3 * i];
    s->feat[slot][0] = (float)im->width, s->feat[slot][1] = (float)im->height;
    s->feat[slot][2] = (float)(red / ((double)im->width * im->height));
    return VLM_OK;
}

static int test_forward(Teacher *t, int n, float *out) {
    TestTeacher *s = t->impl;
    size_t F = teacher_target_floats(t);
    s->forwards++;
    if (n > s->most) s->most = n;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < F; j++) out[i * F + j] = s->feat[i][j % 3] + (float)(t->task * 1000 + (int)j);
    return VLM_OK;
}

static const TeacherOps TEST_OPS = {test_prepare, test_forward, NULL};

static void test_teacher(Teacher *t, TestTeacher *s, OlaTask task, int ndim, int64_t a, int64_t b, int64_t c) {
    memset(t, 0, sizeof *t), memset(s, 0, sizeof *s);
    t->task = task, t->ndim = ndim, t->shape[0] = a, t->shape[1] = b, t->shape[2] = c;
    t->max_batch = 16, t->ops = &TEST_OPS, t->impl = s;
    snprintf(t->name, sizeof t->name, "test %s", ola_task_name(task));
}

// ---- inputs: 5 records over 4 distinct images (one in a subfolder, one twice), one text-only

static char dir[64], data[200], out[128], images[128];

static void copy_image(const char *from, const char *to) {
    char src[700], dst[300];
    snprintf(src, sizeof src, "%s/../shared/assets/images/%s", VLM_SOURCE_DIR, from);
    snprintf(dst, sizeof dst, "%s/%s", images, to);
    char *parent = path_dirname(dst);
    ck_assert_int_eq(make_dirs(parent), VLM_OK);
    free(parent);
    ck_assert_msg(file_copy_atomic(src, dst) == VLM_OK, "%s", vlm_last_error());
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/vlm-ola-targets-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(data, sizeof data, "%s/data.json", dir);
    snprintf(out, sizeof out, "%s/targets", dir);
    snprintf(images, sizeof images, "%s/images", dir);
    copy_image("llava_logo.png", "logo.png");
    copy_image("211.jpg", "sub/211.jpg");
    copy_image("sausage.jpg", "sausage.jpg");
    copy_image("waterview.jpg", "water.jpg");
    write_text_file(data,
                    "[{\"id\": \"a\", \"image\": \"logo.png\", \"conversations\": []},\n"
                    " {\"id\": \"b\", \"image\": \"sub/211.jpg\", \"conversations\": []},\n"
                    " {\"id\": \"t\", \"conversations\": []},\n"
                    " {\"id\": \"c\", \"image\": \"logo.png\", \"conversations\": []},\n"
                    " {\"id\": \"d\", \"image\": \"sausage.jpg\", \"conversations\": []},\n"
                    " {\"id\": \"e\", \"image\": \"water.jpg\", \"conversations\": []}]\n");
}

static void teardown(void) { remove_tree(dir); }

typedef struct {
    Teacher t[OLA_TASKS];
    TestTeacher s[OLA_TASKS];
} Teachers;

// depth (2, 3) and gen (4): seg not made
static void teachers_depth_gen(Teachers *T) {
    memset(T, 0, sizeof *T);
    test_teacher(&T->t[OLA_DEPTH], &T->s[OLA_DEPTH], OLA_DEPTH, 2, 2, 3, 0);
    test_teacher(&T->t[OLA_GEN], &T->s[OLA_GEN], OLA_GEN, 1, 4, 0, 0);
}

static int run(Teachers *T, int batch, bool skip_bad, OlaTargetsReport *r) {
    const char *paths[] = {data};
    OlaTargetsOptions o = {.data_paths = paths, .n_data = 1, .image_folder = images, .out_dir = out,
                           .batch = batch, .dtype = DT_F32, .skip_bad = skip_bad, .quiet = true};
    return ola_targets_run(&o, T->t, r);
}

// the model's view of the files: depth 2 x 3, gen 1 x 4
static void ola_of(OlaConfig *o) {
    memset(o, 0, sizeof *o);
    o->enabled = true, o->n_order = 2, o->order[0] = OLA_GEN, o->order[1] = OLA_DEPTH;
    o->task[OLA_DEPTH].num_tokens = 2, o->task[OLA_DEPTH].output_dim = 3;
    o->task[OLA_GEN].num_tokens = 1, o->task[OLA_GEN].output_dim = 4;
}

// the file of image `name` holds its own targets: width, height, mean red spread over the shape
static void check_file(const char *name, const char *photo) {
    OlaConfig o;
    ola_of(&o);
    float depth[6], gen[4], *const dst[OLA_TASKS] = {depth, NULL, gen};
    ck_assert_msg(teacher_targets_read(out, name, &o, dst) == VLM_OK, "%s", vlm_last_error());
    char path[700];
    snprintf(path, sizeof path, "%s/../shared/assets/images/%s", VLM_SOURCE_DIR, photo);
    Image im;
    ck_assert_int_eq(image_decode_file(path, &im), VLM_OK);
    ck_assert_float_eq(depth[0], (float)im.width);
    ck_assert_float_eq(depth[4], (float)im.height + 4);
    ck_assert_float_eq(gen[1], (float)im.height + 2000 + 1);
    ck_assert_float_eq(gen[3], (float)im.width + 2000 + 3);
    image_free(&im);
}

START_TEST(ola_targets_writes_each_image_once) {
    int batch = _i == 0 ? 1 : _i == 1 ? 3 : 16;  // batches of 1, a partial last batch, one batch
    Teachers T;
    teachers_depth_gen(&T);
    OlaTargetsReport r;
    ck_assert_msg(run(&T, batch, false, &r) == VLM_OK, "%s", vlm_last_error());
    ck_assert_uint_eq(r.records, 6);
    ck_assert_uint_eq(r.images, 4);
    ck_assert_uint_eq(r.computed, 4);
    ck_assert_uint_eq(r.present + r.bad, 0);
    ck_assert_int_eq(T.s[OLA_DEPTH].forwards, (4 + batch - 1) / batch);
    ck_assert_int_le(T.s[OLA_DEPTH].most, batch);
    check_file("logo.png", "llava_logo.png");
    check_file("sub/211.jpg", "211.jpg");
    check_file("sausage.jpg", "sausage.jpg");
    check_file("water.jpg", "waterview.jpg");
    ck_assert_int_eq(count_dir_entries(out), 4);  // logo, sub/, sausage, water: no temporary files left
}
END_TEST

START_TEST(ola_targets_resumes) {
    Teachers T;
    teachers_depth_gen(&T);
    OlaTargetsReport r;
    ck_assert_int_eq(run(&T, 2, false, &r), VLM_OK);
    // again: nothing to do
    teachers_depth_gen(&T);
    ck_assert_int_eq(run(&T, 2, false, &r), VLM_OK);
    ck_assert_uint_eq(r.computed, 0);
    ck_assert_uint_eq(r.present, 4);
    ck_assert_int_eq(T.s[OLA_DEPTH].forwards, 0);
    // one file gone (an interrupted run never leaves a partial one), one of another shape: both made again
    char path[300];
    snprintf(path, sizeof path, "%s/sausage.jpg.safetensors", out);
    ck_assert_int_eq(unlink(path), 0);
    Teachers other;
    teachers_depth_gen(&other);
    other.t[OLA_DEPTH].shape[1] = 5;
    snprintf(data, sizeof data, "%s/one.json", dir);
    write_text_file(data, "[{\"image\": \"water.jpg\"}]");
    ck_assert_int_eq(run(&other, 2, false, &r), VLM_OK);
    ck_assert_uint_eq(r.computed, 1);
    snprintf(data, sizeof data, "%s/data.json", dir);
    teachers_depth_gen(&T);
    ck_assert_int_eq(run(&T, 2, false, &r), VLM_OK);
    ck_assert_uint_eq(r.computed, 2);
    ck_assert_uint_eq(r.present, 2);
    check_file("sausage.jpg", "sausage.jpg");
    check_file("water.jpg", "waterview.jpg");
    // a task added later (seg): every file is made again with all three
    teachers_depth_gen(&T);
    test_teacher(&T.t[OLA_SEG], &T.s[OLA_SEG], OLA_SEG, 3, 5, 1, 2);
    ck_assert_int_eq(run(&T, 2, false, &r), VLM_OK);
    ck_assert_uint_eq(r.computed, 4);
}
END_TEST

START_TEST(ola_targets_bad_image) {
    char path[300];
    snprintf(path, sizeof path, "%s/sausage.jpg", images);
    write_text_file(path, "not a jpeg at all");
    Teachers T;
    teachers_depth_gen(&T);
    OlaTargetsReport r;
    ck_assert_int_eq(run(&T, 3, false, &r), VLM_ERR_INPUT);
    const char *e = vlm_last_error();
    ck_assert_msg(strstr(e, "data.json") && strstr(e, "record 4") && strstr(e, "sausage.jpg"), "%s", e);
    // skipped: counted, the others written, the bad one without a file
    teachers_depth_gen(&T);
    ck_assert_msg(run(&T, 3, true, &r) == VLM_OK, "%s", vlm_last_error());
    ck_assert_uint_eq(r.bad, 1);
    ck_assert_uint_eq(r.computed, 3);
    check_file("water.jpg", "waterview.jpg");
    snprintf(path, sizeof path, "%s/sausage.jpg.safetensors", out);
    ck_assert(!file_exists(path));
}
END_TEST

START_TEST(ola_targets_bf16_and_errors) {
    Teachers T;
    teachers_depth_gen(&T);
    const char *paths[] = {data};
    OlaTargetsOptions o = {.data_paths = paths, .n_data = 1, .image_folder = images, .out_dir = out,
                           .batch = 2, .dtype = DT_BF16, .quiet = true};
    OlaTargetsReport r;
    ck_assert_int_eq(ola_targets_run(&o, T.t, &r), VLM_OK);
    SafetensorsFile f;
    char path[300];
    snprintf(path, sizeof path, "%s/logo.png.safetensors", out);
    ck_assert_int_eq(safetensors_open(&f, path), VLM_OK);
    ck_assert_int_eq(f.tensors[safetensors_find(&f, "depth")].dtype, DT_BF16);
    safetensors_close(&f);
    OlaConfig oc;
    ola_of(&oc);
    float depth[6], gen[4], *const dst[OLA_TASKS] = {depth, NULL, gen};
    ck_assert_int_eq(teacher_targets_read(out, "logo.png", &oc, dst), VLM_OK);
    ck_assert_float_eq(depth[0], 512.0f);  // llava_logo.png: 512 x 512, exact in bf16
    ck_assert(fabsf(gen[1] - (512.0f + 2001)) <= 2513.0f / 256);  // rounded to bf16's 8 bits
    // a batch larger than the teachers were opened for; no teacher at all
    o.batch = 17;
    ck_assert_int_eq(ola_targets_run(&o, T.t, &r), VLM_ERR_FAIL);
    Teacher none[OLA_TASKS];
    memset(none, 0, sizeof none);
    o.batch = 2;
    ck_assert_int_eq(ola_targets_run(&o, none, &r), VLM_ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(vlm_last_error(), "--depth_estimator"));
}
END_TEST

Suite *ola_targets_suite(void) {
    Suite *s = suite_create("ola_targets");
    TCase *tc = tcase_create("runner");
    tcase_set_tags(tc, "parser");  // the target files written and read back: also under ASan + UBSan
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, ola_targets_writes_each_image_once, 0, 3);
    tcase_add_test(tc, ola_targets_resumes);
    tcase_add_test(tc, ola_targets_bad_image);
    tcase_add_test(tc, ola_targets_bf16_and_errors);
    suite_add_tcase(s, tc);
    return s;
}
