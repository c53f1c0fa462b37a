// OLA-VLM's embedding-distillation loss for one predictor (base_ola_vlm.py
// _emb_loss with ola_utils.calculate_contrastive_loss), over the B samples
// that have a target:
//   smooth_l1 = mean over B*D of F.smooth_l1_loss(pred, target) (beta 1)
//   infonce   = mean over i of cross-entropy(row i of s * cos(pred_i, target_j), i),
//               s = min(exp(logit_scale), 100), vectors L2-normalised (F.normalize, eps 1e-12)
//   loss      = weight * (smooth_l1 + contrastive_weight * infonce)
// (one process: the targets are not gathered across GPUs).
#ifndef VLM_KERNELS_DISTILL_LOSS_H
#define VLM_KERNELS_DISTILL_LOSS_H

typedef struct {
    double smooth_l1, infonce, loss;
} DistillLoss;

// pred, target (B, D). dpred (B, D) receives d loss / d pred (overwritten),
// *dscale d loss / d logit_scale; scratch (B*B + 2*B) floats.
DistillLoss distill_loss(const float *pred, const float *target, int B, int D, float logit_scale,
                         float contrastive_weight, float weight, float *dpred, float *dscale, float *scratch);

#endif
