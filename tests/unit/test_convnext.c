// OLA-VLM's CLIP-ConvNeXt vision tower against upstream's own CLIPConvNextVisionTower
// (tools/make_convnext_fixtures.sh: tests/fixtures/convnext, a tiny random open_clip hub folder):
// features, every trunk gradient, the image processor; its kernels against naive loops and
// finite differences; the loader's errors; and as the vision tower of a LLaVA (parts layout,
// saved in the original layout and opened back, `vlm train` with the tower frozen).
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "core/str.h"
#include "formats/safetensors.h"
#include "image/preprocess.h"
#include "kernels/dwconv.h"
#include "kernels/layer_scale.h"
#include "kernels/space_to_depth.h"
#include "model/convnext.h"
#include "model/convnext_config.h"
#include "model/llava.h"
#include "model/open.h"
#include "text/template.h"  // IMAGE_TOKEN_INDEX, IGNORE_INDEX
#include "test_util.h"

#define PHOTOS VLM_SOURCE_DIR "/../shared/assets/images"
#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"

static char hub[512], tower[600];

// the fixture's hub folder and its name with upstream's size suffix
static void names(void) {
    snprintf(hub, sizeof hub, "%s", fixture("convnext/tiny_openclip"));
    snprintf(tower, sizeof tower, "%s-res64", hub);
}

static void open_llava(LlavaParams *p, const char *name) {
    char llm[1024];
    snprintf(llm, sizeof llm, "%s", fixture("model/tiny_gqa_llm"));
    LlavaOpenOptions o = {.vision_tower = name, .feature_layer = -2, .seed = 1};
    ck_assert_msg(llava_open(p, llm, &o, NULL) == VLM_OK, "%s", vlm_last_error());
}

// |a - b| / |b| over n floats
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, w = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), w += (double)b[i] * b[i];
    return sqrt(d) / (sqrt(w) > 0 ? sqrt(w) : 1);
}

// ---- the kernels

static Rng rng;

static float *randn(size_t n, float scale) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = rng_normal(&rng) * scale;
    return p;
}

// out[n,y,x,c] = b[c] + sum w[c,ky,kx] in[n,y+ky-P,x+kx-P,c], in double
static void naive_dwconv(double *out, const float *in, const float *w, const float *b, int N, int H, int W, int C, int K) {
    int P = K / 2;
    for (int n = 0; n < N; n++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++) {
                    double s = b ? b[c] : 0;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int iy = y + ky - P, ix = x + kx - P;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                s += (double)w[(c * K + ky) * K + kx] * in[(((size_t)n * H + iy) * W + ix) * C + c];
                        }
                    out[(((size_t)n * H + y) * W + x) * C + c] = s;
                }
}

// sum(out * R) of the convolution, in double, for finite differences
static double dwconv_loss(const float *in, const float *w, const float *b, const float *R, int N, int H, int W, int C, int K) {
    size_t n = (size_t)N * H * W * C;
    double *out = malloc(sizeof(double) * n), s = 0;
    naive_dwconv(out, in, w, b, N, H, W, C, K);
    for (size_t i = 0; i < n; i++) s += out[i] * R[i];
    free(out);
    return s;
}

START_TEST(convnext_dwconv_kernel) {
    rng_init(&rng, 7, 0);
    static const int cases[][5] = {{2, 9, 6, 37, 7}, {1, 3, 4, 5, 7}, {2, 5, 5, 33, 3}};  // N, H, W, C, K: maps smaller than the kernel too
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        int N = cases[t][0], H = cases[t][1], W = cases[t][2], C = cases[t][3], K = cases[t][4];
        size_t n = (size_t)N * H * W * C, nw = (size_t)C * K * K;
        float *in = randn(n, 1), *w = randn(nw, 0.3f), *b = randn((size_t)C, 1), *out = randn(n, 1), *wt = randn(nw, 1);
        double *want = malloc(sizeof(double) * n);
        dwconv2d_forward(out, in, w, b, wt, N, H, W, C, K);
        naive_dwconv(want, in, w, b, N, H, W, C, K);
        for (size_t i = 0; i < n; i++) ck_assert_msg(fabs(out[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])), "out[%zu]", i);
        // backward: dinp accumulates onto what it held, dweight and dbias accumulate
        float *R = randn(n, 1), *dinp = randn(n, 1), *dinp0 = malloc(sizeof(float) * n), *dw = calloc(nw, sizeof(float));
        float *db = calloc((size_t)C, sizeof(float));
        memcpy(dinp0, dinp, sizeof(float) * n);
        dwconv2d_backward(dinp, dw, db, R, in, w, wt, N, H, W, C, K);
        const float eps = 1e-2f;
        for (int k = 0; k < 30; k++) {
            float *x[3] = {in, w, b}, *g[3] = {dinp, dw, db};
            size_t sizes[3] = {n, nw, (size_t)C};
            for (int which = 0; which < 3; which++) {
                size_t i = (size_t)rng_below(&rng, (uint32_t)sizes[which]);
                float saved = x[which][i];
                x[which][i] = saved + eps;
                double up = dwconv_loss(in, w, b, R, N, H, W, C, K);
                x[which][i] = saved - eps;
                double down = dwconv_loss(in, w, b, R, N, H, W, C, K);
                x[which][i] = saved;
                double num = (up - down) / (2 * eps), got = g[which][i] - (which == 0 ? dinp0[i] : 0);
                ck_assert_msg(fabs(num - got) <= 1e-3 + 1e-3 * fabs(num), "case %zu grad %d[%zu]: %.6g vs numeric %.6g", t,
                              which, i, got, num);
            }
        }
        // the same bits with one thread (no reduction depends on the thread count)
        float *dinp1 = malloc(sizeof(float) * n), *dw1 = calloc(nw, sizeof(float)), *db1 = calloc((size_t)C, sizeof(float));
        memcpy(dinp1, dinp0, sizeof(float) * n);
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        dwconv2d_backward(dinp1, dw1, db1, R, in, w, wt, N, H, W, C, K);
        omp_set_num_threads(threads);
        ck_assert(memcmp(dinp1, dinp, sizeof(float) * n) == 0 && memcmp(dw1, dw, sizeof(float) * nw) == 0 &&
                  memcmp(db1, db, sizeof(float) * C) == 0);
        free(in), free(w), free(b), free(out), free(wt), free(want), free(R), free(dinp), free(dinp0), free(dw), free(db);
        free(dinp1), free(dw1), free(db1);
    }
}
END_TEST

START_TEST(convnext_patch_and_scale_kernels) {
    rng_init(&rng, 8, 0);
    int N = 2, H = 6, W = 4, C = 5, P = 2;
    size_t n = (size_t)N * H * W * C;
    float *in = randn(n, 1), *cols = randn(n, 1), *back = randn(n, 1);
    space_to_depth_forward(cols, in, N, H, W, C, P);
    // cols[n, oy, ox, (c P + ky) P + kx] = in[n, oy P + ky, ox P + kx, c]: as Conv2d's weight (OC, C, P, P) flattens
    for (int b = 0; b < N; b++)
        for (int oy = 0; oy < H / P; oy++)
            for (int ox = 0; ox < W / P; ox++)
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < P; ky++)
                        for (int kx = 0; kx < P; kx++)
                            ck_assert(cols[(((size_t)b * (H / P) + oy) * (W / P) + ox) * C * P * P + (c * P + ky) * P + kx] ==
                                      in[(((size_t)b * H + oy * P + ky) * W + ox * P + kx) * C + c]);
    space_to_depth_backward(back, cols, N, H, W, C, P);  // a permutation: the backward is its inverse
    ck_assert(memcmp(back, in, sizeof(float) * n) == 0);
    // layer scale: out = x + gamma y; dy = dout gamma; dgamma += sum dout y
    int R = 7;
    float *x = randn((size_t)R * C, 1), *y = randn((size_t)R * C, 1), *g = randn((size_t)C, 1), *out = randn((size_t)R * C, 1);
    float *dout = randn((size_t)R * C, 1), *dy = randn((size_t)R * C, 1), dg[5] = {1, 2, 3, 4, 5};
    layer_scale_forward(out, x, y, g, R, C);
    layer_scale_backward(dy, dg, dout, y, g, R, C);
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int r = 0; r < R; r++) {
            ck_assert(out[r * C + c] == x[r * C + c] + y[r * C + c] * g[c]);
            ck_assert(dy[r * C + c] == dout[r * C + c] * g[c]);
            s += (double)dout[r * C + c] * y[r * C + c];
        }
        ck_assert_msg(fabs(dg[c] - (c + 1) - s) <= 1e-5 * (1 + fabs(s)), "dgamma[%d]", c);
    }
    layer_scale_forward(x, x, y, g, R, C);  // in place
    ck_assert(memcmp(x, out, sizeof(float) * R * C) == 0);
    free(in), free(cols), free(back), free(x), free(y), free(g), free(out), free(dout), free(dy);
}
END_TEST

// ---- the tower against upstream

typedef struct {
    ConvNextActs a;
    float *memory;
} Tower;

static void tower_plan(Tower *t, const VisionConfig *v, int n, ConvNextMode mode, size_t chunk) {
    memset(t, 0, sizeof *t);
    Carve count = {NULL, 0};
    convnext_acts_carve(&t->a, &count, v, n, mode, chunk);
    t->memory = vlm_alloc_aligned(count.used * sizeof(float));
    ck_assert_ptr_nonnull(t->memory);
    Carve place = {t->memory, 0};
    convnext_acts_carve(&t->a, &place, v, n, mode, chunk);
}

static void tower_free(Tower *t) {
    convnext_acts_free(&t->a);
    vlm_free_aligned(t->memory);
}

START_TEST(convnext_matches_upstream) {
    names();
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("convnext/reference.safetensors")), VLM_OK);
    LlavaParams p;
    open_llava(&p, tower);
    const VisionConfig *v = &p.cfg.vision;
    static const int depths[4] = {1, 2, 1, 1}, dims[4] = {7, 12, 17, 20};
    ck_assert(v->kind == VISION_CONVNEXT && v->image_size == 64 && v->hidden == 20 && v->eps == 1e-5f);
    ck_assert(memcmp(v->depths, depths, sizeof depths) == 0 && memcmp(v->dims, dims, sizeof dims) == 0);
    ck_assert_int_eq(llava_feature_rows(&p.cfg), 4);
    ck_assert_str_eq(v->tower, tower);
    const TensorInfo *fi;
    const float *pixels = ref_tensor(&ref, "pixels", NULL), *want = ref_tensor(&ref, "features", &fi);
    const float *R = ref_tensor(&ref, "upstream_grad", NULL);
    size_t nf = (size_t)fi->numel;
    ck_assert_uint_eq(nf, 2 * 4 * 20);
    float *grad[2] = {NULL, NULL}, *first = malloc(sizeof(float) * nf);
    static const ConvNextMode modes[] = {CONVNEXT_TRAIN, CONVNEXT_RECOMPUTE, CONVNEXT_FROZEN, CONVNEXT_FROZEN};
    for (int k = 0; k < 4; k++) {
        Tower t;
        tower_plan(&t, v, 2, modes[k], k == 3 ? 100 : 0);  // the last: the MLP over chunks of a row or two
        convnext_forward(&t.a, v, &p.w, pixels, 2);
        const float *got = convnext_output(&t.a);
        double e = rel_err(got, want, nf);
        ck_assert_msg(e <= 1e-5, "mode %d: features differ by %g of their norm", k, e);
        if (k == 0) memcpy(first, got, sizeof(float) * nf);
        // chunked, the products run over fewer rows: OpenBLAS rounds some elements otherwise
        else if (k < 3) ck_assert_msg(memcmp(first, got, sizeof(float) * nf) == 0, "mode %d: other features than without it", k);
        else ck_assert_msg(rel_err(got, first, nf) <= 1e-6, "chunked: %g", rel_err(got, first, nf));
        if (modes[k] != CONVNEXT_FROZEN) {
            grad[k] = vlm_calloc(p.numel, sizeof(float));
            LlavaWeights g;
            memset(&g, 0, sizeof g);
            llava_weights_view(&p, grad[k], &g);
            float *dx = malloc(sizeof(float) * nf);
            memcpy(dx, R, sizeof(float) * nf);
            convnext_backward(&t.a, v, &p.w, &g, dx, 2);
            free(dx), free(g.vl), free(g.tl), free(g.al), free(g.cx.blk);
        }
        tower_free(&t);
    }
    // every trunk parameter's gradient (head.norm gets none, as upstream's)
    int n = 0, none = 0;
    for (int i = 0; i < p.n_specs; i++) {
        const ParamSpec *s = &p.specs[i];
        if (s->module != MODULE_VISION) continue;
        char key[200];
        snprintf(key, sizeof key, "grad.%s", s->name + strlen("vision_tower."));
        const float *g = grad[0] + s->offset;
        if (!s->reachable) {
            ck_assert_msg(safetensors_find(&ref, key) < 0, "%s got a gradient upstream", key);
            for (size_t j = 0; j < s->numel; j++) ck_assert(g[j] == 0);
            none++;
            continue;
        }
        double e = rel_err(g, ref_tensor(&ref, key, NULL), s->numel);
        ck_assert_msg(e <= 1e-4, "gradient of %s differs by %g of its norm", s->name, e);
        n++;
    }
    ck_assert_int_eq(n, 61);
    ck_assert_int_eq(none, 2);
    ck_assert_msg(memcmp(grad[0], grad[1], sizeof(float) * p.numel) == 0, "recomputing changes the gradients");
    free(grad[0]), free(grad[1]), free(first);
    llava_params_free(&p);
    safetensors_close(&ref);
}
END_TEST

// ---- the image processor

START_TEST(convnext_preprocess_matches_open_clip) {
    names();
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("convnext/reference.safetensors")), VLM_OK);
    LlavaParams p;
    open_llava(&p, tower);
    const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};  // the folder's preprocess_cfg
    for (int c = 0; c < 3; c++) ck_assert(p.cfg.vision.mean[c] == mean[c] && p.cfg.vision.std[c] == std[c]);
    static const char *const photos[] = {"211.jpg", "extreme_ironing.jpg", "rebecca_poster_small.jpeg", "llava_logo.png"};
    PreprocessScratch scratch = {0};
    float *out = malloc(sizeof(float) * 3 * 64 * 64);
    char path[1024], key[200];
    Preprocessor pre;
    for (int i = 0; i < 5; i++) {  // 4 photos at 47 (3 of them crop at an offset that rounds half to even), one padded
        preprocessor_open_clip(&pre, 47, p.cfg.vision.mean, p.cfg.vision.std);
        pre.pad = i == 4;
        const char *photo = photos[i == 4 ? 1 : i];
        snprintf(path, sizeof path, "%s/%s", PHOTOS, photo);
        snprintf(key, sizeof key, "pre.%s.47%s", photo, i == 4 ? ".pad" : "");
        ck_assert_msg(image_preprocess_file(path, &pre, out, &scratch, NULL, NULL) == VLM_OK, "%s", vlm_last_error());
        const float *want = ref_tensor(&ref, key, NULL);
        float worst = 0;
        for (int j = 0; j < 3 * 47 * 47; j++) worst = fmaxf(worst, fabsf(out[j] - want[j]));
        ck_assert_msg(worst == 0, "%s: differs from open_clip's by up to %g", key, worst);
        if (i == 0) {  // CLIPImageProcessor's floor would crop one column further left
            pre.crop_round = false;
            ck_assert_int_eq(image_preprocess_file(path, &pre, out, &scratch, NULL, NULL), VLM_OK);
            ck_assert(memcmp(out, want, sizeof(float) * 3 * 47 * 47) != 0);
        }
    }
    // the model's own processor (llava_preprocessor) at its 64: the two photos of the features' batch
    ck_assert_int_eq(llava_preprocessor(&pre, &p.cfg, fixture("model/tiny_gqa_llm"), false), VLM_OK);
    ck_assert(pre.crop_round && pre.crop_h == 64 && pre.shortest_edge == 64);
    const float *pixels = ref_tensor(&ref, "pixels", NULL);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", PHOTOS, photos[i]);
        ck_assert_int_eq(image_preprocess_file(path, &pre, out, &scratch, NULL, NULL), VLM_OK);
        ck_assert_msg(memcmp(out, pixels + (size_t)i * 3 * 64 * 64, sizeof(float) * 3 * 64 * 64) == 0, "%s", photos[i]);
    }
    preprocess_scratch_free(&scratch);
    free(out);
    llava_params_free(&p);
    safetensors_close(&ref);
}
END_TEST

// ---- the loader's errors

// dst: src's tensors without those under `drop` (a prefix; NULL: none) and with `swap`'s two
// dimensions exchanged (NULL: none)
static void copy_weights(const char *src, const char *dst, const char *drop, const char *swap) {
    SafetensorsFile f;
    ck_assert_int_eq(safetensors_open(&f, src), VLM_OK);
    TensorInfo *infos = calloc((size_t)f.count, sizeof *infos);
    const void **datas = calloc((size_t)f.count, sizeof *datas);
    int n = 0;
    for (int i = 0; i < f.count; i++) {
        if (drop && str_has_prefix(f.tensors[i].name, drop)) continue;
        infos[n] = f.tensors[i];
        if (swap && strcmp(infos[n].name, swap) == 0) {
            int64_t d = infos[n].shape[0];
            infos[n].shape[0] = infos[n].shape[1], infos[n].shape[1] = d;
        }
        datas[n++] = safetensors_tensor_data(&f, i);
    }
    ck_assert_int_eq(safetensors_write(dst, infos, datas, n, NULL), VLM_OK);
    free(infos), free(datas);
    safetensors_close(&f);
}

// dir/open_clip_model.safetensors: the fixture's, as copy_weights makes it
static void write_weights(const char *dir, const char *drop, const char *swap) {
    char src[700], dst[1200];
    snprintf(src, sizeof src, "%s/open_clip_model.safetensors", hub);
    snprintf(dst, sizeof dst, "%s/open_clip_model.safetensors", dir);
    copy_weights(src, dst, drop, swap);
}

// dir/open_clip_config.json: the fixture's, with timm_model_name set to timm (NULL: as it is)
static void write_config(const char *dir, const char *timm) {
    char src[700], dst[1200];
    snprintf(src, sizeof src, "%s/open_clip_config.json", hub);
    json_t *j = json_load_file(src, 0, NULL);
    ck_assert_ptr_nonnull(j);
    if (timm) json_object_set_new(json_object_get(json_object_get(j, "model_cfg"), "vision_cfg"), "timm_model_name", json_string(timm));
    snprintf(dst, sizeof dst, "%s/open_clip_config.json", dir);
    ck_assert_int_eq(json_dump_file(j, dst, JSON_INDENT(2)), 0);
    json_decref(j);
}

// opening dir-res64 fails with a message holding each of the words
static void fails_with(const char *dir, const char *suffix, const char *w1, const char *w2) {
    char name[1200], llm[1024];
    snprintf(name, sizeof name, "%s%s", dir, suffix);
    snprintf(llm, sizeof llm, "%s", fixture("model/tiny_gqa_llm"));
    LlavaOpenOptions o = {.vision_tower = name, .feature_layer = -2, .seed = 1};
    LlavaParams p;
    ck_assert_int_ne(llava_open(&p, llm, &o, NULL), VLM_OK);
    const char *e = vlm_last_error();
    ck_assert_msg(strstr(e, w1) && (!w2 || strstr(e, w2)), "%s: %s", name, e);
    vlm_clear_error();
}

START_TEST(convnext_loader_errors) {
    names();
    char dir[] = "/tmp/vlm-convnext-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    // the .bin alone (torch.save of the state dict): the same parameters as the safetensors
    char bin[1200], dst[1200];
    snprintf(bin, sizeof bin, "%s/open_clip_pytorch_model.bin", hub);
    snprintf(dst, sizeof dst, "%s/open_clip_pytorch_model.bin", dir);
    ck_assert_int_eq(file_copy_atomic(bin, dst), VLM_OK);
    write_config(dir, NULL);
    LlavaParams a, b;
    char name[1200];
    snprintf(name, sizeof name, "%s-res64", dir);
    open_llava(&a, name);
    open_llava(&b, tower);
    ck_assert(a.numel == b.numel);
    for (int i = 0; i < a.n_specs; i++)
        if (a.specs[i].module == MODULE_VISION)
            ck_assert(memcmp(a.data + a.specs[i].offset, b.data + b.specs[i].offset, sizeof(float) * a.specs[i].numel) == 0);
    llava_params_free(&a), llava_params_free(&b);
    unlink(dst);
    // a missing tensor, a mis-shaped one, a missing stage: each named
    write_weights(dir, "visual.trunk.stages.1.blocks.1.norm.bias", NULL);
    fails_with(dir, "-res64", "missing tensors (visual.trunk.stages.1.blocks.1.norm.bias)", "open_clip_model.safetensors");
    write_weights(dir, NULL, "visual.trunk.stages.2.blocks.0.mlp.fc1.weight");
    fails_with(dir, "-res64", "visual.trunk.stages.2.blocks.0.mlp.fc1.weight is [17, 68], expected [68, 17]", NULL);
    write_weights(dir, "visual.trunk.stages.3.blocks.", NULL);
    fails_with(dir, "-res64", "no ConvNeXt stage 3", "stages.3.blocks.0.conv_dw.weight");
    // an unknown timm model; no weights at all
    write_weights(dir, NULL, NULL);
    write_config(dir, "convnext_atto");
    fails_with(dir, "-res64", "'convnext_atto' is not supported", "timm_model_name");
    write_config(dir, NULL);
    snprintf(dst, sizeof dst, "%s/open_clip_model.safetensors", dir);
    unlink(dst);
    fails_with(dir, "-res64", "no open_clip weights", NULL);
    // names upstream's tower does not run
    fails_with(hub, "-res50", "multiple of 32", NULL);
    fails_with(hub, "-res64-interp16", "-interp16", "not supported");
    fails_with(hub, "-multi-stage-res64", "multi-stage", NULL);
    fails_with("/nonexistent/my-convnext", "-res64", "not an open_clip folder", NULL);
    fails_with("/nonexistent/CLIP-convnext_xxlarge-laion2B", "-res64", "no open_clip folder", NULL);
    remove_tree(dir);
}
END_TEST

// ---- as LLaVA's vision tower

// two samples, each an image placeholder among text (ids within the tiny LLM's 101)
static const int32_t IDS[2][8] = {{1, 5, IMAGE_TOKEN_INDEX, 7, 8, 9, 10, 11}, {1, IMAGE_TOKEN_INDEX, 12, 13, 14, 15, 0, 0}};
static const int LENGTHS[2] = {8, 6};

static double forward(LlavaModel *m, const float *pixels, float *logits) {
    int32_t labels[2][8];
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 8; t++) labels[b][t] = IDS[b][t] == IMAGE_TOKEN_INDEX || t < 2 ? IGNORE_INDEX : IDS[b][t];
    double loss;
    m->all_logits = logits != NULL;
    ck_assert_msg(llava_forward(m, &IDS[0][0], &labels[0][0], LENGTHS, 2, 8, pixels, 2, 0, &loss) == VLM_OK, "%s",
                  vlm_last_error());
    if (logits) {  // every row of the padded batch, the rest of the buffer zero
        memset(logits, 0, sizeof(float) * 2 * (8 + 4) * m->params.cfg.text.vocab);
        memcpy(logits, m->llm.logits, sizeof(float) * 2 * m->T * m->params.cfg.text.vocab);
    }
    return loss;
}

START_TEST(convnext_llava_parts_save_reopen) {
    names();
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("convnext/reference.safetensors")), VLM_OK);
    const float *pixels = ref_tensor(&ref, "pixels", NULL);
    LlavaParams p;
    open_llava(&p, tower);  // an LLM folder + the tower + a fresh projector (pretraining's start)
    int V = p.cfg.text.vocab, F = llava_image_tokens(&p.cfg);
    ck_assert_int_eq(F, 4);
    LlavaModel m;
    ck_assert_int_eq(llava_model_init(&m, &p, &(LlavaPlan){2, 2, 8, 8 + 2 * F, false, true}), VLM_OK);
    ck_assert(m.cnx.mode == CONVNEXT_FROZEN);
    m.trainable[MODULE_VISION] = false;
    size_t nl = (size_t)2 * (8 + F) * V;
    float *logits = malloc(sizeof(float) * nl), *again = malloc(sizeof(float) * nl);
    double loss = forward(&m, pixels, logits);
    ck_assert(isfinite(loss) && loss > 0);
    // the image rows are the tower's features through the projector: the same as the tower alone
    {
        Tower t;
        tower_plan(&t, &m.params.cfg.vision, 2, CONVNEXT_TRAIN, 0);
        convnext_forward(&t.a, &m.params.cfg.vision, &m.params.w, pixels, 2);
        ck_assert(memcmp(convnext_output(&t.a), m.feat, sizeof(float) * 2 * F * 20) == 0);
        tower_free(&t);
    }
    // a step with the tower frozen: the projector and the LLM get gradients, the tower none
    llava_zero_grad(&m);
    forward(&m, pixels, NULL);
    llava_backward(&m);
    double gp = 0, gv = 0;
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        for (size_t j = 0; j < s->numel; j++) {
            double g = m.grad[s->offset + j];
            if (s->module == MODULE_PROJECTOR) gp += g * g;
            if (s->module == MODULE_VISION) gv += g * g;
        }
    }
    ck_assert(gp > 0 && gv == 0);
    // saved as OLA-VLM saves it (original LLaVA layout) and opened back: the same logits
    char dir[] = "/tmp/vlm-convnext-llava-XXXXXX", path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(llava_save_hf(&m.params, dir), VLM_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "mm_vision_tower")), tower);
    ck_assert_str_eq(json_string_value(json_object_get(j, "model_type")), "llava_llama");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "mm_hidden_size")), 20);
    ck_assert_str_eq(json_string_value(json_object_get(j, "mm_projector_type")), "mlp2x_gelu");
    SafetensorsFile saved;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_int_eq(safetensors_open(&saved, path), VLM_OK);
    ck_assert(safetensors_find(&saved, "model.vision_tower.vision_tower.stages.2.blocks.0.conv_dw.weight") >= 0);
    ck_assert(safetensors_find(&saved, "model.vision_tower.vision_tower.head.norm.weight") >= 0);
    ck_assert(safetensors_find(&saved, "model.mm_projector.0.weight") >= 0);
    ck_assert(safetensors_find(&saved, "model.layers.1.mlp.down_proj.weight") >= 0);
    safetensors_close(&saved);
    LlavaParams q;
    ck_assert_msg(llava_load_hf(&q, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert(q.cfg.vision.kind == VISION_CONVNEXT && q.cfg.vision.mean[0] == 0.485);
    LlavaModel m2;
    ck_assert_int_eq(llava_model_init(&m2, &q, &(LlavaPlan){2, 2, 8, 8 + 2 * F, false, true}), VLM_OK);
    forward(&m2, pixels, again);
    ck_assert_msg(memcmp(logits, again, sizeof(float) * nl) == 0, "logits differ after save and reopen");
    llava_model_free(&m2);
    // a saved model without the tower's weights: read from mm_vision_tower's folder
    char moved[700];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(moved, sizeof moved, "%s/full.safetensors", dir);
    ck_assert_int_eq(rename(path, moved), 0);
    copy_weights(moved, path, "model.vision_tower.", NULL);
    ck_assert_msg(llava_load_hf(&q, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(llava_model_init(&m2, &q, &(LlavaPlan){2, 2, 8, 8 + 2 * F, false, true}), VLM_OK);
    forward(&m2, pixels, again);
    ck_assert_msg(memcmp(logits, again, sizeof(float) * nl) == 0, "logits differ with the tower from its folder");
    llava_model_free(&m2);
    ck_assert_int_eq(rename(moved, path), 0);
    // without the tower's folder (a name upstream maps, elsewhere): the saved vision weights alone
    json_object_set_new(j, "mm_vision_tower", json_string("/nonexistent/CLIP-convnext_xxlarge-laion2B-s34B-b82K-augreg-soup-res64"));
    snprintf(path, sizeof path, "%s/config.json", dir);
    ck_assert_int_eq(json_dump_file(j, path, JSON_INDENT(2)), 0);
    json_decref(j);
    ck_assert_msg(llava_load_hf(&q, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert(q.cfg.vision.mean[0] == 0.48145466 && q.cfg.vision.image_size == 64);  // OpenAI's, as the hub model's
    ck_assert_int_eq(llava_model_init(&m2, &q, &(LlavaPlan){2, 2, 8, 8 + 2 * F, false, true}), VLM_OK);
    forward(&m2, pixels, again);
    ck_assert_msg(memcmp(logits, again, sizeof(float) * nl) == 0, "logits differ reopened from the saved weights alone");
    llava_model_free(&m2);
    remove_tree(dir);
    // a trainable tower (planned for a backward): its gradients, the same recomputed
    float *g[2];
    for (int r = 0; r < 2; r++) {
        open_llava(&p, tower);
        ck_assert_int_eq(llava_model_init(&m2, &p, &(LlavaPlan){2, 2, 8, 8 + 2 * F, r == 1, false}), VLM_OK);
        ck_assert(m2.cnx.mode == (r ? CONVNEXT_RECOMPUTE : CONVNEXT_TRAIN));
        llava_zero_grad(&m2);
        forward(&m2, pixels, again);
        ck_assert(memcmp(logits, again, sizeof(float) * nl) == 0);
        llava_backward(&m2);
        g[r] = malloc(sizeof(float) * m2.params.numel);
        memcpy(g[r], m2.grad, sizeof(float) * m2.params.numel);
        double gv2 = 0;
        for (int i = 0; i < m2.params.n_specs; i++)
            if (m2.params.specs[i].module == MODULE_VISION)
                for (size_t k = 0; k < m2.params.specs[i].numel; k++) gv2 += (double)g[r][m2.params.specs[i].offset + k] * g[r][m2.params.specs[i].offset + k];
        ck_assert(gv2 > 0);
        if (r) ck_assert_msg(memcmp(g[0], g[1], sizeof(float) * m2.params.numel) == 0, "recomputing changes the gradients");
        llava_model_free(&m2);
    }
    free(g[0]), free(g[1]), free(logits), free(again);
    llava_model_free(&m);
    safetensors_close(&ref);
}
END_TEST

// Phi-3 (OLA-VLM's other LLM) beside the tower: saved as llava_phi3 and opened back
START_TEST(convnext_phi3_save_reopen) {
    names();
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("convnext/reference.safetensors")), VLM_OK);
    const float *pixels = ref_tensor(&ref, "pixels", NULL);
    char llm[1024], dir[] = "/tmp/vlm-convnext-phi3-XXXXXX", path[600];
    snprintf(llm, sizeof llm, "%s", fixture("phi3/tiny_phi3"));
    LlavaOpenOptions o = {.vision_tower = tower, .feature_layer = -2, .projector_type = PROJECTOR_LINEAR, .seed = 2};
    LlavaParams p, q;
    ck_assert_msg(llava_open(&p, llm, &o, NULL) == VLM_OK, "%s", vlm_last_error());
    ck_assert(p.cfg.text.fused_names && p.cfg.vision.kind == VISION_CONVNEXT);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(llava_save_hf(&p, dir), VLM_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "model_type")), "llava_phi3");
    ck_assert_str_eq(json_string_value(json_object_get(j, "mm_projector_type")), "linear");
    json_decref(j);
    ck_assert_msg(llava_load_hf(&q, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert(q.cfg.text.fused_names && q.cfg.text.sliding_window == p.cfg.text.sliding_window &&
              q.cfg.projector == PROJECTOR_LINEAR && q.numel == p.numel);
    ck_assert(memcmp(p.data, q.data, sizeof(float) * p.numel) == 0);
    LlavaModel m;
    int F = llava_image_tokens(&q.cfg);
    ck_assert_int_eq(llava_model_init(&m, &q, &(LlavaPlan){2, 2, 8, 8 + 2 * F, false, true}), VLM_OK);
    ck_assert(isfinite(forward(&m, pixels, NULL)));
    llava_model_free(&m);
    llava_params_free(&p);
    remove_tree(dir);
    safetensors_close(&ref);
}
END_TEST

// `vlm train` from an LLM folder and the tower (--vision_tower PATH-res64, frozen: LLaVA's
// default), its checkpoint and final model in the original layout, opened back
START_TEST(convnext_train_frozen_tower) {
    names();
    char dir[] = "/tmp/vlm-convnext-train-XXXXXX", args[4096], path[700];
    static char out[1 << 16], err[1 << 16];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    write_llm_folder(dir, "base", "llm", LLAMA2, "LlamaForCausalLM");
    snprintf(args, sizeof args,
             "--threads 2 train --model_name_or_path %s/llm --vision_tower %s --version v1 --data_path %s/data.json "
             "--image_folder %s --output_dir %s/out --per_device_train_batch_size 4 --gradient_accumulation_steps 1 "
             "--max_steps 2 --learning_rate 1e-3 --logging_steps 1 --save_steps 1 --model_max_length 64 "
             "--image_aspect_ratio pad",
             dir, tower, dir, PHOTOS, dir);
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%.3000s", strlen(err) > 3000 ? err + strlen(err) - 3000 : err);
    char losses[4][32];
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    ck_assert_int_eq(read_losses(path, losses, 4), 2);
    for (int i = 0; i < 2; i++) ck_assert_msg(isfinite(atof(losses[i])) && atof(losses[i]) > 0, "loss %s", losses[i]);
    static const char *const saved[] = {"out", "out/checkpoint-2"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, saved[i]);
        LlavaParams p;
        ck_assert_msg(llava_load_hf(&p, path) == VLM_OK, "%s: %s", saved[i], vlm_last_error());
        ck_assert(p.cfg.vision.kind == VISION_CONVNEXT && p.cfg.text.vocab == 32064);
        // the tower was frozen: its weights are the folder's
        LlavaParams t;
        open_llava(&t, tower);
        for (int a = 0, b = 0; a < p.n_specs; a++) {
            if (p.specs[a].module != MODULE_VISION) continue;
            while (strcmp(t.specs[b].name, p.specs[a].name)) b++;
            ck_assert(memcmp(p.data + p.specs[a].offset, t.data + t.specs[b].offset, sizeof(float) * p.specs[a].numel) == 0);
        }
        llava_params_free(&t), llava_params_free(&p);
    }
    // resumed from its first checkpoint (opened in the original layout): the same final model
    snprintf(args, sizeof args,
             "--threads 2 train --model_name_or_path %s/llm --vision_tower %s --version v1 --data_path %s/data.json "
             "--image_folder %s --output_dir %s/again --per_device_train_batch_size 4 --gradient_accumulation_steps 1 "
             "--max_steps 2 --learning_rate 1e-3 --logging_steps 1 --save_steps 1 --model_max_length 64 "
             "--image_aspect_ratio pad --resume %s/out/checkpoint-1",
             dir, tower, dir, PHOTOS, dir, dir);
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%.3000s", strlen(err) > 3000 ? err + strlen(err) - 3000 : err);
    SafetensorsFile a, b;
    snprintf(path, sizeof path, "%s/out/model.safetensors", dir);
    ck_assert_int_eq(safetensors_open(&a, path), VLM_OK);
    snprintf(path, sizeof path, "%s/again/model.safetensors", dir);
    ck_assert_int_eq(safetensors_open(&b, path), VLM_OK);
    ck_assert(a.count == b.count && a.data_size == b.data_size && memcmp(a.data, b.data, a.data_size) == 0);
    safetensors_close(&a), safetensors_close(&b);
    remove_tree(dir);
}
END_TEST

Suite *convnext_suite(void) {
    return SUITE("convnext", "", 60, convnext_dwconv_kernel, convnext_patch_and_scale_kernels, convnext_matches_upstream,
                 convnext_llava_parts_save_reopen, convnext_phi3_save_reopen, convnext_train_frozen_tower);
}

// open_clip's folder and config, its error paths and the image processor, also under ASan + UBSan (tag parser)
Suite *convnext_files_suite(void) {
    return SUITE("convnext_files", "parser", 60, convnext_preprocess_matches_open_clip, convnext_loader_errors);
}
