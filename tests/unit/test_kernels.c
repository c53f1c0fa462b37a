// Finite-difference gradient checks of every layer kernel: random inputs of
// odd shapes, loss = sum(out * R) for a random R (accumulated in double), each
// analytic gradient (backward with dout = R) against central differences.
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "kernels/activation.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_attention.h"
#include "kernels/crossentropy.h"
#include "kernels/distill_loss.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/patch_embed.h"
#include "kernels/pool.h"
#include "kernels/residual.h"
#include "kernels/rope.h"
#include "test_util.h"

static Rng rng;

// Every buffer a test allocates, freed together at its end.
static void *owned[128];
static int n_owned;

static float *own(float *p) {
    ck_assert(p && n_owned < 128);
    return owned[n_owned++] = p;
}

static void free_owned(void) {
    while (n_owned) free(owned[--n_owned]);
}

static float *randn(size_t n, float scale) {
    float *p = own(malloc(sizeof(float) * (n ? n : 1)));
    for (size_t i = 0; i < n; i++) p[i] = rng_normal(&rng) * scale;
    return p;
}

static float *zeros(size_t n) { return own(calloc(n ? n : 1, sizeof(float))); }

// The function under test: recomputes out (n_out) from the current inputs.
typedef struct {
    void (*forward)(void *ctx, float *out);
    void *ctx;
    float *out, *R;
    size_t n_out;
} Probe;

static double probe_loss(const Probe *p) {
    p->forward(p->ctx, p->out);
    double s = 0.0;
    for (size_t i = 0; i < p->n_out; i++) s += (double)p->out[i] * p->R[i];
    return s;
}

// Checks `grad` (analytic, n) of the input x against central differences at up to 40 indices.
static void check_grad(const char *what, const Probe *p, float *x, const float *grad, size_t n) {
    const float eps = 1e-2f;
    size_t step = n > 40 ? n / 40 : 1;
    for (size_t i = (size_t)rng_below(&rng, step); i < n; i += step) {
        float saved = x[i];
        x[i] = saved + eps;
        double up = probe_loss(p);
        x[i] = saved - eps;
        double down = probe_loss(p);
        x[i] = saved;
        double num = (up - down) / (2.0 * eps);
        ck_assert_msg(fabs(num - grad[i]) <= 3e-3 + 3e-3 * fabs(num), "%s[%zu]: analytic %.6g, numeric %.6g", what, i,
                      (double)grad[i], num);
    }
    probe_loss(p);
}

// ---- linear
typedef struct { float *inp, *w, *b; int N, C, OC; } LinearCtx;
static void linear_fn(void *c, float *out) {
    LinearCtx *x = c;
    linear_forward(out, x->inp, x->w, x->b, x->N, x->C, x->OC);
}

START_TEST(grad_linear) {
    rng_init(&rng, 1, 0);
    LinearCtx c = {randn(7 * 13, 1), randn(5 * 13, 0.3f), randn(5, 1), 7, 13, 5};
    Probe p = {linear_fn, &c, zeros(7 * 5), randn(7 * 5, 1), 7 * 5};
    float *dinp = randn(7 * 13, 1), *dw = zeros(5 * 13), *db = zeros(5);  // dinp written: its start is garbage
    linear_backward(dinp, dw, db, p.R, c.inp, c.w, 7, 13, 5);
    check_grad("linear dinp", &p, c.inp, dinp, 7 * 13);
    check_grad("linear dweight", &p, c.w, dw, 5 * 13);
    check_grad("linear dbias", &p, c.b, db, 5);
    // dinp is written (a second backward gives the same), the _acc variant adds the same again
    linear_backward(dinp, NULL, NULL, p.R, c.inp, c.w, 7, 13, 5);
    check_grad("linear dinp written", &p, c.inp, dinp, 7 * 13);
    linear_backward_acc(dinp, NULL, NULL, p.R, c.inp, c.w, 7, 13, 5);
    float *d1 = zeros(7 * 13);
    linear_backward(d1, NULL, NULL, p.R, c.inp, c.w, 7, 13, 5);
    for (int i = 0; i < 7 * 13; i++) ck_assert_float_eq_tol(dinp[i], 2 * d1[i], 1e-5);
    free_owned();
}
END_TEST

// ---- norms
typedef struct { float *inp, *w, *b, *mean, *rstd; int N, C; int rms; } NormCtx;
static void norm_fn(void *c, float *out) {
    NormCtx *x = c;
    if (x->rms) rmsnorm_forward(out, x->rstd, x->inp, x->w, NULL, x->N, x->C, 1e-6f);
    else layernorm_forward(out, x->mean, x->rstd, x->inp, x->w, x->b, x->N, x->C, 1e-5f);
}

START_TEST(grad_norms) {
    rng_init(&rng, 2, 0);
    for (int rms = 0; rms < 2; rms++) {
        int N = 6, C = 19;
        NormCtx c = {randn(N * C, 2), randn(C, 1), randn(C, 1), zeros(N), zeros(N), N, C, rms};
        Probe p = {norm_fn, &c, zeros(N * C), randn(N * C, 1), (size_t)N * C};
        probe_loss(&p);
        float *dinp = zeros(N * C), *dw = zeros(C), *db = zeros(C);
        if (rms) rmsnorm_backward(dinp, dw, p.R, c.inp, c.w, NULL, c.rstd, N, C);
        else layernorm_backward(dinp, dw, db, p.R, c.inp, c.w, c.mean, c.rstd, N, C);
        check_grad(rms ? "rmsnorm dinp" : "layernorm dinp", &p, c.inp, dinp, N * C);
        check_grad(rms ? "rmsnorm dweight" : "layernorm dweight", &p, c.w, dw, C);
        if (!rms) check_grad("layernorm dbias", &p, c.b, db, C);
    }
    free_owned();
}
END_TEST

// ---- activations
typedef struct { float *a, *b; size_t n; int kind; } ActCtx;
static void act_fn(void *c, float *out) {
    ActCtx *x = c;
    if (x->kind == 0) quick_gelu_forward(out, x->a, x->n);
    else if (x->kind == 1) gelu_forward(out, x->a, x->n);
    else if (x->kind == 3) relu_forward(out, x->a, x->n);
    else swiglu_forward(out, x->a, 7, 13);  // a (7, 26): each row gate, up
}

START_TEST(grad_activations) {
    rng_init(&rng, 3, 0);
    for (int kind = 0; kind < 4; kind++) {
        size_t n = kind != 2 ? 101 : 7 * 13, n_in = kind != 2 ? n : 2 * n;
        ActCtx c = {randn(n_in, 2), NULL, n, kind};
        if (kind == 3)  // relu: keep the inputs away from the kink the differences would straddle
            for (size_t i = 0; i < n; i++) c.a[i] += c.a[i] < 0 ? -0.05f : 0.05f;
        Probe p = {act_fn, &c, zeros(n), randn(n, 1), n};
        float *da = randn(n_in, 1);  // written, whatever it held
        if (kind == 0) quick_gelu_backward(da, p.R, c.a, n);
        else if (kind == 1) gelu_backward(da, p.R, c.a, n);
        else if (kind == 3) relu_backward(da, p.R, c.a, n);
        else swiglu_backward(da, p.R, c.a, 7, 13);
        static const char *const names[] = {"quick_gelu", "gelu", "swiglu gate and up", "relu"};
        check_grad(names[kind], &p, c.a, da, n_in);
    }
    float gu[2] = {0.5f, 3.0f}, y0;  // silu(0.5) * 3
    swiglu_forward(&y0, gu, 1, 1);
    ck_assert_float_eq_tol(y0, 0.5 / (1 + exp(-0.5)) * 3, 1e-6);
    // values against the definitions
    float x = 0.7f, y;
    gelu_forward(&y, &x, 1);
    ck_assert_float_eq_tol(y, 0.5 * 0.7 * (1 + erf(0.7 / sqrt(2.0))), 1e-7);
    quick_gelu_forward(&y, &x, 1);
    ck_assert_float_eq_tol(y, 0.7 / (1 + exp(-1.702 * 0.7)), 1e-7);
    free_owned();
}
END_TEST

// ---- rope
typedef struct { float *x, *work, *cos_t, *sin_t; int B, T, NH, HS; } RopeCtx;
static void rope_fn(void *c, float *out) {
    RopeCtx *r = c;
    size_t n = (size_t)r->B * r->T * (r->NH + 1) * r->HS;
    memcpy(out, r->x, sizeof(float) * n);
    rope_forward(out, r->cos_t, r->sin_t, r->B, r->T, r->NH, r->HS, (r->NH + 1) * r->HS);  // the last head left as is
}

START_TEST(grad_rope) {
    rng_init(&rng, 4, 0);
    int B = 2, T = 5, NH = 3, HS = 8;
    size_t n = (size_t)B * T * (NH + 1) * HS;  // rows of NH rotated heads and one more
    RopeConfig cfg = {10000.0f, 0, 0, 0, 0};
    float inv[4], cos_t[5 * 4], sin_t[5 * 4];
    rope_inv_freq(inv, HS, &cfg);
    rope_tables(cos_t, sin_t, inv, T, HS);
    RopeCtx c = {randn(n, 1), NULL, cos_t, sin_t, B, T, NH, HS};
    Probe p = {rope_fn, &c, zeros(n), randn(n, 1), n};
    float *d = zeros(n);
    memcpy(d, p.R, sizeof(float) * n);
    rope_backward(d, cos_t, sin_t, B, T, NH, HS, (NH + 1) * HS);
    check_grad("rope", &p, c.x, d, n);
    ck_assert_float_eq_tol(inv[1], 1.0f / powf(10000.0f, 2.0f / 8.0f), 1e-9);
    // Llama-3.1 scaling: long wavelengths divided by the factor, short ones kept
    RopeConfig l31 = {500000.0f, 8.0f, 1.0f, 4.0f, 8192};
    float plain[64], scaled[64];
    RopeConfig l3 = {500000.0f, 0, 0, 0, 0};
    rope_inv_freq(plain, 128, &l3);
    rope_inv_freq(scaled, 128, &l31);
    ck_assert_float_eq(scaled[0], plain[0]);
    ck_assert_float_eq_tol(scaled[63], plain[63] / 8.0f, 1e-12);
    free_owned();
}
END_TEST

// ---- attention
typedef struct { float *q, *k, *v, *lse, *scratch; int *lengths; int ld, B, T, NH, NKV, HS, causal; } AttCtx;
static void att_fn(void *c, float *out) {
    AttCtx *a = c;
    attention_forward(out, a->lse, a->q, a->k, a->v, a->ld, a->lengths, a->B, a->T, a->NH, a->NKV, a->HS, a->causal,
                      a->scratch);
}

START_TEST(grad_attention) {
    rng_init(&rng, 5, 0);
    // cases: bidirectional on separate q, k, v; causal with padding and grouped-query heads on one packed q|k|v
    // buffer; then the same at T = 70 (more than one block of query rows, the last one partly padded; the
    // bidirectional one padded too); then the causal ones within a sliding window of 4 keys (Phi-3's)
    for (int cs = 0; cs < 6; cs++) {
        int B = 2, T = cs < 2 || cs == 4 ? 7 : 70, NH = 4, causal = cs >= 4 ? 4 : cs % 2, NKV = causal ? 2 : 4, HS = 5;
        int lengths[2] = {T, T - 3}, ld = causal ? (NH + 2 * NKV) * HS : NH * HS;
        size_t nq = (size_t)B * T * NH * HS, n = causal ? (size_t)B * T * ld : 3 * nq;  // all of q, k, v
        float *qkv = randn(n, 1), *dqkv = zeros(n);
        size_t ko = causal ? (size_t)NH * HS : nq, vo = causal ? (size_t)(NH + NKV) * HS : 2 * nq;
        AttCtx c = {qkv, qkv + ko, qkv + vo, zeros(attention_state_floats(B, NH, T)),
                    zeros(attention_scratch_floats(T)), cs ? lengths : NULL, ld, B, T, NH, NKV, HS, causal};
        Probe p = {att_fn, &c, zeros(nq), randn(nq, 1), nq};
        probe_loss(&p);
        attention_backward(dqkv, dqkv + ko, dqkv + vo, p.R, p.out, c.lse, c.q, c.k, c.v, ld, c.lengths, B, T, NH, NKV,
                           HS, causal, c.scratch);
        check_grad("attention dq, dk, dv", &p, qkv, dqkv, n);
        if (cs == 4) {  // the window: query 6 sees keys 3..6 only; key 2 changed, its output is the same
            float *before = zeros(nq), *after = zeros(nq);
            att_fn(&c, before);
            for (int i = 0; i < NKV * HS; i++) c.k[(size_t)2 * ld + i] += 1.0f, c.v[(size_t)2 * ld + i] += 1.0f;
            att_fn(&c, after);
            for (int i = 0; i < NH * HS; i++) ck_assert_float_eq(before[(size_t)6 * NH * HS + i], after[(size_t)6 * NH * HS + i]);
            float moved = 0;
            for (int i = 0; i < NH * HS; i++) moved += fabsf(before[(size_t)5 * NH * HS + i] - after[(size_t)5 * NH * HS + i]);
            ck_assert_msg(moved > 0, "query 5 sees key 2 (5 - 4 + 1 = 2)");
        }
        if (cs == 1) {
            // masked keys: the padded sample's keys 4..6 get no gradient, the first token sees only itself
            for (int t = 4; t < 7; t++)
                for (int i = 0; i < NKV * HS; i++) ck_assert_float_eq(dqkv[((size_t)1 * T + t) * ld + ko + i], 0.0f);
            // the first token's row is its one score: lse = scale * q0 . k0
            float s = 0.0f;
            for (int i = 0; i < HS; i++) s += c.q[i] * c.k[i];
            ck_assert_float_eq_tol(c.lse[0], s / sqrtf((float)HS), 1e-5f);
        }
    }
    free_owned();
}
END_TEST

// ---- embedding, splice, patch embedding
typedef struct { float *table, *text, *image, *cols, *w; int32_t *ids, *src; int N, V, C, kind; } EmbCtx;
static void emb_fn(void *c, float *out) {
    EmbCtx *e = c;
    if (e->kind == 0) embedding_forward(out, e->ids, e->table, e->N, e->C);
    else if (e->kind == 1) splice_forward(out, e->src, e->text, e->image, e->N, e->C);
    else patch_embed_forward(out, e->cols, e->w, 2, 4, 2, e->C);
}

START_TEST(grad_embeddings) {
    rng_init(&rng, 6, 0);
    int32_t ids[6] = {3, 0, 3, 9, 4, 3};
    EmbCtx c = {randn(10 * 7, 1), NULL, NULL, NULL, NULL, ids, NULL, 6, 10, 7, 0};
    Probe p = {emb_fn, &c, zeros(6 * 7), randn(6 * 7, 1), 6 * 7};
    float *dt = zeros(10 * 7);
    embedding_backward(dt, p.R, ids, 6, 10, 7);
    check_grad("embedding", &p, c.table, dt, 10 * 7);
    // splice: text rows 0..3, image rows 0..2, one zero row
    int32_t src[8] = {0, -1, -2, -3, 1, 2, 3, SPLICE_ZERO};
    EmbCtx s = {NULL, randn(4 * 7, 1), randn(3 * 7, 1), NULL, NULL, NULL, src, 8, 0, 7, 1};
    Probe ps = {emb_fn, &s, zeros(8 * 7), randn(8 * 7, 1), 8 * 7};
    float *dtext = randn(4 * 7, 1), *dimg = randn(3 * 7, 1);  // written, whatever they held
    splice_backward(dtext, dimg, ps.R, src, 8, 7, 4, 3);
    check_grad("splice text", &ps, s.text, dtext, 4 * 7);
    check_grad("splice image", &ps, s.image, dimg, 3 * 7);
    // patch embedding: 2 images 3x4x4, P = 2 -> 4 patches each, C = 7
    float *pixels = randn(2 * 3 * 16, 1), *cols = zeros(2 * 4 * 12);
    patch_im2col(cols, pixels, 2, 4, 2);
    ck_assert_float_eq(cols[12 + 1], pixels[2 + 1]);            // image 0, patch 1, (c0, ky0, kx1) = pixel (0, 0, 3)
    ck_assert_float_eq(cols[12 * 4 + 4], pixels[48 + 16]);      // image 1, patch 0, (c1, ky0, kx0)
    EmbCtx pe = {NULL, NULL, NULL, cols, randn(7 * 12, 0.5f), NULL, NULL, 8, 0, 7, 2};
    Probe pp = {emb_fn, &pe, zeros(8 * 7), randn(8 * 7, 1), 8 * 7};
    float *dw = zeros(7 * 12);
    patch_embed_backward(dw, pp.R, cols, 2, 4, 2, 7);
    check_grad("patch embedding", &pp, pe.w, dw, 7 * 12);
    free_owned();
}
END_TEST

// ---- cross-entropy: loss = sum / count, gradient of the mean
typedef struct { float *logits; int32_t *targets; int N, V; } CeCtx;
static void ce_fn(void *c, float *out) {
    CeCtx *e = c;
    long count;
    float lse[16];
    out[0] = (float)(crossentropy_forward(e->logits, e->targets, e->N, e->V, &count, lse) / count);
}

START_TEST(grad_crossentropy) {
    rng_init(&rng, 7, 0);
    int32_t targets[5] = {2, -100, 10, 0, -100};
    CeCtx c = {randn(5 * 11, 2), targets, 5, 11};
    float R = 1.0f, out;
    Probe p = {ce_fn, &c, &out, &R, 1};
    float *d = zeros(5 * 11), lse[5];
    long count;
    crossentropy_forward(c.logits, targets, 5, 11, &count, lse);
    ck_assert_int_eq(count, 3);
    crossentropy_backward(d, c.logits, targets, lse, 5, 11, 1.0f / 3);
    check_grad("crossentropy", &p, c.logits, d, 5 * 11);
    for (int i = 0; i < 11; i++) ck_assert_float_eq(d[11 + i], 0.0f);  // ignored rows
    // the value: -log softmax at the target, averaged over the 3 used rows
    double want = 0;
    for (int n = 0; n < 5; n++) {
        if (targets[n] < 0) continue;
        double s = 0;
        for (int i = 0; i < 11; i++) s += exp(c.logits[n * 11 + i]);
        want += log(s) - c.logits[n * 11 + targets[n]];
    }
    ce_fn(&c, &out);
    ck_assert_double_eq_tol(out, want / 3, 1e-5);
    free_owned();
}
END_TEST

// Llama-3.1's "llama3" rope scaling against transformers 4.44.2 (tools/make_rope_fixtures.sh;
// 4.37.2 predates it): every inverse frequency bit for bit.
START_TEST(rope_llama3_matches_transformers) {
    json_t *ref = fixture_json("model/rope_llama3.json");
    json_t *cases = json_object_get(ref, "cases");
    ck_assert_int_ge((int)json_array_size(cases), 4);
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *c = json_array_get(cases, k);
        RopeConfig cfg = {.theta = (float)json_number_value(json_object_get(c, "theta")),
                          .factor = (float)json_number_value(json_object_get(c, "factor")),
                          .low_freq_factor = (float)json_number_value(json_object_get(c, "low_freq_factor")),
                          .high_freq_factor = (float)json_number_value(json_object_get(c, "high_freq_factor")),
                          .original_max_position = (int)json_integer_value(json_object_get(c, "original_max_position_embeddings"))};
        int HS = (int)json_integer_value(json_object_get(c, "head_size"));
        json_t *want = json_object_get(c, "inv_freq");
        ck_assert_int_eq((int)json_array_size(want), HS / 2);
        float inv[128];
        rope_inv_freq(inv, HS, &cfg);
        for (int i = 0; i < HS / 2; i++) {
            float w = (float)json_number_value(json_array_get(want, (size_t)i));
            ck_assert_msg(inv[i] == w, "case %zu inv_freq[%d]: %.9g, transformers %.9g", k,
                          i, inv[i], w);
        }
    }
    json_decref(ref);
}
END_TEST

// ---- cross-attention (OLA-VLM's resampler): NQ queries over NK keys, q and k|v in separate buffers
typedef struct { float *q, *kv, *lse, *scratch; int NQ, NK, NH, HS; } XattCtx;
static void xatt_fn(void *c, float *out) {
    XattCtx *a = c;
    int A = a->NH * a->HS;
    cross_attention_forward(out, a->lse, a->q, A, a->kv, a->kv + A, 2 * A, a->NQ, a->NK, a->NH, a->HS, 0.5f,
                            a->scratch);
}

START_TEST(grad_cross_attention) {
    rng_init(&rng, 11, 0);
    int NQ = 3, NK = 9, NH = 2, HS = 4, A = NH * HS;
    XattCtx c = {randn((size_t)NQ * A, 1), randn((size_t)NK * 2 * A, 1), zeros(cross_attention_state_floats(NQ, NH)),
                 zeros(cross_attention_scratch_floats(NQ, NK)), NQ, NK, NH, HS};
    Probe p = {xatt_fn, &c, zeros((size_t)NQ * A), randn((size_t)NQ * A, 1), (size_t)NQ * A};
    probe_loss(&p);
    float *dq = zeros((size_t)NQ * A), *dkv = zeros((size_t)NK * 2 * A);
    cross_attention_backward(dq, dkv, dkv + A, p.R, p.out, c.lse, c.q, A, c.kv, c.kv + A, 2 * A, NQ, NK, NH, HS, 0.5f,
                             c.scratch);
    check_grad("cross-attention dq", &p, c.q, dq, (size_t)NQ * A);
    check_grad("cross-attention dk, dv", &p, c.kv, dkv, (size_t)NK * 2 * A);
    free_owned();
}
END_TEST

// ---- attention against the stored-probabilities math, and the same bytes for any thread count
// One attention case: the projections (packed q|k|v when causal, as the LLM's; separate when not, as the
// ViT's), the output's gradient and a garbage start for the gradients, which the backward writes.
typedef struct {
    int B, T, NH, NKV, HS, causal, ld;
    const int *lengths;
    size_t n, ko, vo, nq;  // floats of q|k|v (all three), offsets of k and v, floats of out
    float *qkv, *dout, *dqkv0;
} AttCase;

static AttCase att_case(int B, int T, int NH, int NKV, int HS, int causal, const int *lengths) {
    AttCase a = {B, T, NH, NKV, HS, causal, causal ? (NH + 2 * NKV) * HS : NH * HS, lengths, 0, 0, 0, 0, 0, 0, 0};
    a.nq = (size_t)B * T * NH * HS;
    a.n = causal ? (size_t)B * T * a.ld : 3 * a.nq;
    a.ko = causal ? (size_t)NH * HS : a.nq, a.vo = causal ? (size_t)(NH + NKV) * HS : 2 * a.nq;
    a.qkv = randn(a.n, 1), a.dout = randn(a.nq, 1), a.dqkv0 = randn(a.n, 0.1f);
    return a;
}

// forward + backward with the kernels -> out (nq), lse (B*NH*T), dqkv (n, from dqkv0)
static void att_run(const AttCase *a, float *out, float *lse, float *dqkv) {
    float *scratch = malloc(sizeof(float) * attention_scratch_floats(a->T));
    ck_assert(scratch);
    const float *q = a->qkv, *k = a->qkv + a->ko, *v = a->qkv + a->vo;
    attention_forward(out, lse, q, k, v, a->ld, a->lengths, a->B, a->T, a->NH, a->NKV, a->HS, a->causal, scratch);
    memcpy(dqkv, a->dqkv0, sizeof(float) * a->n);
    attention_backward(dqkv, dqkv + a->ko, dqkv + a->vo, a->dout, out, lse, q, k, v, a->ld, a->lengths, a->B, a->T,
                       a->NH, a->NKV, a->HS, a->causal, scratch);
    free(scratch);
}

// The old kernel's math, plainly and in double: the whole probability matrix of each (sample, head), out = P v,
// dv = P^T dout, dP = dout v^T, dS = P (dP - rowsum(P dP)) scale, dq = dS k, dk = dS^T q.
static void att_reference(const AttCase *a, double *out, double *lse, double *dqkv) {
    int T = a->T, HS = a->HS, ld = a->ld, ldo = a->NH * HS;
    double scale = 1.0 / sqrt((double)HS), *P = malloc(sizeof(double) * T * T), *dP = malloc(sizeof(double) * T * T);
    ck_assert(P && dP);
    for (size_t i = 0; i < a->n; i++) dqkv[i] = 0.0;  // written: whatever the buffer held is gone
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->NH; h++) {
            int kv = h / (a->NH / a->NKV), len = a->lengths ? a->lengths[b] : T;
            const float *q = a->qkv + (size_t)b * T * ld + h * HS, *k = a->qkv + a->ko + (size_t)b * T * ld + kv * HS;
            const float *v = a->qkv + a->vo + (size_t)b * T * ld + kv * HS, *dout = a->dout + (size_t)b * T * ldo + h * HS;
            double *dq = dqkv + (size_t)b * T * ld + h * HS, *dk = dqkv + a->ko + (size_t)b * T * ld + kv * HS;
            double *dv = dqkv + a->vo + (size_t)b * T * ld + kv * HS, *o = out + (size_t)b * T * ldo + h * HS;
            for (int i = 0; i < T; i++) {
                int n = a->causal ? i + 1 : T;
                n = n < len ? n : len;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    double sc = 0;
                    for (int c = 0; c < HS; c++) sc += (double)q[(size_t)i * ld + c] * k[(size_t)j * ld + c];
                    P[i * T + j] = j < n ? sc * scale : -INFINITY;
                    mx = fmax(mx, P[i * T + j]);
                }
                for (int j = 0; j < T; j++) sum += P[i * T + j] = j < n ? exp(P[i * T + j] - mx) : 0.0;
                for (int j = 0; j < T; j++) P[i * T + j] = n ? P[i * T + j] / sum : 0.0;
                lse[((size_t)b * a->NH + h) * T + i] = n ? mx + log(sum) : INFINITY;
                for (int c = 0; c < HS; c++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++) acc += P[i * T + j] * v[(size_t)j * ld + c];
                    o[(size_t)i * ldo + c] = acc;
                }
            }
            for (int i = 0; i < T; i++) {
                double dot = 0;
                for (int j = 0; j < T; j++) {
                    double d = 0;
                    for (int c = 0; c < HS; c++) d += (double)dout[(size_t)i * ldo + c] * v[(size_t)j * ld + c];
                    dP[i * T + j] = d, dot += P[i * T + j] * d;
                }
                for (int j = 0; j < T; j++) dP[i * T + j] = P[i * T + j] * (dP[i * T + j] - dot) * scale;  // dS
            }
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                    for (int c = 0; c < HS; c++) {
                        dv[(size_t)j * ld + c] += P[i * T + j] * dout[(size_t)i * ldo + c];
                        dq[(size_t)i * ld + c] += dP[i * T + j] * k[(size_t)j * ld + c];
                        dk[(size_t)j * ld + c] += dP[i * T + j] * q[(size_t)i * ld + c];
                    }
        }
    free(P), free(dP);
}

static void check_close(const char *what, const float *got, const double *want, size_t n, double tol) {
    for (size_t i = 0; i < n; i++) {
        if (isinf(want[i])) {
            ck_assert_msg(isinf(got[i]) && got[i] > 0, "%s[%zu]: %g, want +inf", what, i, (double)got[i]);
            continue;
        }
        ck_assert_msg(fabs(got[i] - want[i]) <= tol + tol * fabs(want[i]), "%s[%zu]: %.8g, want %.8g", what, i,
                      (double)got[i], want[i]);
    }
}

START_TEST(attention_matches_reference) {
    rng_init(&rng, 17, 0);
    // T = 130: three blocks of query rows, the last of 2; causal GQA with one sample padded (its padded rows see its
    // 97 real keys) and one of length 0 (no key: out 0, no gradient); bidirectional padded and not
    int causal_len[3] = {130, 97, 0}, vit_len[2] = {130, 70};
    AttCase cases[3] = {att_case(3, 130, 4, 2, 8, 1, causal_len), att_case(2, 130, 3, 3, 8, 0, vit_len),
                        att_case(2, 70, 2, 2, 8, 0, NULL)};
    for (int cs = 0; cs < 3; cs++) {
        const AttCase *a = &cases[cs];
        size_t nl = attention_state_floats(a->B, a->NH, a->T);
        float *out = zeros(a->nq), *lse = zeros(nl), *dqkv = zeros(a->n);
        double *rout = malloc(sizeof(double) * a->nq), *rlse = malloc(sizeof(double) * nl);
        double *rd = malloc(sizeof(double) * a->n);
        ck_assert(rout && rlse && rd);
        att_run(a, out, lse, dqkv);
        att_reference(a, rout, rlse, rd);
        check_close("attention out", out, rout, a->nq, 1e-5);
        check_close("attention lse", lse, rlse, nl, 1e-5);
        check_close("attention dq, dk, dv", dqkv, rd, a->n, 1e-4);
        if (cs == 0) {  // the empty sample (the last): out exactly 0, its gradients exactly 0
            for (size_t i = 2 * (size_t)a->T * a->ld; i < a->n; i++) ck_assert_float_eq(dqkv[i], 0.0f);
            for (size_t i = 2 * (size_t)a->T * a->NH * a->HS; i < a->nq; i++) ck_assert_float_eq(out[i], 0.0f);
        }
        free(rout), free(rlse), free(rd);
    }
    free_owned();
}
END_TEST

typedef struct {
    int NQ, NK, NH, HS;
    float scale, *q, *kv, *dout, *dq0, *dkv0;
} XattCase;

static void xatt_run(const XattCase *x, float *out, float *lse, float *dq, float *dkv) {
    int A = x->NH * x->HS;
    float *scratch = malloc(sizeof(float) * cross_attention_scratch_floats(x->NQ, x->NK));
    ck_assert(scratch);
    cross_attention_forward(out, lse, x->q, A, x->kv, x->kv + A, 2 * A, x->NQ, x->NK, x->NH, x->HS, x->scale, scratch);
    memcpy(dq, x->dq0, sizeof(float) * x->NQ * A), memcpy(dkv, x->dkv0, sizeof(float) * x->NK * 2 * A);
    cross_attention_backward(dq, dkv, dkv + A, x->dout, out, lse, x->q, A, x->kv, x->kv + A, 2 * A, x->NQ, x->NK, x->NH,
                             x->HS, x->scale, scratch);
    free(scratch);
}

START_TEST(cross_attention_matches_reference) {
    rng_init(&rng, 19, 0);
    // NQ = 70: two blocks of query rows, the last of 6
    int NQ = 70, NK = 150, NH = 3, HS = 8, A = NH * HS;
    XattCase x = {NQ, NK, NH, HS, 0.3f, randn((size_t)NQ * A, 1), randn((size_t)NK * 2 * A, 1),
                  randn((size_t)NQ * A, 1), randn((size_t)NQ * A, 0.1f), randn((size_t)NK * 2 * A, 0.1f)};
    float *out = zeros((size_t)NQ * A), *lse = zeros(cross_attention_state_floats(NQ, NH));
    float *dq = zeros((size_t)NQ * A), *dkv = zeros((size_t)NK * 2 * A);
    xatt_run(&x, out, lse, dq, dkv);
    double *ro = calloc((size_t)NQ * A, sizeof(double)), *rl = calloc((size_t)NQ * NH, sizeof(double));
    double *rdq = calloc((size_t)NQ * A, sizeof(double)), *rdkv = calloc((size_t)NK * 2 * A, sizeof(double));
    double *P = malloc(sizeof(double) * NQ * NK), *dS = malloc(sizeof(double) * NQ * NK);
    ck_assert(ro && rl && rdq && rdkv && P && dS);
    // the backward writes dq and dkv: the reference starts from 0 (calloc), the kernel from garbage (dq0, dkv0)
    for (int h = 0; h < NH; h++) {
        const float *q = x.q + h * HS, *k = x.kv + h * HS, *v = x.kv + A + h * HS, *dout = x.dout + h * HS;
        for (int i = 0; i < NQ; i++) {
            double mx = -INFINITY, sum = 0, dot = 0;
            for (int j = 0; j < NK; j++) {
                double sc = 0;
                for (int c = 0; c < HS; c++) sc += (double)q[i * A + c] * k[j * 2 * A + c];
                mx = fmax(mx, P[i * NK + j] = sc * x.scale);
            }
            for (int j = 0; j < NK; j++) sum += P[i * NK + j] = exp(P[i * NK + j] - mx);
            rl[h * NQ + i] = mx + log(sum);
            for (int j = 0; j < NK; j++) {
                P[i * NK + j] /= sum;
                double d = 0;
                for (int c = 0; c < HS; c++) {
                    ro[i * A + h * HS + c] += P[i * NK + j] * v[j * 2 * A + c];
                    d += (double)dout[i * A + c] * v[j * 2 * A + c];
                }
                dS[i * NK + j] = d, dot += P[i * NK + j] * d;
            }
            for (int j = 0; j < NK; j++) dS[i * NK + j] = P[i * NK + j] * (dS[i * NK + j] - dot) * x.scale;
        }
        for (int i = 0; i < NQ; i++)
            for (int j = 0; j < NK; j++)
                for (int c = 0; c < HS; c++) {
                    rdkv[j * 2 * A + A + h * HS + c] += P[i * NK + j] * dout[i * A + c];
                    rdq[i * A + h * HS + c] += dS[i * NK + j] * k[j * 2 * A + c];
                    rdkv[j * 2 * A + h * HS + c] += dS[i * NK + j] * q[i * A + c];
                }
    }
    check_close("cross-attention out", out, ro, (size_t)NQ * A, 1e-5);
    check_close("cross-attention lse", lse, rl, (size_t)NQ * NH, 1e-5);
    check_close("cross-attention dq", dq, rdq, (size_t)NQ * A, 1e-4);
    check_close("cross-attention dk, dv", dkv, rdkv, (size_t)NK * 2 * A, 1e-4);
    free(ro), free(rl), free(rdq), free(rdkv), free(P), free(dS);
    free_owned();
}
END_TEST

// The bytes of every output with 1 thread, then 2 and 3 (scratch sized after each change, as the callers do).
START_TEST(attention_same_bytes_any_threads) {
    rng_init(&rng, 23, 0);
    int saved = omp_get_max_threads();
    int causal_len[3] = {130, 97, 40}, vit_len[2] = {197, 150};
    AttCase cases[2] = {att_case(3, 130, 4, 2, 8, 1, causal_len), att_case(2, 197, 3, 3, 8, 0, vit_len)};
    for (int cs = 0; cs < 2; cs++) {
        const AttCase *a = &cases[cs];
        size_t nl = attention_state_floats(a->B, a->NH, a->T);
        float *out1 = zeros(a->nq), *lse1 = zeros(nl), *d1 = zeros(a->n);
        float *out = zeros(a->nq), *lse = zeros(nl), *d = zeros(a->n);
        threads_set(1);
        att_run(a, out1, lse1, d1);
        for (int th = 2; th <= 3; th++) {
            threads_set(th);
            att_run(a, out, lse, d);
            ck_assert_msg(!memcmp(out, out1, sizeof(float) * a->nq), "attention out differs with %d threads", th);
            ck_assert_msg(!memcmp(lse, lse1, sizeof(float) * nl), "attention lse differs with %d threads", th);
            ck_assert_msg(!memcmp(d, d1, sizeof(float) * a->n), "attention dq, dk, dv differ with %d threads", th);
        }
    }
    int NQ = 70, NK = 150, NH = 5, HS = 8, A = NH * HS;
    XattCase x = {NQ, NK, NH, HS, 0.3f, randn((size_t)NQ * A, 1), randn((size_t)NK * 2 * A, 1),
                  randn((size_t)NQ * A, 1), randn((size_t)NQ * A, 0.1f), randn((size_t)NK * 2 * A, 0.1f)};
    size_t nqa = (size_t)NQ * A, nkv = (size_t)NK * 2 * A, nl = cross_attention_state_floats(NQ, NH);
    float *out1 = zeros(nqa), *lse1 = zeros(nl), *dq1 = zeros(nqa), *dkv1 = zeros(nkv);
    float *out = zeros(nqa), *lse = zeros(nl), *dq = zeros(nqa), *dkv = zeros(nkv);
    threads_set(1);
    xatt_run(&x, out1, lse1, dq1, dkv1);
    for (int th = 2; th <= 3; th++) {
        threads_set(th);
        xatt_run(&x, out, lse, dq, dkv);
        ck_assert_msg(!memcmp(out, out1, sizeof(float) * nqa) && !memcmp(lse, lse1, sizeof(float) * nl) &&
                          !memcmp(dq, dq1, sizeof(float) * nqa) && !memcmp(dkv, dkv1, sizeof(float) * nkv),
                      "cross-attention differs with %d threads", th);
    }
    threads_set(saved);
    free_owned();
}
END_TEST

// ---- the distillation loss: smooth-L1 (both branches) + InfoNCE, d pred and d logit_scale
typedef struct { float *pred, *target, *scale; int B, D; } DistCtx;
static void dist_fn(void *c, float *out) {
    DistCtx *d = c;
    float dp[64], ds, scratch[32];
    out[0] = (float)distill_loss(d->pred, d->target, d->B, d->D, d->scale[0], 0.3f, 0.7f, dp, &ds, scratch).loss;
}

START_TEST(grad_distill_loss) {
    rng_init(&rng, 13, 0);
    int B = 4, D = 5;
    for (int clamped = 0; clamped < 2; clamped++) {
        float scale = clamped ? 5.0f : 1.2f;  // exp(5) > 100: the clamp stops the scale's gradient
        DistCtx c = {randn((size_t)B * D, 1.5f), randn((size_t)B * D, 1), &scale, B, D};
        for (int i = 0; i < B * D; i++)  // keep |pred - target| away from smooth-L1's joint at 1
            if (fabsf(fabsf(c.pred[i] - c.target[i]) - 1.0f) < 0.05f) c.pred[i] += 0.2f;
        float R = 1.0f, out, dpred[64], dscale, scratch[32];
        Probe p = {dist_fn, &c, &out, &R, 1};
        DistillLoss l = distill_loss(c.pred, c.target, B, D, scale, 0.3f, 0.7f, dpred, &dscale, scratch);
        check_grad("distill_loss d pred", &p, c.pred, dpred, (size_t)B * D);
        if (clamped) ck_assert_float_eq(dscale, 0.0f);
        else check_grad("distill_loss d logit_scale", &p, &scale, &dscale, 1);
        // the value against the definitions
        double sl1 = 0, con = 0, s = fmin(exp(scale), 100.0);
        for (int i = 0; i < B * D; i++) {
            double x = fabs((double)c.pred[i] - c.target[i]);
            sl1 += x < 1 ? 0.5 * x * x : x - 0.5;
        }
        for (int i = 0; i < B; i++) {
            double row[4], mx = -1e300, sum = 0;
            for (int j = 0; j < B; j++) {
                double dot = 0, np = 0, nt = 0;
                for (int k = 0; k < D; k++) {
                    dot += (double)c.pred[i * D + k] * c.target[j * D + k];
                    np += (double)c.pred[i * D + k] * c.pred[i * D + k], nt += (double)c.target[j * D + k] * c.target[j * D + k];
                }
                row[j] = s * dot / sqrt(np * nt), mx = fmax(mx, row[j]);
            }
            for (int j = 0; j < B; j++) sum += exp(row[j] - mx);
            con += mx + log(sum) - row[i];
        }
        ck_assert_double_eq_tol(l.smooth_l1, sl1 / (B * D), 1e-6);
        ck_assert_double_eq_tol(l.infonce, con / B, 1e-5);
        ck_assert_double_eq_tol(l.loss, 0.7 * (sl1 / (B * D) + 0.3 * con / B), 1e-5);
    }
    free_owned();
}
END_TEST

// The optimizer's kernels against plain serial loops, bitwise: n odd and above
// any thread count's chunk boundary, several AdamW steps so the moments matter.
START_TEST(optimizer_kernels_match_plain_loops) {
    rng_init(&rng, 29, 0);
    int saved = omp_get_max_threads();
    size_t n = 10007;
    float *p = randn(n, 1), *g = randn(n, 0.1f), *m = zeros(n), *v = zeros(n);
    float *rp = own(malloc(sizeof(float) * n)), *rm = zeros(n), *rv = zeros(n);
    memcpy(rp, p, sizeof(float) * n);
    for (int t = 1; t <= 3; t++) {
        AdamWScalars s = {.decay = 1 - 1e-3f * 0.1f, .w1 = 0.1f, .beta2 = 0.999f, .w2 = (float)(1.0 - 0.999),
                          .bc2_sqrt = (float)sqrt(1 - pow(0.999, t)), .eps = 1e-8f,
                          .step_size = (float)(1e-3 / (1 - pow(0.9, t)))};
        adamw_kernel(p, g, m, v, n, s);
        for (size_t i = 0; i < n; i++) {
            rp[i] *= s.decay;
            rm[i] = rm[i] + s.w1 * (g[i] - rm[i]);
            rv[i] = rv[i] * s.beta2 + s.w2 * g[i] * g[i];
            rp[i] += -s.step_size * (rm[i] / (sqrtf(rv[i]) / s.bc2_sqrt + s.eps));
        }
        ck_assert_msg(!memcmp(p, rp, sizeof(float) * n), "adamw_kernel params differ at step %d", t);
        ck_assert_msg(!memcmp(m, rm, sizeof(float) * n) && !memcmp(v, rv, sizeof(float) * n),
                      "adamw_kernel moments differ at step %d", t);
    }
    float *x = randn(n, 2), *rx = own(malloc(sizeof(float) * n));
    memcpy(rx, x, sizeof(float) * n);
    scale_forward(x, x, 0.37f, n);  // in place, as clipping uses it
    for (size_t i = 0; i < n; i++) rx[i] *= 0.37f;
    ck_assert_msg(!memcmp(x, rx, sizeof(float) * n), "scale_forward differs");
    double want = 0.0;
    for (size_t i = 0; i < n; i++) want += (double)x[i] * x[i];
    // the serial loop, to the bit, at any thread count
    for (int th = 1; th <= 3; th++) {
        threads_set(th);
        ck_assert_msg(sumsq_kernel(x, n) == want, "sumsq_kernel differs from the serial loop with %d threads", th);
    }
    threads_set(saved);
    // eighths square to exact sums in double: every thread count and order gives the same bits
    for (size_t i = 0; i < n; i++) x[i] = (float)((int)(i % 61) - 30) / 8;
    want = 0.0;
    for (size_t i = 0; i < n; i++) want += (double)x[i] * x[i];
    for (int th = 1; th <= 3; th++) {
        threads_set(th);
        ck_assert_msg(sumsq_kernel(x, n) == want, "sumsq_kernel of exact squares differs with %d threads", th);
    }
    threads_set(saved);
    ck_assert(sumsq_kernel(x, 0) == 0.0);
    free_owned();
}
END_TEST

// The row movers the model files call instead of their own loops: forward
// copies, backward writes every row of the input's gradient (zero where
// nothing was selected; the buffers start as garbage), and the ViT embedding
// sums positions over images in order.
START_TEST(row_movers_match_plain_loops) {
    enum { N = 7, C = 5, B = 3, T = 6, NP = 4 };
    float inp[N * C], out[N * C], din[N * C], want[N * C];
    for (int i = 0; i < N * C; i++) inp[i] = (float)i * 0.25f - 3.0f;
    const int32_t rows[3] = {5, 0, 3};
    row_select_forward(out, inp, rows, 3, C);
    for (int r = 0; r < 3; r++) ck_assert(memcmp(out + r * C, inp + rows[r] * C, sizeof(float) * C) == 0);
    for (int i = 0; i < N * C; i++) din[i] = NAN, want[i] = 0.0f;
    for (int r = 0; r < 3; r++) memcpy(want + rows[r] * C, inp + r * C, sizeof(float) * C);
    row_select_backward(din, inp, rows, 3, N, C);
    ck_assert(memcmp(din, want, sizeof want) == 0);
    float seq[B * T * C], sl[B * 2 * C], dseq[B * T * C], wseq[B * T * C];
    for (int i = 0; i < B * T * C; i++) seq[i] = (float)(i % 11) - 5.0f, dseq[i] = NAN, wseq[i] = 0.0f;
    token_slice_forward(sl, seq, B, T, 3, 2, C);
    for (int b = 0; b < B; b++) {
        ck_assert(memcmp(sl + b * 2 * C, seq + (b * T + 3) * C, sizeof(float) * 2 * C) == 0);
        memcpy(wseq + (b * T + 3) * C, sl + b * 2 * C, sizeof(float) * 2 * C);
    }
    token_slice_backward(dseq, sl, B, T, 3, 2, C);
    ck_assert(memcmp(dseq, wseq, sizeof wseq) == 0);
    // image spans: 2 images of 3 feature rows, then the same 2 extra rows each; the extra rows' gradient sums the images
    float feat[2 * 3 * C], extra[2 * C], img[2 * 5 * C], dfeat[2 * 3 * C], dextra[2 * C];
    for (int i = 0; i < 2 * 3 * C; i++) feat[i] = (float)i, dfeat[i] = NAN;
    for (int i = 0; i < 2 * C; i++) extra[i] = -(float)i - 1, dextra[i] = NAN;
    image_span_forward(img, feat, extra, 2, 3, 2, C);
    for (int i = 0; i < 2; i++) {
        ck_assert(memcmp(img + i * 5 * C, feat + i * 3 * C, sizeof(float) * 3 * C) == 0);
        ck_assert(memcmp(img + (i * 5 + 3) * C, extra, sizeof(float) * 2 * C) == 0);
    }
    image_span_backward(dfeat, dextra, img, 2, 3, 2, C);
    ck_assert(memcmp(dfeat, feat, sizeof feat) == 0);
    for (int i = 0; i < 2 * C; i++) ck_assert(dextra[i] == 2 * extra[i]);
    // group means: 2 rows of 3, and the backward adds dout / 3 to each member
    float grp[6 * C], mean[2 * C], dgrp[6 * C];
    for (int i = 0; i < 6 * C; i++) grp[i] = (float)(i % 7), dgrp[i] = 1.0f;
    group_mean_forward(mean, grp, 2, 3, C);
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < C; c++)
            ck_assert(mean[r * C + c] == (grp[(3 * r) * C + c] + grp[(3 * r + 1) * C + c] + grp[(3 * r + 2) * C + c]) / 3.0f);
    group_mean_backward(dgrp, mean, 2, 3, C);
    for (int i = 0; i < 6 * C; i++) ck_assert(dgrp[i] == 1.0f + mean[(i / (3 * C)) * C + i % C] / 3.0f);
    // ViT embedding: [cls; patches] + pos, and its backward
    float patches[B * NP * C], cls[C], pos[(NP + 1) * C], emb[B * (NP + 1) * C];
    for (int i = 0; i < B * NP * C; i++) patches[i] = (float)i * 0.5f;
    for (int i = 0; i < C; i++) cls[i] = -(float)i;
    for (int i = 0; i < (NP + 1) * C; i++) pos[i] = (float)i * 0.125f;
    vit_embed_forward(emb, patches, cls, pos, B, NP, C);
    for (int b = 0; b < B; b++)
        for (int t = 0; t <= NP; t++)
            for (int i = 0; i < C; i++)
                ck_assert(emb[(b * (NP + 1) + t) * C + i] == (t ? patches[(b * NP + t - 1) * C + i] : cls[i]) + pos[t * C + i]);
    float dp[B * NP * C], dcls[C] = {1, 1, 1, 1, 1}, dpos[(NP + 1) * C], wpos[(NP + 1) * C];
    for (int i = 0; i < (NP + 1) * C; i++) dpos[i] = wpos[i] = 2.0f;
    for (int i = 0; i < B * NP * C; i++) dp[i] = NAN;
    vit_embed_backward(dp, dcls, dpos, emb, B, NP, C);
    for (int b = 0; b < B; b++) {
        ck_assert(memcmp(dp + b * NP * C, emb + (b * (NP + 1) + 1) * C, sizeof(float) * NP * C) == 0);
        for (int i = 0; i < (NP + 1) * C; i++) wpos[i] += emb[b * (NP + 1) * C + i];
    }
    ck_assert(memcmp(dpos, wpos, sizeof wpos) == 0);
    for (int i = 0; i < C; i++)
        ck_assert(dcls[i] == 1.0f + emb[i] + emb[(NP + 1) * C + i] + emb[2 * (NP + 1) * C + i]);
}
END_TEST

Suite *kernels_suite(void) {
    return SUITE("kernels", "", 60,
                 grad_linear,
                 grad_norms,
                 grad_activations,
                 grad_rope,
                 grad_attention,
                 grad_embeddings,
                 grad_crossentropy,
                 rope_llama3_matches_transformers,
                 grad_cross_attention,
                 attention_matches_reference,
                 cross_attention_matches_reference,
                 attention_same_bytes_any_threads,
                 row_movers_match_plain_loops,
                 grad_distill_loss,
                 optimizer_kernels_match_plain_loops);
}
