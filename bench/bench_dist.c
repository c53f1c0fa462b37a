// Data-parallel training steps on the small LLaVA config (small_config.h),
// run under mpirun or alone: train_step over every module (HF Trainer's
// AdamW, clipping at 1.0) with the gradients reduced over the ranks, so two
// ranks x B can be timed against one process x 2B. Prints one JSON line
// (rank 0): global tokens/s, seconds per step, and per rank the peak RSS and
// the parameter, gradient and AdamW-moment memory it holds between steps
// (resident pages, mincore).
// Usage: [mpirun -np N] bench_dist STEPS BATCH_PER_RANK ZERO_STAGE [LORA_R [bf16]]
// LORA_R > 0: LoRA fine-tuning instead (LLaVA's finetune_lora.sh: adapters of rank R, alpha 2R,
// dropout 0.05 on every LLM linear, the projector in full at its own lr, the vision tower and
// the LLM frozen); bf16: the frozen LLM's layers held in bf16 (--bits 16 --bf16 True).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>  // mincore
#include <sys/resource.h>
#include <unistd.h>

// The resident part of n bytes at p (whole pages counted), in MB.
static double resident_mb(const void *p, size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page - 1), b = ((uintptr_t)p + n + page - 1) & ~(uintptr_t)(page - 1);
    size_t pages = (b - a) / page, in = 0;
    unsigned char *v = malloc(pages ? pages : 1);
    if (v && mincore((void *)a, b - a, v) == 0)
        for (size_t i = 0; i < pages; i++) in += v[i] & 1;
    free(v);
    return (double)(in * page) / (1 << 20);
}

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "core/timer.h"
#include "dist/dist.h"
#include "model/half_store.h"
#include "text/template.h"
#include "train/optimizer.h"
#include "train/step.h"
#include "small_config.h"

int main(int argc, char **argv) {
    threads_choose_blas_kernels(argv);  // as vlm runs (core/threads.h)
    int steps = argc > 1 ? atoi(argv[1]) : 3, B = argc > 2 ? atoi(argv[2]) : 4, zero = argc > 3 ? atoi(argv[3]) : 0;
    int lora_r = argc > 4 ? atoi(argv[4]) : 0;
    bool half = argc > 5 && strcmp(argv[5], "bf16") == 0;
    if (dist_init() != VLM_OK) return fprintf(stderr, "%s\n", vlm_last_error()), 1;
    int rank = dist_rank(), world = dist_world();
    if (dist_env_local_size() > 1) threads_set(threads_available() / dist_env_local_size());
    LlavaConfig cfg = bench_small_config(false);
    if (lora_r > 0) cfg.lora = (LoraConfig){.r = lora_r, .alpha = 2.0f * lora_r, .dropout = 0.05f, .seed = 1};
    int SEQ = 256, F = llava_image_tokens(&cfg), T = SEQ - F + 1, S = cfg.vision.image_size;
    LlavaParams params;
    if (llava_params_alloc(&params, &cfg) != VLM_OK) return 1;
    Rng rng;
    rng_init(&rng, 1, 0);  // the same weights on every rank
    for (size_t i = 0; i < params.numel; i++) params.data[i] = 0.02f * rng_normal(&rng);
    LlavaModel m;
    if (llava_model_init(&m, &params, &(LlavaPlan){B, B, T, SEQ, false, false}) != VLM_OK) return 1;
    for (int i = 0; i < MODULE_COUNT; i++) m.trainable[i] = lora_r > 0 ? i == MODULE_PROJECTOR || i == MODULE_LORA : true;
    m.llm.lora_train = true;
    int32_t *ids = malloc(sizeof(int32_t) * B * T), *labels = malloc(sizeof(int32_t) * B * T);
    int *lengths = malloc(sizeof(int) * B);
    float *pixels = malloc(sizeof(float) * B * 3 * S * S);
    rng_init(&rng, 2, (uint64_t)rank);  // each rank its own samples
    bench_random_batch(&rng, B, T, S, ids, labels, lengths, pixels);
    Optimizer o;
    OptimizerConfig oc = {.lr = lora_r > 0 ? 2e-4 : 1e-4, .weight_decay = 0.0, .projector_lr = lora_r > 0 ? 2e-5 : -1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                          .max_grad_norm = 1.0, .zero_stage = zero};
    HalfStore *hs = NULL;
    if (optimizer_init(&o, &m, &oc) != VLM_OK || optimizer_attach_model(&o, &m) != VLM_OK ||
        (half && half_store_attach(&hs, &m, DT_BF16) != VLM_OK))
        return fprintf(stderr, "%s\n", vlm_last_error()), 1;
    MicroBatch mb = {ids, labels, lengths, B, T, pixels, B, NULL, 0};
    StepConfig sc = {LOSS_TOKEN_MEAN, 1, 0};
    StepResult r;
    double total = 0;
    for (int s = 0; s <= steps; s++) {  // step 0 warms up
        dist_barrier();
        double t0 = timer_now_s();
        if (train_step(&m, &o, &sc, &mb, 1, 1.0, &r) != VLM_OK) return fprintf(stderr, "%s\n", vlm_last_error()), 1;
        if (s > 0) total += timer_now_s() - t0;
    }
    double t0 = timer_now_s();  // the gradients' reduction alone at stages 0 and 1 (2, 3: inside the backward)
    for (int s = 0; s < 3; s++) optimizer_reduce(&o, m.grad);
    double reduce_s = (timer_now_s() - t0) / 3;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    // what each rank holds between steps: the resident pages of the parameters, gradients and moments
    double mine[4] = {ru.ru_maxrss / 1024.0, resident_mb(m.params.data, m.params.numel * 4),
                      resident_mb(m.grad, m.params.numel * 4), resident_mb(o.adam.m, o.adam.n * 4) + resident_mb(o.adam.v, o.adam.n * 4)};
    double *all = malloc(sizeof(double) * 4 * (size_t)world);
    if (dist_allgather_f64(mine, 4, all) != VLM_OK) return 1;
    if (rank == 0) {
        double step_s = total / steps;
        printf("{\"bf16_base\": %s, \"lora_r\": %d, \"trained_params\": %zu, \"world\": %d, \"threads\": %d, \"zero\": %d, \"batch_per_rank\": %d, \"tokens_per_s\": %.1f, "
               "\"step_s\": %.3f, \"reduce_s\": %.3f, \"loss\": %.4f, \"ranks\": [",
               half ? "true" : "false", lora_r, o.n_packed, world, threads_get(), zero, B, (double)world * B * SEQ / step_s, step_s, reduce_s, r.loss);
        for (int k = 0; k < world; k++)
            printf("%s{\"peak_rss_mb\": %.0f, \"params_mb\": %.1f, \"grads_mb\": %.1f, \"moments_mb\": %.1f}", k ? ", " : "",
                   all[4 * k], all[4 * k + 1], all[4 * k + 2], all[4 * k + 3]);
        printf("]}\n");
    }
    free(all), free(ids), free(labels), free(lengths), free(pixels);
    half_store_free(hs);
    optimizer_free(&o);
    llava_model_free(&m);
    dist_finalize();
    return 0;
}
