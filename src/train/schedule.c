// Learning-rate schedules and the step plan, see schedule.h.
#include "train/schedule.h"

#include <math.h>    // ceil, cos, M_PI
#include <stdlib.h>  // free

#include "core/alloc.h"
#include "core/error.h"

long schedule_warmup_steps(long warmup_steps, double warmup_ratio, long total) {
    // TrainingArguments.get_warmup_steps
    return warmup_steps > 0 ? warmup_steps : (long)ceil((double)total * warmup_ratio);
}

Schedule schedule_make(SchedulerType type, long warmup_steps, double warmup_ratio, long total) {
    return (Schedule){.type = type, .warmup = schedule_warmup_steps(warmup_steps, warmup_ratio, total), .total = total,
                      .num_cycles = 0.5};
}

Schedule schedule_from_args(const TrainArgs *a, long total) {
    return schedule_make(a->lr_scheduler_type, a->warmup_steps, a->warmup_ratio, total);
}

// transformers/optimization.py (4.37): the lr_lambda of each get_*_schedule_with_warmup, in Python floats
double schedule_lambda(const Schedule *s, long step) {
    double w = (double)s->warmup, cur = (double)step;
    switch (s->type) {
    case SCHED_CONSTANT:
        return 1.0;
    case SCHED_CONSTANT_WITH_WARMUP:
        if (step < s->warmup) return cur / fmax(1.0, w);
        return 1.0;
    case SCHED_LINEAR:
        if (step < s->warmup) return cur / (double)(s->warmup > 1 ? s->warmup : 1);
        return fmax(0.0, (double)(s->total - step) / (double)(s->total - s->warmup > 1 ? s->total - s->warmup : 1));
    case SCHED_COSINE: {
        if (step < s->warmup) return cur / (double)(s->warmup > 1 ? s->warmup : 1);
        double progress = (double)(step - s->warmup) / (double)(s->total - s->warmup > 1 ? s->total - s->warmup : 1);
        return fmax(0.0, 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress)));
    }
    }
    return 1.0;
}

const char *schedule_name(SchedulerType t) {
    static const char *const names[] = {"linear", "cosine", "constant", "constant_with_warmup"};
    return (unsigned)t < 4 ? names[t] : "?";
}

int train_plan(TrainPlan *p, long len_dataloader, int accumulation, double num_train_epochs, long max_steps) {
    *p = (TrainPlan){.len_dataloader = len_dataloader, .accumulation = accumulation};
    if (len_dataloader <= 0) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "no training batches: the dataset is empty");
    if (accumulation < 1)
        return vlm_fail(VLM_ERR_INPUT, NULL, "--gradient_accumulation_steps", "must be >= 1, got %d", accumulation);
    long per_epoch = len_dataloader / accumulation;
    if (per_epoch < 1) per_epoch = 1;
    long steps, epochs;
    if (max_steps > 0) {
        steps = max_steps;
        epochs = max_steps / per_epoch + (max_steps % per_epoch > 0);
    } else {
        if (!(num_train_epochs > 0))
            return vlm_fail(VLM_ERR_INPUT, NULL, "--num_train_epochs", "must be > 0 when --max_steps is not set");
        steps = (long)ceil(num_train_epochs * (double)per_epoch);
        epochs = (long)ceil(num_train_epochs);
    }
    if (steps < 1) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "the run would take no optimizer step");
    p->steps_per_epoch = per_epoch;
    p->n_epochs = (int)epochs;
    p->first = vlm_calloc((size_t)steps, sizeof(long));
    p->count = vlm_calloc((size_t)steps, sizeof(int));
    if (!p->first || !p->count) {
        train_plan_free(p);
        return VLM_ERR_FAIL;
    }
    // Trainer's loop: total_batched_samples counts micro-batches across epochs
    long total = 0, n = 0, start = 0;
    for (long e = 0; e < epochs && n < steps; e++) {
        for (long b = 0; b < len_dataloader && n < steps; b++) {
            total++;
            bool last_short = len_dataloader <= accumulation && b + 1 == len_dataloader;
            if (total % accumulation == 0 || last_short) {
                long g = e * len_dataloader + b;  // this micro-batch's global index
                p->first[n] = start;
                p->count[n] = (int)(g + 1 - start);
                start = g + 1;
                n++;
            }
        }
    }
    p->n_steps = n;  // == steps: epochs * L micro-batches always reach max_steps (see schedule.h)
    return VLM_OK;
}

void train_plan_free(TrainPlan *p) {
    free(p->first), free(p->count);
    p->first = NULL, p->count = NULL;
}
