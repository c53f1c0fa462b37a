"""Reference data for OLA-VLM's embedding distillation (tests/fixtures/ola).

A tiny random llava-hf model (transformers 4.37.2, fp32, eager) with
OLA-VLM's parts added as upstream builds them: task tokens appended after the
image features (ola_arch.append_special_tokens), one TaskToken*Head per
(task, layer) (aux_heads/*.py on multimodal_projector/resampler.py's
TaskTokenResampler), the embedding losses of base_ola_vlm._emb_loss with
ola_utils.calculate_contrastive_loss, and upstream's fixed-position slicing
of the hidden states (forward_emb_predictor with NUM_SYS_TOKENS). The module
definitions below restate upstream's (SHI-Labs/OLA-VLM at 4f4a87d) in the
few lines each needs; the one intended difference is upstream's bug of
zeroing the sample mask before the loss (its embedding losses are always 0),
which is not reproduced.

One batch of three samples, each with its image after NUM_SYS_TOKENS tokens
and no padding (where upstream's slicing is defined): the loss parts and the
gradient of every parameter of the total loss (cross-entropy + depth + seg +
gen) are recorded. The teachers' targets are random and also written per
image in the layouts vlm.c reads (tests/fixtures/ola/targets/).

Usage: tools/make_ola_fixtures.sh
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "ola")
IMAGE_TOKEN_INDEX = -200
NUM_SYS = 3                      # tokens before the image in every sample
MODE = "gen-depth-seg"           # aux_mode: the task tokens' order
NTT = 2                          # num_task_tokens
HEADS = {  # upstream's config.image_* dicts (small sizes)
    "depth": dict(depth=1, dim_head=4, num_heads=2, num_tokens=4, output_dim=6, ff_mult=2,
                  depth_layer_indices="1-3", depth_loss_weight=0.5),
    "seg": dict(depth=1, dim_head=4, num_heads=2, num_tokens=4, output_dim=5, ff_mult=1,
                seg_layer_indices="2", seg_loss_weight=0.4),
    "gen": dict(depth=1, dim_head=3, num_heads=2, num_tokens=1, output_dim=7, ff_mult=1,
                img_layer_indices="1-2", img_loss_weight=0.6),
}
CONTRASTIVE = 0.3


# ---- upstream's modules (resampler.py, aux_heads), restated

class PerceiverAttention(nn.Module):
    def __init__(self, dim, dim_head, heads):
        super().__init__()
        self.dim_head, self.heads = dim_head, heads
        inner = dim_head * heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, latents):
        x, latents = self.norm1(x), self.norm2(latents)
        b, l, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1)
        split = lambda t: t.view(b, t.shape[1], self.heads, -1).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        scale = 1 / math.sqrt(math.sqrt(self.dim_head))
        w = torch.softmax(((q * scale) @ (k * scale).transpose(-2, -1)).float(), dim=-1)
        return self.to_out((w @ v).permute(0, 2, 1, 3).reshape(b, l, -1))


def feed_forward(dim, mult):
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class TaskTokenResampler(nn.Module):
    def __init__(self, dim, depth, dim_head, heads, num_queries, embedding_dim, output_dim, ff_mult):
        super().__init__()
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.num_queries = num_queries
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList([nn.ModuleList([PerceiverAttention(dim, dim_head, heads), feed_forward(dim, ff_mult)])
                                     for _ in range(depth)])

    def forward(self, x, latents):
        if latents.shape[1] != self.num_queries:
            if self.num_queries > 1 and self.num_queries % latents.shape[1] == 0:
                latents = latents.repeat(1, self.num_queries // latents.shape[1], 1)
            else:
                latents = latents.mean(dim=1, keepdim=True).repeat(1, self.num_queries, 1)
        latents = self.proj_in(latents)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))


def build_mlp(n):  # da_v2_head.build_mlp
    return nn.Sequential(nn.Linear(n, n), nn.ReLU(), nn.Linear(n, n))


class Head(nn.Module):
    """TaskTokenDepthHead (use_intermediate_depth: linear_1..3), OneFormerTaskTokenSegHead, TaskTokenGenHead."""
    def __init__(self, task, c, H):
        super().__init__()
        dim = H if task == "depth" else c["output_dim"]
        self.task = task
        self.projector = TaskTokenResampler(dim, c["depth"], c["dim_head"], c["num_heads"], c["num_tokens"], H,
                                            c["output_dim"], c["ff_mult"])
        if task == "depth":
            self.linear_1, self.linear_2, self.linear_3 = (build_mlp(c["output_dim"]) for _ in range(3))

    def forward(self, x, latents):
        f = self.projector(x, latents)
        if self.task == "depth":
            return self.linear_1(f)  # all_depth_feats[0][0]: the first intermediate
        if self.task == "seg":  # (b, c, h, w) as OneFormer's map
            b, n, c = f.shape
            h = int(math.sqrt(n))
            return f.permute(0, 2, 1).reshape(b, c, h, h)
        return f


def contrastive(preds, targets, logit_scale):
    labels = torch.arange(preds.shape[0])
    p = F.normalize(preds.flatten(1), dim=-1)
    t = F.normalize(targets.flatten(1), dim=-1)
    return F.cross_entropy(p @ t.t() * torch.clamp(logit_scale.exp(), max=100), labels, reduction="none")


def emb_loss(preds, targets, logit_scale, mask):
    m = mask.view(preds.shape[0], *([1] * (preds.ndim - 1)))
    sl1 = (F.smooth_l1_loss(preds.float(), targets.float(), reduction="none") * m).mean()
    con = (CONTRASTIVE * contrastive(preds, targets, logit_scale) * m).mean()
    return sl1 + con, sl1, contrastive(preds, targets, logit_scale).mean()


def main():
    torch.manual_seed(7)
    cfg = LlavaConfig(vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                                     num_attention_heads=2, image_size=8, patch_size=4,
                                                     projection_dim=8),
                      text_config=LlamaConfig(hidden_size=32, intermediate_size=40, num_hidden_layers=3,
                                              num_attention_heads=4, num_key_value_heads=2, vocab_size=64,
                                              rms_norm_eps=1e-5),
                      image_token_index=63, vision_feature_layer=-2, vision_feature_select_strategy="default",
                      pad_token_id=0)
    cfg._attn_implementation = "eager"
    cfg.text_config._attn_implementation = "eager"
    model = LlavaForConditionalGeneration(cfg).float()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(5.0)
    H, L, Fi = 32, 3, 4
    order = MODE.split("-")
    tokens = nn.ParameterDict({
        "depth": nn.Parameter(torch.randn(HEADS["depth"]["num_tokens"], H)),
        "seg": nn.Parameter(torch.randn(HEADS["seg"]["num_tokens"], H)),
        "gen": nn.Parameter(torch.randn(NTT, H)),
    })
    layer_key = {"depth": "depth_layer_indices", "seg": "seg_layer_indices", "gen": "img_layer_indices"}
    heads = {t: nn.ModuleList([Head(t, HEADS[t], H) for _ in HEADS[t][layer_key[t]].split("-")]) for t in order}
    scales = {t: nn.Parameter(torch.tensor(2.0)) for t in order}
    with torch.no_grad():  # away from the initial values, so every gradient path shows
        for t in order:
            scales[t].fill_({"depth": 1.5, "seg": 2.5, "gen": 0.7}[t])

    # the batch: [bos, 2 system tokens, image, 5 text tokens], labels on the last 4
    gen = torch.Generator().manual_seed(3)
    B, S = 3, 8
    ids = torch.cat([torch.ones(B, 1, dtype=torch.long), torch.randint(2, 62, (B, 2), generator=gen),
                     torch.full((B, 1), IMAGE_TOKEN_INDEX), torch.randint(2, 62, (B, 5), generator=gen)], dim=1)
    labels = ids.clone()
    labels[:, :5] = -100
    pixels = torch.randn(B, 3, S, S, generator=gen)
    targets = {"depth": torch.randn(B, HEADS["depth"]["num_tokens"], HEADS["depth"]["output_dim"], generator=gen),
               "seg": torch.randn(B, HEADS["seg"]["output_dim"], 2, 2, generator=gen),
               "gen": torch.randn(B, 1, HEADS["gen"]["output_dim"], generator=gen)}

    # prepare_inputs_labels_for_multimodal + append_special_tokens
    vt = model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    feats = model.multi_modal_projector(vt)
    embed = model.language_model.get_input_embeddings()
    rows, labs = [], []
    for b in range(B):
        parts = [embed(ids[b, :NUM_SYS]), feats[b]]
        lab = [labels[b, :NUM_SYS], torch.full((Fi,), -100)]
        for t in order:
            tk = tokens[t] if t == "gen" else tokens[t].view(NTT, -1, H).mean(dim=1)
            parts.append(tk)
            lab.append(torch.full((NTT,), -100))
        parts.append(embed(ids[b, NUM_SYS + 1:]))
        lab.append(labels[b, NUM_SYS + 1:])
        rows.append(torch.cat(parts))
        labs.append(torch.cat(lab))
    x = torch.stack(rows)
    y = torch.stack(labs)
    out = model.language_model(inputs_embeds=x, attention_mask=torch.ones(x.shape[:2], dtype=torch.long),
                               output_hidden_states=True)
    logits = out.logits
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1))
    layer_states = out.hidden_states[1:]
    mask = torch.ones(B)
    total = ce
    parts = {"ce": ce.item()}
    for t in order:
        k = order.index(t)
        start = NUM_SYS + Fi + NTT * k
        end_all = NUM_SYS + Fi + NTT * len(order)
        task_loss = 0
        for i, layer in enumerate(int(s) for s in HEADS[t][layer_key[t]].split("-")):
            st = layer_states[layer - 1]
            inp = torch.cat([st[:, :NUM_SYS + Fi], st[:, start:start + NTT], st[:, end_all:]], dim=1)
            lat = inp[:, NUM_SYS + Fi:NUM_SYS + Fi + NTT] if t == "gen" else tokens[t].repeat(B, 1, 1)
            pred = heads[t][i](inp, lat)
            l, sl1, con = emb_loss(pred, targets[t], scales[t], mask)
            w = HEADS[t][{"depth": "depth_loss_weight", "seg": "seg_loss_weight", "gen": "img_loss_weight"}[t]]
            task_loss = task_loss + w * l
            parts[f"{t}.{i}.smooth_l1"], parts[f"{t}.{i}.infonce"] = sl1.item(), con.item()
        parts[t] = task_loss.item()
        total = total + task_loss
    parts["total"] = total.item()
    total.backward()

    # the model folder: llava-hf + OLA-VLM's tensors under upstream's names, config with its keys
    d = os.path.join(OUT, "tiny_ola")
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    state, grads = {}, {}
    for n, p in model.named_parameters():
        grads["grad." + n] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
    for t in order:
        name = f"model.special_{t}_tokens"
        state[name] = tokens[t].detach().clone()
        grads["grad." + name] = tokens[t].grad.detach().clone()
        state[f"{t}_logit_scale"] = scales[t].detach().clone()
        grads[f"grad.{t}_logit_scale"] = scales[t].grad.detach().clone()
        for n, p in heads[t].named_parameters():
            key = f"image_{t}_heads.{n}"
            state[key] = p.detach().clone()
            grads["grad." + key] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
    from safetensors.torch import load_file
    merged = load_file(os.path.join(d, "model.safetensors"))
    merged.update(state)
    save_file(merged, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    conf.update({"aux_mode": MODE, "num_task_tokens": NTT, "contrastive_loss_weight": CONTRASTIVE,
                 "image_depth": HEADS["depth"], "image_seg": HEADS["seg"], "image_gen": HEADS["gen"]})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
    gc = os.path.join(d, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)

    # the teachers' targets per image, as vlm.c reads them (seg as OneFormer's map, fp16 for one)
    tdir = os.path.join(OUT, "targets")
    os.makedirs(tdir, exist_ok=True)
    for b in range(B):
        save_file({"depth": targets["depth"][b].contiguous(), "seg": targets["seg"][b].contiguous().half() if b == 1
                   else targets["seg"][b].contiguous(), "gen": targets["gen"][b].contiguous()},
                  os.path.join(tdir, f"img{b}.png.safetensors"))
    ref = {"batch.input_ids": ids.to(torch.int32), "batch.labels": labels.to(torch.int32),
           "batch.pixel_values": pixels,
           # the targets in the predictors' layout (B, num_tokens * output_dim); seg transposed from its map
           "target.depth": targets["depth"].reshape(B, -1),
           "target.seg": targets["seg"].flatten(2).transpose(1, 2).reshape(B, -1),
           "target.gen": targets["gen"].reshape(B, -1)}
    ref.update(grads)
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(OUT, "reference.safetensors"))
    # HF Trainer's weight-decay group over OLA-VLM's parameters (get_decay_parameter_names: every
    # parameter outside ALL_LAYERNORM_LAYERS whose name has no "bias"), under upstream's names
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names
    holder, inner = nn.Module(), nn.Module()
    holder.model = inner
    for t in order:
        setattr(inner, f"special_{t}_tokens", tokens[t])
        setattr(holder, f"image_{t}_heads", heads[t])
        setattr(holder, f"{t}_logit_scale", scales[t])
    names = [n for n, _ in holder.named_parameters()]
    decay = [n for n in get_parameter_names(holder, ALL_LAYERNORM_LAYERS) if "bias" not in n]
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"generator": f"transformers 4.37.2, torch {torch.__version__}, eager, fp32",
                   "num_sys_tokens": NUM_SYS, "losses": parts, "ola_parameters": names,
                   "ola_decay_parameters": decay}, f, indent=1, sort_keys=True)
    print(json.dumps(parts, indent=1))


if __name__ == "__main__":
    main()
