// One optimizer step over accumulated micro-batches, see step.h.
#include "train/step.h"

#include <math.h>  // isfinite

#include "core/error.h"

int train_step(LlavaModel *m, Optimizer *o, const StepConfig *c, const MicroBatch *mb, int n_micro,
               double lr_factor, StepResult *r) {
    *r = (StepResult){.bad_micro = -1, .lr = o->cfg.lr * lr_factor};
    if (n_micro < 1) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "a step needs at least one micro-batch");
    int accumulation = c->accumulation > 0 ? c->accumulation : n_micro;
    // the targets of the whole step, before any forward (token_mean's denominator)
    long total = 0;
    for (int i = 0; i < n_micro; i++)
        total += llava_count_targets(&m->params.cfg, mb[i].input_ids, mb[i].labels, mb[i].lengths, mb[i].B,
                                     mb[i].T_text, c->max_len);
    r->n_targets = total;
    if (total == 0) {  // nothing to learn from: no update (HF would write NaN into every trained parameter)
        r->skipped = true;
        r->empty_micro = n_micro;
        return VLM_OK;
    }
    llava_zero_grad(m);
    double sum = 0.0;  // token_mean: sum of token losses; micro_mean: sum of micro means
    for (int i = 0; i < n_micro; i++) {
        const MicroBatch *b = &mb[i];
        double loss;
        llava_set_aux_inputs(m, b->aux_inputs);
        int rc = llava_forward(m, b->input_ids, b->labels, b->lengths, b->B, b->T_text, b->pixels, b->n_images,
                               c->max_len, &loss);
        if (rc != VLM_OK) return vlm_fail_context(rc, "micro-batch %d of %d", i + 1, n_micro);
        if (m->n_targets == 0) r->empty_micro++;  // only in micro_mean can this matter: no text loss from it
        double aux = llava_aux_loss(m);
        if (m->n_targets == 0 && llava_aux_samples(m) == 0) continue;
        if ((m->n_targets > 0 && !isfinite(loss)) || !isfinite(aux)) {
            r->bad_micro = i;
            llava_zero_grad(m);
            return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "micro-batch %d of %d: %s is %g: no parameter updated", i + 1,
                            n_micro, isfinite(aux) ? "loss" : "the auxiliary loss", isfinite(aux) ? loss : aux);
        }
        float scale = 0.0f;
        if (m->n_targets > 0 && c->reduction == LOSS_MICRO_MEAN) {
            sum += loss;
            scale = (float)(1.0 / ((double)m->n_targets * accumulation));
        } else if (m->n_targets > 0) {
            sum += loss * (double)m->n_targets;
            scale = (float)(1.0 / (double)total);
        }
        llava_backward_scaled(m, scale, (float)(1.0 / accumulation));
        if (llava_aux_samples(m) > 0)
            for (int p = 0; p < m->ext->n_parts; p++) r->part_loss[p] += m->ext->part[p] / accumulation;
    }
    r->text_loss = c->reduction == LOSS_MICRO_MEAN ? sum / accumulation : sum / (double)total;
    r->loss = r->text_loss;
    for (int p = 0; p < EXT_MAX_PARTS; p++) r->loss += r->part_loss[p];
    int rc = optimizer_step(o, m, lr_factor, &r->grad_norm);
    if (rc != VLM_OK) {
        llava_zero_grad(m);
        return rc;
    }
    return VLM_OK;
}
