// CLIP image preprocessing with LLaVA's padding, see preprocess.h.
#include "image/preprocess.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"  // path_join, file_exists
#include "core/json.h"

static const double CLIP_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double CLIP_STD[3] = {0.26862954, 0.26130258, 0.27577711};

void preprocessor_set_size(Preprocessor *p, int size) {
    p->shortest_edge = p->crop_h = p->crop_w = size;
}

void preprocessor_default(Preprocessor *p, int size) {
    memset(p, 0, sizeof *p);
    preprocessor_set_size(p, size);
    p->do_rescale = p->do_normalize = true;
    p->rescale_factor = 1.0 / 255.0;
    for (int c = 0; c < 3; c++) {
        p->mean_f64[c] = CLIP_MEAN[c];
        p->mean[c] = (float)CLIP_MEAN[c];
        p->std[c] = (float)CLIP_STD[c];
    }
}

void preprocessor_open_clip(Preprocessor *p, int size, const double mean[3], const double std[3]) {
    preprocessor_default(p, size);  // mean_f64 stays CLIP's: the pad colour
    for (int c = 0; c < 3; c++) p->mean[c] = (float)mean[c], p->std[c] = (float)std[c];
    p->crop_round = true;
}

// round(d / 2) with Python's rounding (halves to even), d >= 0
static int half_to_even(int d) {
    int k = d / 2;
    return d % 2 && k % 2 ? k + 1 : k;
}

void preprocessor_pad_colour(const Preprocessor *p, uint8_t rgb[3]) {
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)(int)(p->mean_f64[c] * 255);
}

// ---- preprocessor_config.json

#define MAX_EDGE 16384  // pixels: far above any vision tower's input

// An edge length in [1, MAX_EDGE] (a bigger one would wrap around in int).
static int edge(const json_t *v, const char *key, int *out, const char *path) {
    long long x;
    int rc = vlm_json_int(v, 1, MAX_EDGE, &x, path, key);
    if (rc == VLM_OK) *out = (int)x;
    return rc;
}

// An int, or {"shortest_edge": N} / {"height": H, "width": W} (what get_size_dict accepts).
static int read_size(const json_t *v, const char *key, int *shortest, int *h, int *w, const char *path) {
    if (json_is_integer(v)) {
        int rc = edge(v, key, shortest, path);
        if (rc != VLM_OK) return rc;
        *h = *w = *shortest;
    } else if (json_is_object(v)) {
        json_t *se = json_object_get(v, "shortest_edge"), *jh = json_object_get(v, "height"),
               *jw = json_object_get(v, "width");
        if (json_is_integer(se)) return edge(se, key, shortest, path);
        if (json_is_integer(jh) && json_is_integer(jw)) {
            int rc = edge(jh, key, h, path);
            return rc == VLM_OK ? edge(jw, key, w, path) : rc;
        }
        return vlm_fail(VLM_ERR_INPUT, path, key, "expected shortest_edge or height and width");
    } else {
        return vlm_fail(VLM_ERR_INPUT, path, key, "expected an integer or an object");
    }
    return VLM_OK;
}

static int read_triple(const json_t *v, const char *key, double out[3], const char *path) {
    if (json_is_number(v)) {
        out[0] = out[1] = out[2] = json_number_value(v);
        return VLM_OK;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return vlm_fail(VLM_ERR_INPUT, path, key, "expected a number or 3 numbers");
    for (int c = 0; c < 3; c++) {
        if (!json_is_number(json_array_get(v, c))) return vlm_fail(VLM_ERR_INPUT, path, key, "expected numbers");
        out[c] = json_number_value(json_array_get(v, c));
    }
    return VLM_OK;
}

static int read_flag(const json_t *root, const char *key, bool *out, const char *path) {
    json_t *v = json_object_get(root, key);
    if (!v) return VLM_OK;
    if (!json_is_boolean(v)) return vlm_fail(VLM_ERR_INPUT, path, key, "expected true or false");
    *out = json_is_true(v);
    return VLM_OK;
}

static int check_config(const json_t *root, const char *path) {
    const char *type = json_string_value(json_object_get(root, "image_processor_type"));
    if (!type) type = json_string_value(json_object_get(root, "feature_extractor_type"));
    if (type && strcmp(type, "CLIPImageProcessor") != 0 && strcmp(type, "CLIPFeatureExtractor") != 0)
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "%s is not supported (CLIPImageProcessor is)", type);
    json_t *resample = json_object_get(root, "resample");
    if (resample && (!json_is_integer(resample) || json_integer_value(resample) != 3))
        return vlm_fail(VLM_ERR_INPUT, path, "resample", "only 3 (bicubic) is supported");
    bool resize = true, crop = true, rgb = true;
    if (read_flag(root, "do_resize", &resize, path) || read_flag(root, "do_center_crop", &crop, path) ||
        read_flag(root, "do_convert_rgb", &rgb, path))
        return VLM_ERR_INPUT;
    if (!resize || !crop || !rgb)
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "do_resize, do_center_crop and do_convert_rgb must be true");
    return VLM_OK;
}

int preprocessor_load(Preprocessor *p, const char *path) {
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return vlm_fail(VLM_ERR_INPUT, path, NULL, "line %d: %s", jerr.line, jerr.text);
    preprocessor_default(p, 224);
    int rc = check_config(root, path);
    // read_size fills all three from an integer; "size" must be a shortest edge, "crop_size" a height and width
    int fixed_h = 0, fixed_w = 0, crop_edge = 0;
    p->shortest_edge = 0;
    json_t *size = json_object_get(root, "size"), *crop = json_object_get(root, "crop_size");
    if (rc == VLM_OK && size) rc = read_size(size, "size", &p->shortest_edge, &fixed_h, &fixed_w, path);
    if (rc == VLM_OK && !p->shortest_edge && (fixed_h || fixed_w))
        rc = vlm_fail(VLM_ERR_INPUT, path, "size", "a fixed height and width is not CLIP's resize (shortest_edge is)");
    if (!size) p->shortest_edge = 224;
    if (rc == VLM_OK && crop) rc = read_size(crop, "crop_size", &crop_edge, &p->crop_h, &p->crop_w, path);
    if (rc == VLM_OK) rc = read_flag(root, "do_rescale", &p->do_rescale, path);
    if (rc == VLM_OK) rc = read_flag(root, "do_normalize", &p->do_normalize, path);
    json_t *v;
    if (rc == VLM_OK && (v = json_object_get(root, "rescale_factor"))) {
        if (!json_is_number(v)) rc = vlm_fail(VLM_ERR_INPUT, path, "rescale_factor", "expected a number");
        else p->rescale_factor = json_number_value(v);
    }
    double std[3] = {CLIP_STD[0], CLIP_STD[1], CLIP_STD[2]};
    if (rc == VLM_OK && (v = json_object_get(root, "image_mean"))) rc = read_triple(v, "image_mean", p->mean_f64, path);
    if (rc == VLM_OK && (v = json_object_get(root, "image_std"))) rc = read_triple(v, "image_std", std, path);
    for (int c = 0; c < 3; c++) {
        p->mean[c] = (float)p->mean_f64[c];
        p->std[c] = (float)std[c];
    }
    if (rc == VLM_OK && (p->shortest_edge <= 0 || p->crop_h <= 0 || p->crop_w <= 0 || p->crop_h > p->shortest_edge ||
                         p->crop_w > p->shortest_edge))
        rc = vlm_fail(VLM_ERR_INPUT, path, NULL,
                      "crop %dx%d must be positive and no larger than the resized shortest edge %d", p->crop_w,
                      p->crop_h, p->shortest_edge);
    json_decref(root);
    return rc;
}

// ---- the pipeline

void preprocess_scratch_free(PreprocessScratch *s) {
    resize_scratch_free(&s->resize);
    free(s->crop);
    memset(s, 0, sizeof *s);
}

int image_preprocess(const Image *im, const Preprocessor *p, float *pixel_values, uint8_t *crop_u8,
                     PreprocessScratch *s, const char *name) {
    PaddedImage src = {.rgb = im->rgb, .width = im->width, .height = im->height, .canvas_w = im->width,
                       .canvas_h = im->height};
    if (p->pad && im->width != im->height) {
        // LLaVA's expand2square: paste at ((side - w) // 2, (side - h) // 2); the square is never built
        int side = im->width > im->height ? im->width : im->height;
        src.canvas_w = src.canvas_h = side;
        src.off_x = (side - im->width) / 2;
        src.off_y = (side - im->height) / 2;
        preprocessor_pad_colour(p, src.bg);
    }
    // transformers' get_resize_output_image_size (default_to_square=False)
    int w = src.canvas_w, h = src.canvas_h, S = p->shortest_edge;
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int new_long = (int)((double)((long long)S * longer) / shorter);
    int out_w = w <= h ? S : new_long, out_h = w <= h ? new_long : S;
    // centre crop: top = (h - crop_h) // 2, left = (w - crop_w) // 2 (torchvision: rounded, halves to even)
    int top = (out_h - p->crop_h) / 2, left = (out_w - p->crop_w) / 2;
    if (p->crop_round) top = half_to_even(out_h - p->crop_h), left = half_to_even(out_w - p->crop_w);
    size_t n = (size_t)p->crop_h * p->crop_w;
    uint8_t *u8 = crop_u8;
    if (!u8) {
        if (n * 3 > s->cap_crop) {
            uint8_t *q = vlm_realloc(s->crop, n * 3);
            if (!q) return VLM_ERR_FAIL;
            s->crop = q;
            s->cap_crop = n * 3;
        }
        u8 = s->crop;
    }
    if (resize_bicubic_window(&src, out_w, out_h, left, top, p->crop_w, p->crop_h, u8, &s->resize) != VLM_OK)
        return vlm_fail_context(VLM_ERR_INPUT, "%s", name);
    // rescale (float64 product, stored as float32) and normalise (float32), HWC -> CHW
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = p->do_rescale ? (float)((double)v * p->rescale_factor) : (float)v;
            lut[c][v] = p->do_normalize ? (x - p->mean[c]) / p->std[c] : x;
        }
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++) pixel_values[c * n + i] = lut[c][u8[3 * i + c]];
    return VLM_OK;
}

int image_preprocess_file(const char *path, const Preprocessor *p, float *pixel_values, PreprocessScratch *scratch,
                          int *width, int *height) {
    Image im;
    int rc = image_decode_file(path, &im);
    if (rc == VLM_OK) rc = image_preprocess(&im, p, pixel_values, NULL, scratch, path);
    if (width) *width = im.width;
    if (height) *height = im.height;
    image_free(&im);
    return rc;
}

int preprocessor_for_model(Preprocessor *p, const char *model_dir, int size, bool pad) {
    char *config = path_join(model_dir, "preprocessor_config.json");
    if (!config) return VLM_ERR_FAIL;
    int rc = VLM_OK;
    if (file_exists(config)) rc = preprocessor_load(p, config);
    else preprocessor_default(p, size);
    free(config);
    if (rc != VLM_OK) return rc;
    preprocessor_set_size(p, size);
    p->pad = pad;
    return VLM_OK;
}
