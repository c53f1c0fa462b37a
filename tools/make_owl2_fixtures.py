"""Reference data for mPLUG-Owl2 (tests/fixtures/owl2), from upstream's own code.

Runs X-PLUG/mPLUG-Owl's mPLUG-Owl2 model code (folder mPLUG-Owl2/, commit
0f3068fd) unmodified, on CPU in fp32, on a tiny random
MPLUGOwl2LlamaForCausalLM. Nothing of upstream is vendored: the checkout comes
from $MPLUG_OWL_DIR (a directory holding mPLUG-Owl2/, put on PYTHONPATH by the
wrapper), which tools/make_owl2_fixtures.sh clones into tools/.cache/mPLUG-Owl
when it is unset. Only the model package is imported (mplug_owl2.model and, for
the optimizer's groups, nothing of mplug_owl2/train: the flash-attn patch and
train_mem.py need CUDA).

Pins (tools/venv_owl2.sh, upstream's pyproject.toml): Python 3.11, torch 2.0.1
(the PyPI build, run on CPU), transformers 4.31.0, tokenizers 0.13.3,
sentencepiece 0.1.99, numpy 1.26.4, einops 0.6.1, Pillow 10.1.0, icecream,
safetensors.

The model runs in train mode (every dropout in the model is p=0, so train and
eval mode compute the same) with the ViT's hard-coded gradient checkpointing
switched off (numerically a no-op). After construction every parameter is set
to seeded random values (matrices and embeddings normal std 0.2, LayerNorm /
RMSNorm weights 1 + 0.1 noise, biases 0.1 noise); the persistent buffers
q_pos_embed / k_pos_embed (sin-cos, numpy) and rotary inv_freq stay as
upstream computes them.

Produces, under tests/fixtures/owl2/:
  tiny_owl2/            save_pretrained under transformers 4.31.0: fp32,
                        3 shards pytorch_model-0000i-of-00003.bin + index,
                        with q_pos_embed/k_pos_embed and rotary inv_freq;
                        config.json and generation_config.json as written.
  tiny_owl2_converter/  the same weights in the layout of upstream's
                        convert_mplug_owl2_weight_to_hf.py (the released
                        MAGAer13 checkpoint): one shard per decoder layer
                        plus a last one, pytorch_model-{i}-of-{N}.bin, bf16
                        tensors, per-layer fp32 rotary_emb.inv_freq, no
                        q_pos_embed/k_pos_embed, index with weight_map before
                        metadata (total_size = 2 bytes x every element,
                        inv_freq included), config.json of a bare
                        MPLUGOwl2Config(...).save_pretrained.
  reference.safetensors one right-padded batch of 3 (image, text-only, image)
                        through upstream's forward with labels: the batch,
                        the spliced inputs, modality indicators, logits,
                        loss, ViT and abstractor outputs, the sin-cos
                        buffers, every parameter's gradient; the same for a
                        text-only batch of 2 (textonly.*); the logits/loss of
                        the converter's bf16-rounded weights (converter.*);
                        3 AdamW steps (adamw.*).
  expected.json         losses, configs, parameter names/shapes, which grads
                        are None / exactly zero, HF Trainer's weight-decay
                        group, spliced lengths.

Usage: tools/make_owl2_fixtures.sh
       (or MPLUG_OWL_DIR=/path/to/mPLUG-Owl tools/make_owl2_fixtures.sh)
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "owl2")
SEED = 20231108

try:
    import mplug_owl2  # noqa: F401  (upstream: patches transformers' llama at import)
except ImportError:
    sys.exit("mplug_owl2 is not importable: put $MPLUG_OWL_DIR/mPLUG-Owl2 on PYTHONPATH "
             "(tools/make_owl2_fixtures.sh does)")
import transformers
from mplug_owl2.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from mplug_owl2.model.configuration_mplug_owl2 import (MPLUGOwl2Config, MplugOwlVisionConfig,
                                                       MplugOwlVisualAbstractorConfig)
from mplug_owl2.model.modeling_mplug_owl2 import MPLUGOwl2LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaRMSNorm
from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
from transformers.trainer_pt_utils import get_parameter_names

# ---- the tiny configuration: head sizes 6 (ViT), 8 (abstractor), 10 (LLM); odd intermediates
VISION = dict(hidden_size=24, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
              image_size=42, patch_size=14)                    # 3x3 grid + CLS = 10 tokens
ABSTRACTOR = dict(hidden_size=24, encoder_hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                  intermediate_size=29, num_learnable_queries=5, grid_size=3)   # 5 + 1 visual tokens
LLM = dict(vocab_size=113, hidden_size=30, intermediate_size=45, num_hidden_layers=2, num_attention_heads=3,
           num_key_value_heads=3, max_position_embeddings=256, rms_norm_eps=1e-6)
S = VISION["image_size"]
NVIS = ABSTRACTOR["num_learnable_queries"] + 1

ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, steps=3)


def make_config():
    vis = MplugOwlVisionConfig(**VISION)
    abs_ = MplugOwlVisualAbstractorConfig(**ABSTRACTOR)
    return MPLUGOwl2Config(visual_config={"visual_model": vis.to_dict(), "visual_abstractor": abs_.to_dict()},
                           **LLM)


def randomise(model, gen):
    """Every parameter to seeded values of a sensible scale (upstream's init leaves LN at 1/0 and the
    ViT/abstractor at torch's defaults; this makes every parameter matter)."""
    norm_weights = set()
    for mname, m in model.named_modules():
        if isinstance(m, (torch.nn.LayerNorm, LlamaRMSNorm)):
            norm_weights.add(f"{mname}.weight")
    with torch.no_grad():
        for n, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if n in norm_weights:
                p.copy_(1.0 + 0.1 * noise)
            elif n.endswith(".bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.2 * noise)
    return norm_weights


def build(gen):
    model = MPLUGOwl2LlamaForCausalLM(make_config()).float()
    norm_weights = randomise(model, gen)
    prepare(model)
    return model, norm_weights


def prepare(model):
    model.train()  # all dropouts are p=0: train mode computes what eval mode does
    model.get_model().vision_model.encoder.gradient_checkpointing = False
    return model


def rows_to_batch(rows, images):
    """upstream's DataCollatorForSupervisedDataset: right-pad ids with 0 (unk), labels with -100,
    attention_mask = ids != 0, images stacked."""
    T = max(len(ids) for ids, _ in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    labels = torch.full((len(rows), T), IGNORE_INDEX, dtype=torch.long)
    for b, (i, l) in enumerate(rows):
        ids[b, :len(i)] = torch.tensor(i)
        labels[b, :len(l)] = torch.tensor(l)
    return dict(input_ids=ids, labels=labels, attention_mask=ids.ne(0), images=torch.stack(images))


def sample(gen, before, after, prompt, image=True):
    """BOS, `before` text tokens, [-200], `after` text tokens, EOS; labels -100 on the first `prompt`
    tokens (the v1 prompt prefix, the image's slot included). Real tokens are 3..V-1, never 0."""
    V = LLM["vocab_size"]
    text = torch.randint(3, V, (before + after,), generator=gen).tolist()
    ids = [1] + text[:before] + ([IMAGE_TOKEN_INDEX] if image else []) + text[before:] + [2]
    labels = [IGNORE_INDEX if t < prompt or x == IMAGE_TOKEN_INDEX else x for t, x in enumerate(ids)]
    return ids, labels


def make_batches(gen):
    img = lambda: torch.randn(3, S, S, generator=gen)  # noqa: E731  (normalised pixels)
    dummy = lambda: torch.zeros(3, S, S)                # noqa: E731  (upstream's text-only image)
    s0 = sample(gen, 2, 6, 8)                 # image at 3, raw 11, spliced 16
    s1 = sample(gen, 11, 0, 7, image=False)   # text only, raw 13: between 11 and 16
    s2 = sample(gen, 4, 2, 7)                 # image at 5, raw 9, spliced 14
    main = rows_to_batch([s0, s1, s2], [img(), dummy(), img()])
    t0 = sample(gen, 8, 0, 5, image=False)    # raw 10
    t1 = sample(gen, 5, 0, 4, image=False)    # raw 7
    text = rows_to_batch([t0, t1], [dummy(), dummy()])
    return main, text


class Capture:
    """Records what upstream computed inside one forward: the spliced inputs (hooking
    prepare_inputs_labels_for_multimodal) and the ViT / abstractor outputs (forward hooks)."""

    def __init__(self, model):
        self.model, self.data, self.handles = model, {}, []
        orig = model.prepare_inputs_labels_for_multimodal

        def wrapped(*a, **k):
            r = orig(*a, **k)
            _, modality, mask, _, embeds, labels = r
            self.data.update(modality=modality.detach().clone(), attention_mask=mask.detach().clone(),
                             inputs_embeds=embeds.detach().clone(), labels=labels.detach().clone())
            return r

        model.prepare_inputs_labels_for_multimodal = wrapped
        inner = model.get_model()
        self.handles.append(inner.vision_model.register_forward_hook(
            lambda m, i, o: self.data.__setitem__("vision", o.last_hidden_state.detach().clone())))
        self.handles.append(inner.visual_abstractor.register_forward_hook(
            lambda m, i, o: self.data.__setitem__("abstractor", o.last_hidden_state.detach().clone())))

    def close(self):
        for h in self.handles:
            h.remove()
        del self.model.prepare_inputs_labels_for_multimodal


def run(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                 images=batch["images"])


def grads(model):
    out, none, zero = {}, [], []
    for n, p in model.named_parameters():
        if p.grad is None:
            none.append(n)
            continue
        if not bool(p.grad.any()):
            zero.append(n)
        out[n] = p.grad.detach().clone()
    return out, none, zero


def decay_names(model):
    """HF Trainer 4.31 / mplug_owl2_trainer.create_optimizer: outside ALL_LAYERNORM_LAYERS, no 'bias'.
    In 4.31 ALL_LAYERNORM_LAYERS is [nn.LayerNorm] only, so the LLM's RMSNorm weights are decayed."""
    return [n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n]


def inputs_out(prefix, batch):
    return {f"{prefix}input_ids": batch["input_ids"].to(torch.int32),
            f"{prefix}labels": batch["labels"].to(torch.int32),
            f"{prefix}attention_mask": batch["attention_mask"].to(torch.int32),
            f"{prefix}pixel_values": batch["images"]}


def spliced_out(prefix, cap):
    return {f"{prefix}modality": cap["modality"].to(torch.int32),
            f"{prefix}spliced.attention_mask": cap["attention_mask"].to(torch.int32),
            f"{prefix}spliced.labels": cap["labels"].to(torch.int32),
            f"{prefix}spliced.inputs_embeds": cap["inputs_embeds"]}


# ---- the converter's layout (convert_mplug_owl2_weight_to_hf.py: key order per shard as it writes them)

def converter_layer_keys(i):
    p = f"model.layers.{i}."
    return [p + k for k in (
        "self_attn.q_proj.weight", "self_attn.k_proj.multiway.0.weight", "self_attn.v_proj.multiway.0.weight",
        "self_attn.k_proj.multiway.1.weight", "self_attn.v_proj.multiway.1.weight", "self_attn.o_proj.weight",
        "mlp.gate_proj.weight", "mlp.down_proj.weight", "mlp.up_proj.weight",
        "input_layernorm.multiway.0.weight", "post_attention_layernorm.multiway.0.weight",
        "input_layernorm.multiway.1.weight", "post_attention_layernorm.multiway.1.weight")]


def converter_last_keys(n_vit, n_abs):
    keys = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    v = "model.vision_model."
    keys += [v + k for k in ("embeddings.cls_token", "embeddings.patch_embed.weight", "embeddings.position_embedding",
                             "embeddings.pre_layernorm.bias", "embeddings.pre_layernorm.weight",
                             "post_layernorm.bias", "post_layernorm.weight")]
    for i in range(n_vit):
        keys += [f"{v}encoder.layers.{i}.{k}.{w}" for k in (
            "input_layernorm", "mlp.fc1", "mlp.fc2", "post_attention_layernorm", "self_attn.dense",
            "self_attn.query_key_value") for w in ("bias", "weight")]
    a = "model.visual_abstractor."
    keys += [a + k for k in ("query_embeds", "visual_fc.bias", "visual_fc.weight", "vit_eos")]
    for i in range(n_abs):
        keys += [f"{a}encoder.layers.{i}.crossattention.{k}.{w}" for k in (
            "attention.key", "attention.query", "attention.value", "norm1", "normk", "output.mlp.ffn_ln",
            "output.mlp.w1", "output.mlp.w2", "output.mlp.w3", "output.norm2", "output.out_proj")
            for w in ("bias", "weight")]
    return keys


def write_converter(model, d):
    state = model.state_dict()
    L = LLM["num_hidden_layers"]
    N = L + 1
    index, count, written = {"weight_map": {}}, 0, set()
    shards = [(converter_layer_keys(i) + [f"model.layers.{i}.self_attn.rotary_emb.inv_freq"], i + 1)
              for i in range(L)]
    shards.append((converter_last_keys(VISION["num_hidden_layers"], ABSTRACTOR["num_hidden_layers"]), N))
    for keys, k in shards:
        fn = f"pytorch_model-{k}-of-{N}.bin"
        sd = {}
        for key in keys:
            t = state[key]
            sd[key] = t.detach().clone() if key.endswith("inv_freq") else t.detach().to(torch.bfloat16).clone()
            index["weight_map"][key] = fn
            count += t.numel()
            written.add(key)
        torch.save(sd, os.path.join(d, fn))
    left = sorted(set(state) - written)
    assert all(k.endswith(("q_pos_embed", "k_pos_embed")) for k in left), left
    index["metadata"] = {"total_size": count * 2}
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump(index, f)
    make_config().save_pretrained(d)
    return left


def main():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    try:
        torch.use_deterministic_algorithms(True)
        deterministic = True
    except Exception:  # pragma: no cover
        deterministic = False
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    model, norm_weights = build(gen)
    main_batch, text_batch = make_batches(gen)

    # 1. upstream's save_pretrained (transformers 4.31: .bin shards, persistent buffers included)
    d_hf = os.path.join(OUT, "tiny_owl2")
    model.save_pretrained(d_hf, max_shard_size="100KB", safe_serialization=False)

    ref, exp = {}, {}
    # 3. the mixed batch: forward with labels, backward
    cap = Capture(model)
    out = run(model, main_batch)
    out.loss.backward()
    cap.close()
    c = cap.data
    g, g_none, g_zero = grads(model)
    ref.update(inputs_out("batch.", main_batch))
    ref.update(spliced_out("", c))
    ref["logits"] = out.logits.detach().clone()
    ref["loss"] = out.loss.detach().reshape(())
    ref["vision.last_hidden_state"] = c["vision"]
    ref["abstractor.out"] = c["abstractor"]
    for i, layer in enumerate(model.get_model().visual_abstractor.encoder.layers):
        att = layer.crossattention.attention
        ref[f"pos.q_pos_embed.{i}"] = att.q_pos_embed.detach().clone()
        ref[f"pos.k_pos_embed.{i}"] = att.k_pos_embed.detach().clone()
    for n, t in g.items():
        ref["grad." + n] = t
    spliced_lengths = [int(x) for x in c["attention_mask"].sum(1)]
    assert c["modality"].shape == out.logits.shape[:2]
    assert [int(x) for x in c["modality"].sum(1)] == [NVIS, 0, NVIS]

    # the text-only batch (dummy zero images): vision / abstractor grads zero, multiway.1 None
    model.zero_grad(set_to_none=True)
    cap = Capture(model)
    tout = run(model, text_batch)
    tout.loss.backward()
    cap.close()
    tg, tg_none, tg_zero = grads(model)
    ref.update(inputs_out("textonly.", text_batch))
    ref.update(spliced_out("textonly.", cap.data))
    ref["textonly.logits"] = tout.logits.detach().clone()
    ref["textonly.loss"] = tout.loss.detach().reshape(())
    for n, t in tg.items():
        if n not in tg_zero:
            ref["textonly.grad." + n] = t
    assert not bool(cap.data["modality"].any())
    model.zero_grad(set_to_none=True)

    # reloading upstream's own save gives the same numbers
    back = prepare(MPLUGOwl2LlamaForCausalLM.from_pretrained(d_hf, torch_dtype=torch.float32))
    with torch.no_grad():
        again = run(back, main_batch)
    reload_equal = bool(torch.equal(again.logits, out.logits))
    reload_maxdiff = float((again.logits - out.logits).abs().max())

    # 2. the converter's layout, bf16; its numbers for the bf16-rounded weights upcast to fp32
    d_conv = os.path.join(OUT, "tiny_owl2_converter")
    os.makedirs(d_conv)
    not_written = write_converter(model, d_conv)
    conv = prepare(MPLUGOwl2LlamaForCausalLM.from_pretrained(d_conv, torch_dtype=torch.float32))
    with torch.no_grad():
        cout = run(conv, main_batch)
    ref["converter.logits"] = cout.logits.detach().clone()
    ref["converter.loss"] = cout.loss.detach().reshape(())
    # the same by hand: every parameter rounded to bf16, buffers kept
    twin = prepare(MPLUGOwl2LlamaForCausalLM(make_config()).float())
    sd = {k: (v.to(torch.bfloat16).float() if k not in dict(model.named_buffers()) else v)
          for k, v in model.state_dict().items()}
    twin.load_state_dict(sd, strict=True)
    with torch.no_grad():
        tw = run(twin, main_batch)
    converter_equal = bool(torch.equal(tw.logits, cout.logits))

    # 4. three AdamW steps from the saved weights (no clipping); decay group as HF Trainer builds it
    opt_model = prepare(MPLUGOwl2LlamaForCausalLM.from_pretrained(d_hf, torch_dtype=torch.float32))
    decay = decay_names(opt_model)
    groups = [{"params": [p for n, p in opt_model.named_parameters() if n in decay and p.requires_grad],
               "weight_decay": ADAMW["weight_decay"]},
              {"params": [p for n, p in opt_model.named_parameters() if n not in decay and p.requires_grad],
               "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"])
    adamw_losses = []
    for step in range(1, ADAMW["steps"] + 1):
        opt.zero_grad(set_to_none=True)
        loss = run(opt_model, main_batch).loss
        loss.backward()
        opt.step()
        adamw_losses.append(loss.item())
        ref[f"adamw.loss.{step}"] = loss.detach().reshape(())
    with torch.no_grad():
        adamw_after = run(opt_model, main_batch).loss.item()
    for n, p in opt_model.named_parameters():
        ref["adamw.param." + n] = p.detach().clone()
    assert abs(adamw_losses[0] - out.loss.item()) == 0.0, (adamw_losses[0], out.loss.item())

    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(OUT, "reference.safetensors"))

    with open(os.path.join(d_hf, "config.json")) as f:
        saved_config = json.load(f)
    with open(os.path.join(d_hf, "pytorch_model.bin.index.json")) as f:
        hf_index = json.load(f)
    named = dict(model.named_parameters())
    exp = {
        "generator": (f"upstream X-PLUG/mPLUG-Owl mPLUG-Owl2 (commit {upstream_commit()}), transformers "
                      f"{transformers.__version__}, torch {torch.__version__}, numpy {np.__version__}, CPU, fp32"),
        "mode": "train (every dropout p=0), ViT gradient checkpointing off, no gradient checkpointing elsewhere",
        "deterministic_algorithms": deterministic,
        "seed": SEED,
        "init": "matrices/embeddings/cls_token/position_embedding/query_embeds/vit_eos N(0,0.2); "
                "LayerNorm/RMSNorm weights 1+0.1N; biases 0.1N; q_pos_embed/k_pos_embed/inv_freq as upstream",
        "config": {"llm": LLM, "vision": VISION, "abstractor": ABSTRACTOR},
        "saved_config": saved_config,
        "num_visual_tokens": NVIS,
        "image_token_index": IMAGE_TOKEN_INDEX,
        "loss": out.loss.item(),
        "raw_lengths": [int(x) for x in main_batch["attention_mask"].sum(1)],
        "image_positions": [[int(i) for i in torch.where(r == IMAGE_TOKEN_INDEX)[0]] for r in main_batch["input_ids"]],
        "spliced_lengths": spliced_lengths,
        "spliced_len": int(out.logits.shape[1]),
        "params": {n: list(p.shape) for n, p in named.items()},
        "buffers": {n: list(b.shape) for n, b in model.named_buffers()},
        "norm_weights": sorted(norm_weights),
        "grad_none": g_none,
        "grad_zero": g_zero,
        # attention key biases have a true gradient of 0 (softmax ignores a per-query constant): what
        # upstream leaves there is rounding noise, so compare these (and the k rows of the ViT's fused
        # query_key_value.bias) with an absolute tolerance
        "grad_rounding_only": [n for n, t in g.items() if n not in g_zero and float(t.abs().max()) < 1e-6],
        "decay_parameters": decay,
        "no_decay_parameters": [n for n in named if n not in decay],
        "textonly_loss": tout.loss.item(),
        "textonly_spliced_lengths": [int(x) for x in text_batch["attention_mask"].sum(1)],
        "textonly_grad_none": tg_none,
        "textonly_grad_zero": tg_zero,
        "adamw": {"lr": ADAMW["lr"], "betas": list(ADAMW["betas"]), "eps": ADAMW["eps"],
                  "weight_decay": ADAMW["weight_decay"], "weight_decay_group": "decay_parameters",
                  "clip": None, "steps": ADAMW["steps"], "losses": adamw_losses, "loss_after": adamw_after},
        "tiny_owl2": {"shards": sorted(set(hf_index["weight_map"].values())),
                      "total_size": hf_index["metadata"]["total_size"],
                      "reload_logits_equal": reload_equal, "reload_logits_maxdiff": reload_maxdiff},
        "converter": {"loss": cout.loss.item(), "not_written": not_written,
                      "shards": sorted(os.path.basename(f) for f in os.listdir(d_conv) if f.endswith(".bin")),
                      "matches_bf16_rounded_load_state_dict": converter_equal,
                      "logits_maxdiff_vs_fp32": float((cout.logits - out.logits).abs().max())},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)

    total = sum(os.path.getsize(os.path.join(r, fn)) for r, _, fs in os.walk(OUT) for fn in fs)
    print(f"loss {out.loss.item():.6f}  textonly {tout.loss.item():.6f}  converter {cout.loss.item():.6f}  "
          f"adamw {['%.6f' % x for x in adamw_losses]} -> {adamw_after:.6f}")
    print(f"spliced lengths {spliced_lengths} of {out.logits.shape[1]}; grad None {len(g_none)}, zero {g_zero}")
    print(f"text-only: grad None {len(tg_none)}, zero {len(tg_zero)}; reload equal {reload_equal}, "
          f"converter == bf16 load_state_dict {converter_equal}")
    print(f"{len(ref)} tensors in reference.safetensors; {total / 1e6:.2f} MB under {os.path.relpath(OUT, ROOT)}")


def upstream_commit():
    import subprocess
    d = os.environ.get("MPLUG_OWL_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(mplug_owl2.__file__)))
    try:
        return subprocess.run(["git", "-C", d, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return "unknown"


if __name__ == "__main__":
    main()
