// OneFormer's image preprocessing, see oneformer_preprocess.h.
#include "image/oneformer_preprocess.h"

#include <stdio.h>   // snprintf
#include <string.h>  // strcmp

#include "core/error.h"
#include "core/json.h"

#define MAX_SIDE 16384

// transformers' IMAGENET_DEFAULT_MEAN / _STD
static const double IMAGENET_MEAN[3] = {0.485, 0.456, 0.406}, IMAGENET_STD[3] = {0.229, 0.224, 0.225};

void oneformer_preprocessor_default(OneFormerPreprocessor *p) {
    *p = (OneFormerPreprocessor){.do_resize = true,
                                 .do_rescale = true,
                                 .do_normalize = true,
                                 .shortest_edge = 800,
                                 .longest_edge = 1333,
                                 .filter = RESIZE_BILINEAR,
                                 .rescale_factor = 1.0 / 255};
    for (int c = 0; c < 3; c++) p->mean[c] = (float)IMAGENET_MEAN[c], p->std[c] = (float)IMAGENET_STD[c];
}

static int read_flag(const json_t *root, const char *key, bool *out, const char *path) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return VLM_OK;
    if (!json_is_boolean(v)) return vlm_fail(VLM_ERR_INPUT, path, key, "expected true or false");
    *out = json_is_true(v);
    return VLM_OK;
}

// a number (every channel) or 3 numbers, as float32
static int read_triple(const json_t *root, const char *key, float out[3], const char *path) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return VLM_OK;
    double x[3];
    if (vlm_json_is_number(v)) {
        int rc = vlm_json_real(v, &x[0], path, key);
        if (rc != VLM_OK) return rc;
        x[1] = x[2] = x[0];
    } else {
        if (!json_is_array(v) || json_array_size(v) != 3)
            return vlm_fail(VLM_ERR_INPUT, path, key, "expected a number or 3 numbers");
        for (int c = 0; c < 3; c++) {
            int rc = vlm_json_real(json_array_get(v, (size_t)c), &x[c], path, key);
            if (rc != VLM_OK) return rc;
        }
    }
    for (int c = 0; c < 3; c++) out[c] = (float)x[c];
    return VLM_OK;
}

// "size" as OneFormerImageProcessor.__init__ and resize take it: an integer is
// {shortest_edge: it, longest_edge: max_size}; a dict must hold shortest_edge and
// longest_edge, or height and width
static int read_size(const json_t *root, OneFormerPreprocessor *p, const char *path) {
    long long max_size, v;
    int rc = vlm_json_get_int(root, "max_size", VLM_JSON_OPTIONAL, 1333, 1, MAX_SIDE, &max_size, path, NULL);
    if (rc != VLM_OK) return rc;
    const json_t *size = json_object_get(root, "size");
    p->shortest_edge = 800, p->longest_edge = (int)max_size, p->height = p->width = 0;
    if (!size || json_is_null(size)) return VLM_OK;
    if (json_is_integer(size) || vlm_json_is_number(size)) {
        if ((rc = vlm_json_int(size, 1, MAX_SIDE, &v, path, "size"))) return rc;
        p->shortest_edge = (int)v;
        return VLM_OK;
    }
    if (!json_is_object(size)) return vlm_fail(VLM_ERR_INPUT, path, "size", "expected an integer or an object");
    long long a, b;
    if (json_object_get(size, "shortest_edge") && json_object_get(size, "longest_edge")) {
        if ((rc = vlm_json_get_int(size, "shortest_edge", VLM_JSON_REQUIRED, 0, 1, MAX_SIDE, &a, path,
                                   "size.shortest_edge")) ||
            (rc = vlm_json_get_int(size, "longest_edge", VLM_JSON_REQUIRED, 0, 1, MAX_SIDE, &b, path,
                                   "size.longest_edge")))
            return rc;
        p->shortest_edge = (int)a, p->longest_edge = (int)b;
        return VLM_OK;
    }
    if (json_object_get(size, "height") && json_object_get(size, "width")) {
        if ((rc = vlm_json_get_int(size, "height", VLM_JSON_REQUIRED, 0, 1, MAX_SIDE, &a, path, "size.height")) ||
            (rc = vlm_json_get_int(size, "width", VLM_JSON_REQUIRED, 0, 1, MAX_SIDE, &b, path, "size.width")))
            return rc;
        p->shortest_edge = 0, p->height = (int)a, p->width = (int)b;
        return VLM_OK;
    }
    return vlm_fail(VLM_ERR_INPUT, path, "size",
                    "OneFormer's resize takes shortest_edge and longest_edge, or height and width");
}

int oneformer_preprocessor_load(OneFormerPreprocessor *p, const char *path) {
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return vlm_fail(VLM_ERR_INPUT, path, NULL, "line %d: %s", jerr.line, jerr.text);
    oneformer_preprocessor_default(p);
    int rc = VLM_OK;
    const char *type = json_string_value(json_object_get(root, "image_processor_type"));
    if (type && strcmp(type, "OneFormerImageProcessor"))
        rc = vlm_fail(VLM_ERR_INPUT, path, "image_processor_type", "%s is not OneFormerImageProcessor", type);
    if (rc == VLM_OK) rc = read_flag(root, "do_resize", &p->do_resize, path);
    if (rc == VLM_OK) rc = read_flag(root, "do_rescale", &p->do_rescale, path);
    if (rc == VLM_OK) rc = read_flag(root, "do_normalize", &p->do_normalize, path);
    if (rc == VLM_OK) rc = read_size(root, p, path);
    if (rc == VLM_OK)
        rc = vlm_json_get_real(root, "rescale_factor", VLM_JSON_OPTIONAL, 1.0 / 255, &p->rescale_factor, path, NULL);
    if (rc == VLM_OK) rc = read_triple(root, "image_mean", p->mean, path);
    if (rc == VLM_OK) rc = read_triple(root, "image_std", p->std, path);
    long long resample = 2;
    if (rc == VLM_OK) rc = vlm_json_get_int(root, "resample", VLM_JSON_OPTIONAL, 2, 0, 5, &resample, path, NULL);
    if (rc == VLM_OK) {
        // PIL.Image.Resampling: 0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING
        static const char *const names[6] = {"NEAREST", "LANCZOS", "BILINEAR", "BICUBIC", "BOX", "HAMMING"};
        if (resample == 2)
            p->filter = RESIZE_BILINEAR;
        else if (resample == 3)
            p->filter = RESIZE_BICUBIC;
        else
            rc = vlm_fail(VLM_ERR_INPUT, path, "resample", "%lld (%s) is not supported (2 BILINEAR or 3 BICUBIC)",
                          resample, names[resample]);
    }
    if (rc == VLM_OK && p->shortest_edge && p->longest_edge <= p->shortest_edge)
        rc = vlm_fail(VLM_ERR_INPUT, path, "size", "longest_edge %d must be greater than shortest_edge %d",
                      p->longest_edge, p->shortest_edge);
    json_decref(root);
    return rc;
}

int oneformer_output_size(const OneFormerPreprocessor *p, int w, int h, int *out_w, int *out_h, const char *name) {
    if (!p->do_resize) return *out_w = w, *out_h = h, VLM_OK;
    if (!p->shortest_edge) return *out_w = p->width, *out_h = p->height, VLM_OK;
    // get_resize_output_image_size(default_to_square=False, max_size=longest_edge), Python's int() of true divisions
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    long long S = p->shortest_edge, M = p->longest_edge;
    long long ns = S, nl = (long long)((double)(S * longer) / shorter);
    if (nl > M) ns = (long long)((double)(M * ns) / nl), nl = M;
    if (ns < 1 || nl > MAX_SIDE)
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "a %dx%d image resizes to an unusable %lldx%lld", w, h,
                        w <= h ? ns : nl, w <= h ? nl : ns);
    *out_w = (int)(w <= h ? ns : nl), *out_h = (int)(w <= h ? nl : ns);
    return VLM_OK;
}

int oneformer_preprocess(const OneFormerPreprocessor *p, const Image *im, float *pixel_values, uint8_t *u8,
                         ResizeScratch *scratch, const char *name) {
    int ow, oh, rc = oneformer_output_size(p, im->width, im->height, &ow, &oh, name);
    if (rc != VLM_OK) return rc;
    const uint8_t *src = im->rgb;
    if (p->do_resize) {
        PaddedImage pi = {
            .rgb = im->rgb, .width = im->width, .height = im->height, .canvas_w = im->width, .canvas_h = im->height};
        if (resize_window(&pi, p->filter, ow, oh, 0, 0, ow, oh, u8, scratch) != VLM_OK)
            return vlm_fail_context(VLM_ERR_INPUT, "%s", name);
        src = u8;
    }
    // rescale (float64 product, stored as float32) and normalise (float32), HWC -> CHW
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = p->do_rescale ? (float)((double)v * p->rescale_factor) : (float)v;
            lut[c][v] = p->do_normalize ? (x - p->mean[c]) / p->std[c] : x;
        }
    size_t n = (size_t)ow * oh;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++) pixel_values[c * n + i] = lut[c][src[3 * i + c]];
    return VLM_OK;
}
