"""Reference data for the LLaVA model on CPU (tests/fixtures/model).

Tiny random LlavaForConditionalGeneration models from transformers 4.37.2
(the version LLaVA pins) in fp32 with eager attention: odd widths, GQA,
feature layer -2 and -1, strategies "default" and "full". For one batch of
three samples (two with an image, one text-only, right-padded, labels
masked on the prompt) we record the logits at every real position, the loss
(LLaVA's shifted token-mean cross-entropy) and the gradient of every
parameter, then the parameters after 3 steps of torch.optim.AdamW with
clip_grad_norm_(1.0).

tiny_linear has LLaVA's `linear` projector: the reference model's projector
is replaced by one nn.Linear (LLaVA's build_vision_projector), and the
llava-hf directory holds it as vlm.c saves it (projector_hidden_act
"linear", linear_2 = identity with zero bias: the same function, which this
script checks by loading it back into transformers). tiny_tied ties the
input and output embeddings. init_stats.json records per-tensor statistics
of a freshly constructed LlavaForConditionalGeneration (init_config.json).

Our side of the batch uses LLaVA's convention (one -200 per image in
input_ids); transformers' uses config.image_token_index. Usage:
    tools/make_model_fixtures.sh [CASE|init ...]   (default: every case and init)
Named cases are rewritten alone (their entries in expected.json replaced).
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "model")
IMAGE_TOKEN_INDEX = -200

CASES = {
    # name: (vision, text, feature layer, strategy)
    "tiny_gqa": (dict(hidden_size=24, intermediate_size=37, num_hidden_layers=3, num_attention_heads=4,
                      image_size=16, patch_size=4),
                 dict(hidden_size=32, intermediate_size=45, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=101, rms_norm_eps=1e-5),
                 -2, "default"),
    "tiny_full": (dict(hidden_size=20, intermediate_size=33, num_hidden_layers=2, num_attention_heads=5,
                       image_size=12, patch_size=6),
                  dict(hidden_size=30, intermediate_size=41, num_hidden_layers=3, num_attention_heads=3,
                       num_key_value_heads=3, vocab_size=97, rope_theta=500000.0, tie_word_embeddings=False),
                  -1, "full"),
    "tiny_linear": (dict(hidden_size=16, intermediate_size=29, num_hidden_layers=2, num_attention_heads=2,
                         image_size=12, patch_size=4),
                    dict(hidden_size=24, intermediate_size=35, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=89),
                    -2, "default"),
    "tiny_tied": (dict(hidden_size=16, intermediate_size=27, num_hidden_layers=2, num_attention_heads=4,
                       image_size=8, patch_size=4),
                  dict(hidden_size=24, intermediate_size=31, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1, vocab_size=83, tie_word_embeddings=True),
                  -1, "default"),
}
LINEAR = {"tiny_linear"}  # LLaVA's mm_projector_type "linear"

# a fresh LlavaForConditionalGeneration: non-default initializer settings so every rule shows
INIT_CONFIG = dict(
    vision_config=dict(model_type="clip_vision_model", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, image_size=32, patch_size=8, initializer_range=0.04,
                       initializer_factor=0.5, projection_dim=16),
    text_config=dict(model_type="llama", hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, vocab_size=300, initializer_range=0.03,
                     pad_token_id=5),
    image_token_index=299, vision_feature_layer=-2, vision_feature_select_strategy="default")


def build(name):
    vis, txt, layer, strategy = CASES[name]
    cfg = LlavaConfig(vision_config=CLIPVisionConfig(projection_dim=8, **vis),
                      text_config=LlamaConfig(**txt),  # no padding_idx: a zero pad embedding would pass for an image slot
                      image_token_index=txt["vocab_size"] - 1, vision_feature_layer=layer,
                      vision_feature_select_strategy=strategy, pad_token_id=0)
    cfg._attn_implementation = "eager"
    cfg.text_config._attn_implementation = "eager"
    torch.manual_seed(1234)
    model = LlavaForConditionalGeneration(cfg).float().eval()
    if name in LINEAR:  # LLaVA's build_vision_projector for "linear"
        model.multi_modal_projector = nn.Linear(cfg.vision_config.hidden_size, cfg.text_config.hidden_size)
    with torch.no_grad():  # LLaMA's init is std 0.02: widen it so the logits are not all alike
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(10.0)
    return model, cfg


def batch(cfg, gen):
    V = cfg.text_config.vocab_size
    S = cfg.vision_config.image_size
    img = cfg.image_token_index
    # three samples: image at the front, image in the middle, text only; lengths 9, 12, 7
    rows = [
        [1, IMAGE_TOKEN_INDEX] + torch.randint(2, V - 2, (7,), generator=gen).tolist(),
        [1] + torch.randint(2, V - 2, (4,), generator=gen).tolist() + [IMAGE_TOKEN_INDEX] +
        torch.randint(2, V - 2, (6,), generator=gen).tolist(),
        [1] + torch.randint(2, V - 2, (6,), generator=gen).tolist(),
    ]
    T = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    prompt = [4, 7, 3]  # the first tokens are masked like a prompt
    for b, r in enumerate(rows):
        ids[b, :len(r)] = torch.tensor(r)
        mask[b, :len(r)] = 1
        for t in range(prompt[b], len(r)):
            if r[t] != IMAGE_TOKEN_INDEX:
                labels[b, t] = r[t]
    pixels = torch.randn(2, 3, S, S, generator=gen)
    hf_ids = ids.clone()
    hf_ids[hf_ids == IMAGE_TOKEN_INDEX] = img
    return ids, labels, mask, pixels, hf_ids


def valid_logits(logits, hf_ids, mask, img, n_patches):
    """Logits at each sample's real positions, in order (HF pads the expanded sequence at the end)."""
    out = []
    for b in range(hf_ids.shape[0]):
        n = int(mask[b].sum())
        n_img = int((hf_ids[b, :n] == img).sum())
        out.append(logits[b, : n + n_img * (n_patches - 1)])
    return torch.cat(out)


def write_original_layout(model, cfg, d):
    """The same weights as an original LLaVA checkpoint (LlavaLlamaForCausalLM names, LLaMA config at the
    top level, mm_* keys, no vision weights) plus the CLIP directory its mm_vision_tower points at."""
    orig, clip = d + "_original", d + "_clip"
    os.makedirs(orig, exist_ok=True)
    model.vision_tower.save_pretrained(clip, safe_serialization=True)
    tensors = {}
    for n, p in model.named_parameters():
        if n.startswith("language_model."):
            tensors[n[len("language_model."):]] = p.detach().clone()
        elif n.startswith("multi_modal_projector.linear_"):
            k = {"1": 0, "2": 2}[n[len("multi_modal_projector.linear_")]]
            tensors[f"model.mm_projector.{k}.{n.rsplit('.', 1)[1]}"] = p.detach().clone()
    save_file(tensors, os.path.join(orig, "model.safetensors"), metadata={"format": "pt"})
    conf = cfg.text_config.to_dict()
    conf.update({"architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava_llama",
                 "mm_vision_tower": "../tiny_gqa_clip", "mm_projector_type": "mlp2x_gelu",
                 "mm_vision_select_layer": cfg.vision_feature_layer, "mm_vision_select_feature": "patch",
                 "mm_hidden_size": cfg.vision_config.hidden_size, "image_aspect_ratio": "pad"})
    with open(os.path.join(orig, "config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
    # the IFT start of LLaVA-1.5: a plain LLaMA directory, the CLIP directory and PT's mm_projector.bin
    llm = d + "_llm"
    model.language_model.save_pretrained(llm, safe_serialization=True)
    projector = {f"model.mm_projector.{k}.{part}": getattr(model.multi_modal_projector, f"linear_{i}").__getattr__(part).detach().clone()
                 for i, k in ((1, 0), (2, 2)) for part in ("weight", "bias")}
    torch.save(projector, d + "_mm_projector.bin")
    for folder in (clip, llm):
        gc = os.path.join(folder, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)


def our_name(n):
    """Our (llava-hf) name of a parameter: the linear projector is linear_1."""
    if n.startswith("multi_modal_projector.") and not n.startswith("multi_modal_projector.linear_"):
        return "multi_modal_projector.linear_1." + n.rsplit(".", 1)[1]
    return n


def save_linear_as_hf(model, cfg, d, check):
    """The linear projector in the llava-hf layout: linear_1 = W, act "linear", linear_2 = identity."""
    import copy
    hf_cfg = copy.deepcopy(cfg)
    hf_cfg.projector_hidden_act = "linear"
    twin = LlavaForConditionalGeneration(hf_cfg).float().eval()
    state = {our_name(n): p for n, p in model.state_dict().items()}
    H = cfg.text_config.hidden_size
    state["multi_modal_projector.linear_2.weight"] = torch.eye(H)
    state["multi_modal_projector.linear_2.bias"] = torch.zeros(H)
    twin.load_state_dict(state, strict=True)
    twin.save_pretrained(d, safe_serialization=True)
    back = LlavaForConditionalGeneration.from_pretrained(d, attn_implementation="eager").float().eval()
    with torch.no_grad():
        a = model(**check).logits
        b = back(**check).logits
    assert torch.equal(a, b), float((a - b).abs().max())


def write_linear_original(model, cfg, d):
    """tiny_linear as an original LLaVA directory (model.mm_projector.weight/bias) + its CLIP directory."""
    orig, clip = d + "_original", d + "_clip"
    os.makedirs(orig, exist_ok=True)
    model.vision_tower.save_pretrained(clip, safe_serialization=True)
    tensors = {}
    for n, p in model.named_parameters():
        if n.startswith("language_model."):
            tensors[n[len("language_model."):]] = p.detach().clone()
        elif n.startswith("multi_modal_projector."):
            tensors["model.mm_projector." + n.rsplit(".", 1)[1]] = p.detach().clone()
    save_file(tensors, os.path.join(orig, "model.safetensors"), metadata={"format": "pt"})
    conf = cfg.text_config.to_dict()
    conf.update({"architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava_llama",
                 "mm_vision_tower": "../tiny_linear_clip", "mm_projector_type": "linear",
                 "mm_vision_select_layer": cfg.vision_feature_layer, "mm_vision_select_feature": "patch",
                 "mm_hidden_size": cfg.vision_config.hidden_size, "image_aspect_ratio": "pad"})
    with open(os.path.join(orig, "config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
    gc = os.path.join(clip, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)


def write_init_stats():
    """Per-tensor statistics of a freshly constructed LlavaForConditionalGeneration(config)."""
    cfg = LlavaConfig(**INIT_CONFIG)
    torch.manual_seed(4321)
    model = LlavaForConditionalGeneration(cfg)
    stats = {}
    for n, p in model.named_parameters():
        x = p.detach().double()
        stats[n] = {"numel": x.numel(), "mean": float(x.mean()), "std": float(x.std(unbiased=False)),
                    "min": float(x.min()), "max": float(x.max())}
        if n.endswith("embed_tokens.weight"):
            stats[n]["pad_row_abs_max"] = float(x[cfg.text_config.pad_token_id].abs().max())
    conf = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", **INIT_CONFIG}
    with open(os.path.join(OUT, "init_config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
    with open(os.path.join(OUT, "init_stats.json"), "w") as f:
        json.dump({"generator": f"transformers 4.37.2, torch {torch.__version__}", "seed": 4321, "tensors": stats},
                  f, indent=1, sort_keys=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    wanted = sys.argv[1:] or list(CASES) + ["init"]
    summary = {"generator": f"transformers 4.37.2, torch {torch.__version__}, eager attention, fp32", "cases": {}}
    expected = os.path.join(OUT, "expected.json")
    if sys.argv[1:] and os.path.exists(expected):
        with open(expected) as f:
            summary = json.load(f)
    if "init" in wanted:
        write_init_stats()
    for name in CASES:
        if name not in wanted:
            continue
        model, cfg = build(name)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        gen = torch.Generator().manual_seed(99)
        ids, labels, mask, pixels, hf_ids = batch(cfg, gen)
        if name in LINEAR:
            save_linear_as_hf(model, cfg, d, dict(input_ids=hf_ids, pixel_values=pixels, attention_mask=mask))
        else:
            model.save_pretrained(d, safe_serialization=True)
        if os.path.exists(os.path.join(d, "generation_config.json")):
            os.remove(os.path.join(d, "generation_config.json"))
        hf_labels = labels.clone()
        n_patches = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
        n_patches += 1 if cfg.vision_feature_select_strategy == "full" else 0
        model.train()  # no dropout in these configs; train() only for the optimizer steps
        out = model(input_ids=hf_ids, pixel_values=pixels, attention_mask=mask, labels=hf_labels)
        out.loss.backward()
        logits = valid_logits(out.logits.detach(), hf_ids, mask, cfg.image_token_index, n_patches)
        tensors = {"batch.input_ids": ids.int(), "batch.labels": labels.int(), "batch.lengths": mask.sum(1).int(),
                   "batch.pixel_values": pixels, "ref.logits": logits.contiguous(), "ref.loss": out.loss.detach().reshape(1)}
        for n, p in model.named_parameters():
            # layers past the feature layer and post_layernorm get no gradient: zeros
            tensors["grad." + our_name(n)] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        # three AdamW steps with global-norm clipping, on the same batch
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
        model.zero_grad()
        losses = []
        for step in range(3):
            o = model(input_ids=hf_ids, pixel_values=pixels, attention_mask=mask, labels=hf_labels)
            o.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            losses.append(float(o.loss))
        for n, p in model.named_parameters():
            tensors["step3." + our_name(n)] = p.detach().clone()
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(d, "reference.safetensors"))
        summary["cases"][name] = {"loss": float(out.loss), "adamw_losses": losses, "n_patches": n_patches,
                                  "adamw": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1,
                                            "clip": 1.0}}
        print(name, float(out.loss), losses, file=sys.stderr)
        if name == "tiny_gqa":
            write_original_layout(build(name)[0], cfg, d)
        if name == "tiny_linear":
            write_linear_original(build(name)[0], cfg, d)
    with open(expected, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
