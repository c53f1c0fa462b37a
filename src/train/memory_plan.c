// The training run's memory plan, see memory_plan.h.
#include "train/memory_plan.h"

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/error.h"
#include "dist/dist.h"
#include "model/half_store.h"
#include "model/llava.h"

#define MB(x) ((double)(x) / (1 << 20))

static size_t resident_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

// RAM, or less where a cgroup (v2 memory.max) or RLIMIT_AS caps this process.
static size_t machine_bytes(void) {
    size_t m = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    unsigned long long cap;
    if (f) {
        if (fscanf(f, "%llu", &cap) == 1 && cap < m) m = (size_t)cap;  // "max" does not scan
        fclose(f);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < m) m = (size_t)rl.rlim_cur;
    return m;
}

static TrainMemory plan_for(const TrainArgs *a, const LlavaParams *p, int batch, int accumulation, bool recompute,
                            size_t resident) {
    int L = a->model_max_length;
    LlavaMemory lm = llava_memory_plan(&p->cfg, &(LlavaPlan){batch, batch, L, llava_planned_length(&p->cfg, L), recompute, !a->trainable[MODULE_VISION]});
    size_t trained = 0;  // what optimizer_init will give moments
    for (int i = 0; i < p->n_specs; i++)
        if (param_trained(&p->specs[i], a->trainable)) trained += p->specs[i].numel;
    size_t S = (size_t)p->cfg.vision.image_size, per_sample = 2 * sizeof(int32_t) * (size_t)L + 3 * S * S * sizeof(float);
    // ZeRO-1: a slice of the moments; 2: of the trained gradients too; 3: of the trained parameters
    // too (plus, at 2 and 3, the parameter group in flight: one layer, or the embeddings and LM head)
    size_t world = (size_t)dist_world(), shards = a->zero_stage >= 1 ? world : 1;
    size_t slice = sizeof(float) * (trained - (trained + world - 1) / world);  // the others' part of the trained
    // gradients: the trained tensors' (a frozen one's pages are never touched, llava_zero_grad)
    TrainMemory m = {.resident = resident, .params = lm.params, .grads = sizeof(float) * trained - (a->zero_stage >= 2 ? slice : 0),
                     .moments = 2 * sizeof(float) * ((trained + shards - 1) / shards),
                     .activations = lm.activations, .workspace = lm.workspace, .batches = (size_t)(accumulation + 1) * batch * per_sample};
    // LoRA with --bits 16 and --bf16 / --fp16: the frozen LLM's layer matrices held in 16 bits (model/half_store.h)
    if (a->lora_enable && a->bits == 16 && (a->bf16 || a->fp16))
        for (int i = 0; i < p->n_specs; i++)
            if (half_store_holds(&p->specs[i]))
                m.params -= p->specs[i].numel * 2, m.resident -= m.resident > p->specs[i].numel * 2 ? p->specs[i].numel * 2 : 0;
    m.total = m.resident + m.grads + m.moments + m.activations + m.workspace + m.batches;
    if (a->zero_stage == 3 && m.total > slice) m.total -= slice;  // the loaded parameters' others' part is dropped
    return m;
}

TrainMemory train_memory_plan(const TrainArgs *a, const LlavaParams *params) {
    TrainMemory m = plan_for(a, params, a->per_device_train_batch_size, a->gradient_accumulation_steps,
                             a->gradient_checkpointing, resident_bytes());
    m.machine = machine_bytes() / (size_t)dist_env_local_size();  // the ranks on this machine share it
    return m;
}

int train_memory_check(const TrainArgs *a, const LlavaParams *params) {
    TrainMemory m = train_memory_plan(a, params);
    int B = a->per_device_train_batch_size, A = a->gradient_accumulation_steps;
    if (dist_rank() == 0)
        fprintf(stderr,
            "memory plan%s: %.0f MB resident (parameters %.0f MB), gradients %.0f MB, optimizer moments %.0f MB, "
            "activations %.0f MB (%d x %d tokens%s), BLAS workspace %.0f MB, batches %.0f MB: total %.0f MB of %.0f MB\n",
            dist_world() > 1 ? " (per rank)" : "", MB(m.resident), MB(m.params), MB(m.grads), MB(m.moments), MB(m.activations), B, a->model_max_length,
            a->gradient_checkpointing ? ", layers recomputed" : "", MB(m.workspace), MB(m.batches), MB(m.total),
            MB(m.machine));
    if (m.total <= m.machine) return VLM_OK;
    // what would fit: checkpointing at the same batch, then halved micro-batches (each without, then
    // with checkpointing) accumulated to the same effective batch
    char fix[256] = "";
    for (int b = B; b >= 1 && !fix[0]; b /= 2)
        for (int c = 0; c < 2 && !fix[0]; c++) {
            bool recompute = a->gradient_checkpointing || c == 1;
            if (b == B && (c == 0 || a->gradient_checkpointing)) continue;  // the run as given
            int acc = (int)(((long)B * A + b - 1) / b);
            TrainMemory t = plan_for(a, params, b, acc, recompute, m.resident);
            if (t.total > m.machine) continue;
            if (b == B)
                snprintf(fix, sizeof fix, "--gradient_checkpointing True needs %.0f MB", MB(t.total));
            else
                snprintf(fix, sizeof fix, "%s--per_device_train_batch_size %d --gradient_accumulation_steps %d needs %.0f MB",
                         recompute && !a->gradient_checkpointing ? "--gradient_checkpointing True " : "", b, acc,
                         MB(t.total));
        }
    return vlm_fail(VLM_ERR_INPUT, NULL, NULL,
                    "the run needs %.0f MB and this machine allows %.0f MB: it does not fit (%s)", MB(m.total),
                    MB(m.machine),
                    fix[0] ? fix : "not even one sample per micro-batch with --gradient_checkpointing True: a shorter "
                                "--model_max_length or a smaller model");
}
