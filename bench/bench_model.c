// Training-step throughput on CPU for the "small" configs, random weights,
// batch 4 of 256 tokens each with one image, forward + backward + AdamW over
// every module:
//   llava: ViT 6 x 384 at 224/16, LLaMA 8 x 512 with 8 heads / 4 KV heads,
//     vocab 32000; clip_grad_norm_(1.0) (LLaVA-1.5's IFT);
//   owl2: mPLUG-Owl2 with the same ViT (post_layernorm, every layer), the
//     visual abstractor 2 x 384 (6 heads, 64 queries: 65 rows per image), the
//     modality-adaptive LLaMA 8 x 512 (8 heads: upstream cannot group them),
//     vocab 32000; no clipping (Q-Instruct's run).
// Prints tokens/s, seconds per step, peak RSS, achieved GFLOP/s and this
// machine's sgemm peak. Usage: bench_model STEPS [SEQ BATCH RECOMPUTE [ARCH]]:
// the long-sequence case is bench_model 2 2048 1 0 (and 1:
// --gradient_checkpointing); ARCH llava (default) or owl2.
#include <cblas.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>  // strcmp
#include <sys/resource.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "core/timer.h"
#include "model/llava.h"
#include "text/template.h"
#include "train/adamw.h"
#include "small_config.h"

static double sgemm_peak_gflops(void) {
    int n = 1536;
    float *a = vlm_alloc_aligned(sizeof(float) * n * n), *b = vlm_alloc_aligned(sizeof(float) * n * n),
          *c = vlm_alloc_aligned(sizeof(float) * n * n);
    for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = 0.001f * (float)(i % 97);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = timer_now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double g = 2.0 * n * n * n / (timer_now_s() - t0) / 1e9;
        if (g > best) best = g;
    }
    vlm_free_aligned(a), vlm_free_aligned(b), vlm_free_aligned(c);
    return best;
}

int main(int argc, char **argv) {
    threads_choose_blas_kernels(argv);  // as vlm runs (core/threads.h)
    int steps = argc > 1 ? atoi(argv[1]) : 3;
    bool owl2 = argc > 5 && strcmp(argv[5], "owl2") == 0;
    LlavaConfig cfg = bench_small_config(owl2);
    int SEQ = argc > 2 ? atoi(argv[2]) : 256, B = argc > 3 ? atoi(argv[3]) : 4;
    bool recompute = argc > 4 && atoi(argv[4]) != 0;
    int F = llava_image_tokens(&cfg), T = SEQ - F + 1, S = cfg.vision.image_size;
    LlavaParams params;
    if (llava_params_alloc(&params, &cfg) != VLM_OK) return 1;
    Rng rng;
    rng_init(&rng, 1, 0);
    for (size_t i = 0; i < params.numel; i++) params.data[i] = 0.02f * rng_normal(&rng);
    size_t numel = params.numel;
    LlavaModel m;
    if (llava_model_init(&m, &params, &(LlavaPlan){B, B, T, SEQ, recompute, false}) != VLM_OK) return 1;
    int32_t *ids = malloc(sizeof(int32_t) * B * T), *labels = malloc(sizeof(int32_t) * B * T);
    int *lengths = malloc(sizeof(int) * B);
    float *pixels = malloc(sizeof(float) * B * 3 * S * S);
    bench_random_batch(&rng, B, T, S, ids, labels, lengths, pixels);
    AdamW opt;
    adamw_init(&opt, numel, (AdamWConfig){0.9, 0.999, 1e-8});
    size_t *ranges = malloc(sizeof(size_t) * 2 * m.params.n_specs);
    int n_ranges = llava_trained_ranges(&m, ranges);
    double loss = 0, total = 0;
    for (int s = 0; s <= steps; s++) {  // step 0 warms up
        double t0 = timer_now_s();
        llava_zero_grad(&m);
        llava_forward(&m, ids, labels, lengths, B, T, pixels, B, 0, &loss);
        llava_backward(&m);
        if (!owl2) grad_clip(m.grad, ranges, n_ranges, 1.0);
        adamw_begin_step(&opt);
        for (int r = 0; r < n_ranges; r++) adamw_update(&opt, m.params.data, m.grad, ranges[2 * r], ranges[2 * r + 1], 1e-4f, 0.0f);
        if (s > 0) total += timer_now_s() - t0;
    }
    // matmul FLOPs of one step: 6 x (weights used) x tokens, plus attention (4 T^2 HS per head, x3 for backward)
    double Tv = vision_patches(&cfg.vision) + 1, Cv = cfg.vision.hidden, H = cfg.text.hidden, Iv = cfg.vision.intermediate;
    double It = cfg.text.intermediate, V = cfg.text.vocab, HS = H / cfg.text.heads, KV = cfg.text.kv_heads * HS;
    int Lv = llava_vision_layers_used(&cfg);
    double vis = Lv * (4 * Cv * Cv + 2 * Cv * Iv) * B * Tv + 3.0 * 256 * Cv * B * (Tv - 1);
    double vis_att = Lv * cfg.vision.heads * 4.0 * Tv * Tv * (Cv / cfg.vision.heads) * B;
    double proj = (Cv * H + H * H) * B * F;
    if (owl2) {  // the abstractor: q, o, SwiGLU over the queries; k, v over queries + image rows; visual_fc
        const AbstractorConfig *a = &cfg.abstractor;
        double D = a->hidden, Q = a->queries, K = a->queries + Tv;
        proj = a->layers * ((2 * D * D + 3 * D * a->intermediate) * Q + 2 * D * D * K) * B + D * H * Q * B;
        vis_att += a->layers * 4.0 * Q * K * D * B;
    }
    // the LM head runs only on the positions with a target (m.llm.n_rows of them)
    double llm = cfg.text.layers * (2 * H * H + 2 * H * KV + 3 * H * It) * B * SEQ + V * H * m.llm.n_rows;
    double llm_att = cfg.text.layers * cfg.text.heads * 2.0 * SEQ * SEQ * HS * B;  // causal: half
    double flops = 6.0 * (vis + proj + llm) + 3.0 * (vis_att + llm_att);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double step_s = total / steps;
    printf("{\"tokens_per_s\": %.1f, \"step_s\": %.3f, \"peak_rss_mb\": %.0f, \"gflops\": %.2f, \"sgemm_peak_gflops\": %.2f, "
           "\"loss\": %.4f, \"params\": %zu, \"seq\": %d, \"batch\": %d, \"recompute\": %s, \"arch\": \"%s\"}\n",
           B * SEQ / step_s, step_s, ru.ru_maxrss / 1024.0, flops / step_s / 1e9, sgemm_peak_gflops(), loss, numel, SEQ, B,
           recompute ? "true" : "false", owl2 ? "owl2" : "llava");
    return 0;
}
