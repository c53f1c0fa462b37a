// Image decoding and preprocessing against Pillow + transformers'
// CLIPImageProcessor (fixtures from tools/make_image_fixtures.sh): decoded
// RGB and the uint8 crop identical (FNV-1a 64 and sum), the float stage equal
// to the processor's table for every uint8 value, whole tensors within 1e-6.
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/safetensors.h"
#include "image/preprocess.h"
#include "test_util.h"

static json_t *expected(void) {
    static json_t *doc;
    if (!doc) doc = fixture_json("image/expected.json");
    return doc;
}

static void fnv64_hex(const uint8_t *p, size_t n, char out[17]) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static unsigned long long byte_sum(const uint8_t *p, size_t n) {
    unsigned long long s = 0;
    for (size_t i = 0; i < n; i++) s += p[i];
    return s;
}

// fixture paths are relative to the repository root
static const char *repo_path(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", VLM_SOURCE_DIR, rel);
    return buf;
}

START_TEST(decode_matches_pillow) {
    size_t i, decoded = 0, refused = 0;
    json_t *rec;
    json_array_foreach(json_object_get(expected(), "images"), i, rec) {
        const char *rel = json_string_value(json_object_get(rec, "path"));
        Image im;
        vlm_clear_error();
        int rc = image_decode_file(repo_path(rel), &im);
        if (json_object_get(rec, "error")) {
            ck_assert_msg(rc == VLM_ERR_INPUT, "%s: Pillow refuses it (%s), we decoded it", rel,
                          json_string_value(json_object_get(rec, "error")));
            ck_assert_msg(strstr(vlm_last_error(), rel) != NULL, "the error names the file: %s", vlm_last_error());
            refused++;
            continue;
        }
        ck_assert_msg(rc == VLM_OK, "%s: %s", rel, vlm_last_error());
        ck_assert_int_eq(im.width, json_integer_value(json_object_get(rec, "width")));
        ck_assert_int_eq(im.height, json_integer_value(json_object_get(rec, "height")));
        size_t n = (size_t)im.width * im.height * 3;
        char hex[17];
        fnv64_hex(im.rgb, n, hex);
        ck_assert_msg(strcmp(hex, json_string_value(json_object_get(rec, "rgb_fnv64"))) == 0 &&
                          byte_sum(im.rgb, n) == (unsigned long long)json_integer_value(json_object_get(rec, "rgb_sum")),
                      "%s: decoded RGB differs from Pillow's convert(\"RGB\") (sum %llu, want %lld)", rel,
                      byte_sum(im.rgb, n), json_integer_value(json_object_get(rec, "rgb_sum")));
        image_free(&im);
        decoded++;
    }
    ck_assert_uint_ge(decoded, 30);
    ck_assert_uint_ge(refused, 4);
}
END_TEST

START_TEST(preprocess_matches_clip_processor) {
    json_t *lut = json_object_get(expected(), "lut");
    float want_lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) want_lut[c][v] = (float)json_real_value(json_array_get(json_array_get(lut, c), v));
    PreprocessScratch scratch = {0};
    size_t i, checked = 0;
    json_t *rec;
    json_array_foreach(json_object_get(expected(), "images"), i, rec) {
        if (json_object_get(rec, "error")) continue;
        const char *rel = json_string_value(json_object_get(rec, "path"));
        Image im;
        ck_assert_msg(image_decode_file(repo_path(rel), &im) == VLM_OK, "%s", vlm_last_error());
        size_t k;
        json_t *crop;
        json_array_foreach(json_object_get(rec, "crops"), k, crop) {
            int size = (int)json_integer_value(json_object_get(crop, "size"));
            Preprocessor p;
            preprocessor_default(&p, size);
            p.pad = json_is_true(json_object_get(crop, "pad"));
            size_t n = (size_t)size * size;
            uint8_t *u8 = malloc(n * 3);
            float *pv = malloc(n * 3 * sizeof(float));
            ck_assert_msg(image_preprocess(&im, &p, pv, u8, &scratch, rel) == VLM_OK, "%s", vlm_last_error());
            char hex[17];
            fnv64_hex(u8, n * 3, hex);
            ck_assert_msg(strcmp(hex, json_string_value(json_object_get(crop, "fnv64"))) == 0,
                          "%s at %d%s: uint8 crop differs from the CLIP processor's (sum %llu, want %lld)", rel, size,
                          p.pad ? " padded" : "", byte_sum(u8, n * 3), json_integer_value(json_object_get(crop, "sum")));
            size_t differ = 0;  // counted, not asserted per value: each ck_assert writes to libcheck's pipe
            for (size_t j = 0; j < n; j++)
                for (int c = 0; c < 3; c++) differ += pv[c * n + j] != want_lut[c][u8[3 * j + c]];
            ck_assert_msg(differ == 0, "%s: %zu floats differ from the processor's", rel, differ);
            // The cost follows the image and the crop, not the padded square: every pixel of
            // either enters a few windows per axis (about 4 for bicubic), so 32 products of a
            // pixel by a weight and 32 bytes of scratch per pixel bound both. Padding a 90 x 15360
            // image used to filter its 15360 x 15360 square (944M products at 336).
            PreprocessScratch fresh = {0};
            uint8_t *again = malloc(n * 3);
            ck_assert_int_eq(image_preprocess(&im, &p, pv, again, &fresh, rel), VLM_OK);
            ck_assert_msg(memcmp(again, u8, n * 3) == 0, "%s: a fresh scratch gives other bytes", rel);
            uint64_t pixels = (uint64_t)im.width * im.height + n;
            ck_assert_msg(fresh.resize.products <= 32 * pixels, "%s at %d%s: %llu products for %llu pixels", rel, size,
                          p.pad ? " padded" : "", (unsigned long long)fresh.resize.products, (unsigned long long)pixels);
            ck_assert_msg(resize_scratch_bytes(&fresh.resize) <= 32 * pixels, "%s at %d%s: %zu scratch bytes for %llu pixels",
                          rel, size, p.pad ? " padded" : "", resize_scratch_bytes(&fresh.resize),
                          (unsigned long long)pixels);
            preprocess_scratch_free(&fresh);
            free(again);
            free(u8);
            free(pv);
            checked++;
        }
        image_free(&im);
    }
    preprocess_scratch_free(&scratch);
    ck_assert_uint_eq(checked, 6 * 35 + 3);  // 35 decodable images at 3 sizes padded and not, a 1 x 15360 one padded
}
END_TEST

// Whole pixel_values tensors from the processor, through the CLI.
START_TEST(cli_writes_pixel_values) {
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(expected(), "pixel_values"), i, t) {
        const char *rel = json_string_value(json_object_get(t, "path"));
        int size = (int)json_integer_value(json_object_get(t, "size"));
        char args[8192], out[4096], err[4096];
        const char *dst = temp_file("");
        snprintf(args, sizeof args, "image preprocess --size %d %s %s/%s %s", size,
                 json_is_true(json_object_get(t, "pad")) ? "--pad" : "", VLM_SOURCE_DIR, rel, dst);
        ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
        SafetensorsFile ours, ref;
        char ref_path[4096];
        snprintf(ref_path, sizeof ref_path, "image/%s", json_string_value(json_object_get(t, "file")));
        ck_assert_int_eq(safetensors_open(&ours, dst), VLM_OK);
        ck_assert_int_eq(safetensors_open(&ref, fixture(ref_path)), VLM_OK);
        ck_assert_int_eq(ours.count, 1);
        ck_assert_str_eq(ours.tensors[0].name, "pixel_values");
        ck_assert_int_eq(ours.tensors[0].dtype, DT_F32);
        ck_assert_int_eq(ours.tensors[0].ndim, 3);
        ck_assert_int_eq(ours.tensors[0].shape[0], 3);
        ck_assert_int_eq(ours.tensors[0].shape[1], size);
        ck_assert_int_eq(ours.tensors[0].shape[2], size);
        ck_assert_uint_eq(ours.tensors[0].numel, ref.tensors[0].numel);
        const float *a = safetensors_tensor_data(&ours, 0), *b = safetensors_tensor_data(&ref, 0);
        double worst = 0;
        for (uint64_t j = 0; j < ours.tensors[0].numel; j++) worst = fmax(worst, fabs((double)a[j] - b[j]));
        ck_assert_msg(worst <= 1e-6, "%s: max |diff| %g > 1e-6", rel, worst);
        safetensors_close(&ours);
        safetensors_close(&ref);
    }
    ck_assert_uint_eq(i, 3);
}
END_TEST

START_TEST(preprocessor_configs) {
    Preprocessor p;
    ck_assert_int_eq(preprocessor_load(&p, fixture("image/configs/llava_clip336.json")), VLM_OK);
    ck_assert_int_eq(p.shortest_edge, 336);
    ck_assert_int_eq(p.crop_h, 336);
    ck_assert_int_eq(p.crop_w, 336);
    uint8_t bg[3];
    preprocessor_pad_colour(&p, bg);
    ck_assert(bg[0] == 122 && bg[1] == 116 && bg[2] == 104);  // the recipes' fill colour
    ck_assert_int_eq(preprocessor_load(&p, fixture("image/configs/hf_clip_dict.json")), VLM_OK);
    ck_assert_int_eq(p.shortest_edge, 224);
    ck_assert(p.mean[0] == 0.5f && p.std[2] == 0.5f);
    preprocessor_pad_colour(&p, bg);
    ck_assert_int_eq(bg[0], 127);
    vlm_clear_error();
    ck_assert_int_eq(preprocessor_load(&p, fixture("image/configs/siglip.json")), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "SiglipImageProcessor is not supported") != NULL, "%s", vlm_last_error());
    ck_assert_int_eq(preprocessor_load(&p, fixture("image/configs/bilinear.json")), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "resample: only 3 (bicubic)") != NULL, "%s", vlm_last_error());
    ck_assert_int_eq(preprocessor_load(&p, temp_file("{\"size\": 224, \"crop_size\": 336}")), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "no larger than the resized shortest edge") != NULL, "%s", vlm_last_error());
    ck_assert_int_eq(preprocessor_load(&p, temp_file("{\"image_mean\": [0.5, 0.5]}")), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "image_mean: expected a number or 3 numbers") != NULL, "%s", vlm_last_error());
}
END_TEST

START_TEST(cli_reports_bad_images) {
    char args[4096], out[4096], err[4096];
    snprintf(args, sizeof args, "image preprocess --size 224 %s %s", fixture("image/truncated.jpg"), temp_file(""));
    ck_assert_int_eq(run_vlm(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "truncated.jpg: corrupt JPEG: Premature end of JPEG file") != NULL, "%s", err);
    snprintf(args, sizeof args, "image preprocess --size 224 %s %s", fixture("image/truncated.png"), temp_file(""));
    ck_assert_int_eq(run_vlm(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "truncated.png: corrupt PNG: file is truncated") != NULL, "%s", err);
    snprintf(args, sizeof args, "image preprocess --size 224 %s %s", fixture("image/not_an_image.jpg"), temp_file(""));
    ck_assert_int_eq(run_vlm(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "not_an_image.jpg: not a JPEG, PNG or GIF file") != NULL, "%s", err);
    ck_assert_int_eq(run_vlm("image preprocess --size 224 /nonexistent.jpg /tmp/x.st", out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "/nonexistent.jpg: image not found") != NULL, "%s", err);
    ck_assert_int_eq(run_vlm("image preprocess a.jpg b.st", out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "give --size N or --config") != NULL, "%s", err);
}
END_TEST

Suite *image_suite(void) {
    return SUITE("image", "parser", 300,
                 decode_matches_pillow,
                 preprocess_matches_clip_processor,
                 cli_writes_pixel_values,
                 preprocessor_configs,
                 cli_reports_bad_images);
}
