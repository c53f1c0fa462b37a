// One optimizer step over accumulated micro-batches, see step.h.
#include "train/step.h"

#include <math.h>    // isfinite
#include <stdlib.h>  // free

#include "core/alloc.h"
#include "core/error.h"
#include "dist/dist.h"
#include "train/zero.h"

// The step's results summed over the ranks in rank order, so every world
// size that splits the same micro-batches adds them up the same way:
// x[0..n) of each rank -> their sum.
static int sum_over_ranks(double *x, int n) {
    int world = dist_world();
    if (world == 1) return VLM_OK;
    double *all = vlm_malloc(sizeof(double) * (size_t)n * (size_t)world);
    if (!all) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    int rc = dist_allgather_f64(x, n, all);
    for (int i = 0; rc == VLM_OK && i < n; i++) {
        x[i] = all[i];
        for (int r = 1; r < world; r++) x[i] += all[(size_t)r * n + i];
    }
    free(all);
    return rc;
}

// The micro-batches' forwards and backwards on this rank; *sum: token_mean's
// sum of token losses, micro_mean's sum of micro means. With a ZeRO-2 / 3
// engine every rank makes the same parameter events (collectives) in every
// micro-batch: a micro-batch without targets still runs its (empty) backward,
// and after a failure the remaining ones are walked without computing.
static int forward_backward(LlavaModel *m, Optimizer *o, const StepConfig *c, const MicroBatch *mb, int n_micro,
                            int accumulation, long total, double *sum, StepResult *r) {
    int world = dist_world(), rc = VLM_OK;
    for (int i = 0; i < n_micro; i++) {
        if (rc != VLM_OK) {  // another micro-batch failed: only the events, as the other ranks' passes make them
            if (!o->zero) break;
            llava_walk_hooks(m);
            zero_finish_micro(o->zero);
            continue;
        }
        const MicroBatch *b = &mb[i];
        double loss;
        llava_set_aux_inputs(m, b->aux_inputs);
        m->llm.lora_pass = b->index;  // LoRA's dropout masks: a function of the micro-batch, so a resumed run draws alike
        rc = llava_forward(m, b->input_ids, b->labels, b->lengths, b->B, b->T_text, b->pixels, b->n_images, c->max_len,
                           &loss);
        if (rc != VLM_OK) {
            rc = vlm_fail_context(rc, "micro-batch %d of %d", i + 1, n_micro);
            if (o->zero) llava_walk_hooks(m), zero_finish_micro(o->zero);  // its forward made no event: it failed first
            continue;
        }
        if (m->n_targets == 0) r->empty_micro++;  // only in micro_mean can this matter: no text loss from it
        double aux = llava_aux_loss(m);
        bool empty = m->n_targets == 0 && llava_aux_samples(m) == 0;
        if (!empty && ((m->n_targets > 0 && !isfinite(loss)) || !isfinite(aux))) {
            r->bad_micro = i;
            rc = vlm_fail(VLM_ERR_FAIL, NULL, NULL, "micro-batch %d of %d: %s is %g: no parameter updated", i + 1,
                          n_micro, isfinite(aux) ? "loss" : "the auxiliary loss", isfinite(aux) ? loss : aux);
            if (o->zero) llava_walk_backward_hooks(m), zero_finish_micro(o->zero);  // its backward's events alone
            continue;
        }
        if (empty && !o->zero) continue;
        float scale = 0.0f;
        if (m->n_targets > 0 && c->reduction == LOSS_MICRO_MEAN) {
            // HF under DDP: each rank's micro mean / accumulation, the gradients averaged over the ranks
            *sum += loss;
            scale = (float)(1.0 / ((double)m->n_targets * accumulation * world));
        } else if (m->n_targets > 0) {
            *sum += loss * (double)m->n_targets;
            scale = (float)(1.0 / (double)total);
        }
        llava_backward_scaled(m, scale, (float)(1.0 / ((double)accumulation * world)));
        if (o->zero) zero_finish_micro(o->zero);
        if (llava_aux_samples(m) > 0)
            for (int p = 0; p < m->ext->n_parts; p++) r->part_loss[p] += m->ext->part[p] / accumulation;
    }
    if (!o->zero) return rc;
    // ranks with fewer micro-batches in this step (records skipped) walk the others' extra passes
    double mine = n_micro, *all = vlm_malloc(sizeof(double) * (size_t)world);
    if (!all || dist_allgather_f64(&mine, 1, all) != VLM_OK) dist_abort("cannot agree on the step's micro-batches");
    int most = n_micro;
    for (int k = 0; k < world; k++)
        if ((int)all[k] > most) most = (int)all[k];
    free(all);
    for (int i = n_micro; i < most; i++) llava_walk_hooks(m), zero_finish_micro(o->zero);
    return rc;
}

int train_step(LlavaModel *m, Optimizer *o, const StepConfig *c, const MicroBatch *mb, int n_micro,
               double lr_factor, StepResult *r) {
    *r = (StepResult){.bad_micro = -1, .lr = o->cfg.lr * lr_factor};
    int world = dist_world();
    if (n_micro < 0) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "a negative count of micro-batches");
    int accumulation = c->accumulation > 0 ? c->accumulation : (n_micro > 0 ? n_micro : 1);
    // the targets of the whole step on every rank, before any forward (token_mean's denominator)
    long total = 0;
    for (int i = 0; i < n_micro; i++)
        total += llava_count_targets(&m->params.cfg, mb[i].input_ids, mb[i].labels, mb[i].lengths, mb[i].B,
                                     mb[i].T_text, c->max_len);
    int rc = dist_sum_long(&total, 1);
    if (rc != VLM_OK) return rc;
    r->n_targets = total;
    if (total == 0) {  // nothing to learn from: no update (HF would write NaN into every trained parameter)
        r->skipped = true;
        r->empty_micro = n_micro;
        return VLM_OK;
    }
    if (o->zero) zero_zero_grad(o->zero);
    else llava_zero_grad(m);
    double sum = 0.0;
    rc = forward_backward(m, o, c, mb, n_micro, accumulation, total, &sum, r);
    // a rank that failed stops every rank here, before any gradient is exchanged
    rc = dist_agree(rc, NULL);
    if (rc != VLM_OK) {
        llava_zero_grad(m);
        return rc;
    }
    // the step's losses, and which modality's weights got a gradient, over every rank
    double sums[1 + EXT_MAX_PARTS + 2] = {sum};
    for (int p = 0; p < EXT_MAX_PARTS; p++) sums[1 + p] = r->part_loss[p];
    sums[1 + EXT_MAX_PARTS] = m->saw_modality[0], sums[2 + EXT_MAX_PARTS] = m->saw_modality[1];
    rc = sum_over_ranks(sums, 1 + EXT_MAX_PARTS + 2);
    if (rc != VLM_OK) return rc;
    m->saw_modality[0] = sums[1 + EXT_MAX_PARTS] > 0, m->saw_modality[1] = sums[2 + EXT_MAX_PARTS] > 0;
    r->text_loss = c->reduction == LOSS_MICRO_MEAN ? sums[0] / accumulation / world : sums[0] / (double)total;
    r->loss = r->text_loss;
    for (int p = 0; p < EXT_MAX_PARTS; p++) r->part_loss[p] = sums[1 + p] / world, r->loss += r->part_loss[p];
    rc = optimizer_reduce(o, m->grad);
    if (rc == VLM_OK) rc = optimizer_step(o, m, lr_factor, &r->grad_norm);
    if (rc != VLM_OK) {
        llava_zero_grad(m);
        return rc;
    }
    return VLM_OK;
}
