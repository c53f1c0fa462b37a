"""Reference data for vlm.c's Phi-3 decoder (tests/fixtures/phi3).

One tiny random Phi3ForCausalLM from transformers 4.41.2 (torch 2.15.0, CPU,
fp32, eager attention), made by tools/make_phi3_fixtures.sh in tools/.venv-phi3:
hidden 32, intermediate 48, 2 layers, 4 heads / 2 KV heads (GQA, head_dim 8),
vocab 101, rope_theta 10000 with rope_scaling None (Phi3RotaryEmbedding, the
default inv_freq = 1 / theta^(2i/head_dim), i < head_dim/2, full head_dim rotated,
rotate_half layout), rms_norm_eps 1e-5, hidden_act silu, sliding_window 5,
untied lm_head, pad 0 (nn.Embedding padding_idx 0: its row is zero and gets no
gradient), no dropout. After transformers' init (std 0.02) every >=2-D weight is
multiplied by 10 (as tools/make_model_fixtures.py does) and every RMSNorm weight
is set to 1 + 0.1 * N(0, 1) so the norms are exercised; the saved checkpoint holds
these final weights. Fused layouts: self_attn.qkv_proj.weight rows are
[q (heads*head_dim) | k (kv_heads*head_dim) | v (kv_heads*head_dim)];
mlp.gate_up_proj.weight rows are [gate (intermediate) | up (intermediate)],
out = down_proj(up * silu(gate)).

The batch: 2 right-padded sequences of lengths 12 and 7 (ids in [3, 101), pad id
0, attention_mask 1 on real tokens, position ids 0..T-1 as HF defaults to),
labels = ids with the first 3 positions and the padding set to -100.

Recorded in tests/fixtures/phi3/reference.safetensors:
  batch.input_ids, batch.attention_mask, batch.labels   int32, (2, 12)
  ref.logits          (19, 101) fp32: the logits at every real position, rows of
                      sequence 0 (positions 0..11) then sequence 1 (0..6); the same
                      flattening as tools/make_model_fixtures.py's ref.logits
  ref.loss            (1,): HF's loss, cross-entropy of logits[:, :-1] against
                      labels[:, 1:], mean over the labels that are not -100
  ref.logits_no_window (19, 101): the same weights and batch with sliding_window None
  ref.rope_inv_freq   (head_dim/2,): the inv_freq buffer the attention used
  grad.<name>         the gradient of every parameter after ref.loss.backward()
                      (names as in model.safetensors)
tests/fixtures/phi3/expected.json: versions, config, parameter names and shapes,
the sliding-window rule read from the installed transformers source, its
empirical check, the loss and the no-window loss.
tests/fixtures/phi3/tiny_phi3: config.json + model.safetensors (save_pretrained,
generation_config.json removed).
"""
import inspect
import json
import os
import shutil

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import Phi3Config, Phi3ForCausalLM
from transformers.modeling_attn_mask_utils import AttentionMaskConverter, _prepare_4d_causal_attention_mask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "phi3")
WINDOW = 5
LENGTHS = (12, 7)
PROMPT = 3  # the first labels masked like a prompt

CONFIG = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=101, max_position_embeddings=64,
              original_max_position_embeddings=64, rope_theta=10000.0, rope_scaling=None, rms_norm_eps=1e-5,
              sliding_window=WINDOW, tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2,
              attention_dropout=0.0, resid_pdrop=0.0, embd_pdrop=0.0, hidden_act="silu")


def make_config(window):
    cfg = Phi3Config(**{**CONFIG, "sliding_window": window})
    cfg._attn_implementation = "eager"
    return cfg


def build():
    torch.manual_seed(1234)
    model = Phi3ForCausalLM(make_config(WINDOW)).float()
    gen = torch.Generator().manual_seed(4321)
    with torch.no_grad():  # init std 0.02 makes every logit alike: widen it; perturb the norms
        for n, p in model.named_parameters():
            if p.dim() >= 2:
                p.mul_(10.0)
            else:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
    return model


def make_batch():
    gen = torch.Generator().manual_seed(99)
    T = max(LENGTHS)
    ids = torch.zeros(len(LENGTHS), T, dtype=torch.long)  # pad id 0
    mask = torch.zeros(len(LENGTHS), T, dtype=torch.long)
    labels = torch.full((len(LENGTHS), T), -100, dtype=torch.long)
    for b, n in enumerate(LENGTHS):
        ids[b, :n] = torch.randint(3, CONFIG["vocab_size"], (n,), generator=gen)
        mask[b, :n] = 1
        labels[b, PROMPT:n] = ids[b, PROMPT:n]
    return ids, mask, labels


def real_rows(logits, mask):
    return torch.cat([logits[b, : int(mask[b].sum())] for b in range(logits.shape[0])]).contiguous()


def window_rule():
    """Which keys the installed eager Phi-3 mask lets query i see (no cache), read off the mask helper."""
    src = inspect.getsource(AttentionMaskConverter._make_causal_mask)
    assert "diagonal = past_key_values_length - sliding_window - 1" in src, src
    T = 12
    m = _prepare_4d_causal_attention_mask(torch.ones(1, T, dtype=torch.long), (1, T), torch.zeros(1, T, 1),
                                          0, sliding_window=WINDOW)[0, 0]
    visible = {i: [j for j in range(T) if m[i, j] == 0] for i in range(T)}
    for i in range(T):
        assert visible[i] == list(range(max(0, i - WINDOW), i + 1)), (i, visible[i])
    return {
        "source": "transformers/models/phi3/modeling_phi3.py Phi3Model.forward (eager and sdpa) calls "
                  "_prepare_4d_causal_attention_mask(..., sliding_window=config.sliding_window); "
                  "AttentionMaskConverter._make_causal_mask: diagonal = past_key_values_length - sliding_window - 1; "
                  "mask.masked_fill_(torch.tril(ones, diagonal=diagonal), finfo.min)",
        "rule": "query i (absolute position, no cache) sees key j iff i - sliding_window <= j <= i "
                "(and attention_mask[j] == 1): j <= i - sliding_window - 1 is masked, so a full window is "
                "sliding_window + 1 keys including i itself",
        "visible_keys_full_window": WINDOW + 1,
        "visible_keys_query_11": visible[11],
        "flash_attention_2_note": "Phi3FlashAttention2 passes window_size=(sliding_window, sliding_window) to "
                                  "flash_attn: the same sliding_window + 1 keys (not used here)",
    }


def empirical(model, ids, mask):
    """Sequence 0 (length 12), query 11: does changing one token change the layer-0 attention output / logits?"""
    def run(x):
        with torch.no_grad():
            o = model(input_ids=x, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        return o
    base = run(ids)
    probs = base.attentions[0][0, :, 11]  # layer 0, sequence 0, query 11, all heads
    nonzero = sorted(set(int(j) for j in torch.nonzero(probs > 0)[:, 1]))
    res = {"layer0_attention_probs_nonzero_keys_query_11": nonzero}

    def changed(pos):
        x = ids.clone()
        x[0, pos] = 3 + (int(x[0, pos]) - 3 + 17) % (CONFIG["vocab_size"] - 3)
        o = run(x)
        h1 = float((o.hidden_states[1][0, 11] - base.hidden_states[1][0, 11]).abs().max())
        lg = float((o.logits[0, 11] - base.logits[0, 11]).abs().max())
        return {"layer0_output_max_abs_change": h1, "logits_max_abs_change": lg}
    i = 11
    res["change_token_i_minus_window"] = {"position": i - WINDOW, **changed(i - WINDOW)}
    res["change_token_i_minus_window_minus_1"] = {"position": i - WINDOW - 1, **changed(i - WINDOW - 1)}
    res["change_token_i_minus_2_window"] = {"position": i - 2 * WINDOW, **changed(i - 2 * WINDOW)}
    res["change_token_i_minus_2_window_minus_1"] = {"position": i - 2 * WINDOW - 1, **changed(i - 2 * WINDOW - 1)}
    assert nonzero == list(range(i - WINDOW, i + 1)), nonzero
    assert res["change_token_i_minus_window"]["layer0_output_max_abs_change"] > 0
    assert res["change_token_i_minus_window_minus_1"]["layer0_output_max_abs_change"] == 0
    assert res["change_token_i_minus_window_minus_1"]["logits_max_abs_change"] > 0  # through layer 1's window
    assert res["change_token_i_minus_2_window"]["logits_max_abs_change"] > 0
    assert res["change_token_i_minus_2_window_minus_1"]["logits_max_abs_change"] == 0
    res["summary"] = (f"layer 0 at query 11 attends exactly to keys {nonzero}: its output changes when token "
                      f"{i - WINDOW} changes and is bitwise unchanged when token {i - WINDOW - 1} changes; with 2 "
                      f"layers the logits at 11 depend on tokens {i - 2 * WINDOW}..11 (token {i - WINDOW - 1} "
                      f"reaches 11 through layer-0 positions {i - WINDOW}..{i - 1}), and token {i - 2 * WINDOW - 1} "
                      f"leaves them bitwise unchanged")
    return res


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    d = os.path.join(OUT, "tiny_phi3")
    os.makedirs(d)
    model = build()
    model.save_pretrained(d, safe_serialization=True)
    gc = os.path.join(d, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
    # the saved directory loads back to the same function
    back = Phi3ForCausalLM.from_pretrained(d, attn_implementation="eager").float()
    assert back.config.sliding_window == WINDOW and back.config._attn_implementation == "eager"

    ids, mask, labels = make_batch()
    model.train()  # no dropout in this config
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    logits = real_rows(out.logits.detach(), mask)
    with torch.no_grad():
        assert torch.equal(real_rows(back(input_ids=ids, attention_mask=mask).logits, mask), logits)
    # the same loss by hand: shifted, mean over labels != -100
    sl, st = out.logits.detach()[:, :-1].reshape(-1, CONFIG["vocab_size"]), labels[:, 1:].reshape(-1)
    keep = st != -100
    by_hand = torch.nn.functional.cross_entropy(sl[keep].double(), st[keep], reduction="sum") / keep.sum()
    assert abs(float(by_hand) - float(out.loss.detach())) < 1e-5

    nowin = Phi3ForCausalLM(make_config(None)).float()
    nowin.load_state_dict(model.state_dict(), strict=True)
    nowin.eval()
    with torch.no_grad():
        o2 = nowin(input_ids=ids, attention_mask=mask, labels=labels)
    logits_nw = real_rows(o2.logits, mask)
    # per position: how far the windowed logits are from the unwindowed ones; the first that differs
    diff = []
    for b, n in enumerate(LENGTHS):
        for t in range(n):
            diff.append(float((out.logits[b, t].detach() - o2.logits[b, t]).abs().max()))
    off = 0
    first_diff = []
    for n in LENGTHS:
        row = diff[off:off + n]
        first_diff.append(next((t for t, v in enumerate(row) if v > 0), None))
        off += n

    rot = model.model.layers[0].self_attn.rotary_emb
    inv_freq = rot.inv_freq.detach().clone().float()
    head_dim = CONFIG["hidden_size"] // CONFIG["num_attention_heads"]
    assert torch.allclose(inv_freq, 1.0 / (CONFIG["rope_theta"] ** (torch.arange(0, head_dim, 2).float() / head_dim)))

    tensors = {"batch.input_ids": ids.int(), "batch.attention_mask": mask.int(), "batch.labels": labels.int(),
               "ref.logits": logits, "ref.loss": out.loss.detach().reshape(1),
               "ref.logits_no_window": logits_nw, "ref.rope_inv_freq": inv_freq}
    params = {}
    for n, p in model.named_parameters():
        tensors["grad." + n] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        params[n] = list(p.shape)
    assert float(tensors["grad.model.embed_tokens.weight"][0].abs().max()) == 0.0  # padding_idx row
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "reference.safetensors"))

    with open(os.path.join(d, "config.json")) as f:
        saved_config = json.load(f)
    summary = {
        "generator": "tools/make_phi3_fixtures.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "safetensors": safetensors.__version__},
        "attn_implementation": "eager", "dtype": "float32", "seed": 1234,
        "weights": "transformers init (std 0.02) then >=2-D weights x10, RMSNorm weights 1 + 0.1*N(0,1) "
                   "(generator seed 4321); embed_tokens row 0 (padding_idx) is zero",
        "config": saved_config,
        "parameters": params,
        "fused_layouts": {
            "self_attn.qkv_proj.weight": "rows [0, H*D) = q, [H*D, H*D + KV*D) = k, [H*D + KV*D, H*D + 2*KV*D) = v",
            "mlp.gate_up_proj.weight": "rows [0, I) = gate, [I, 2I) = up; mlp(x) = down_proj(up * silu(gate))",
        },
        "rope": {"type": "default (rope_scaling None -> Phi3RotaryEmbedding)", "rope_theta": CONFIG["rope_theta"],
                 "head_dim": head_dim, "rotary_dim": head_dim, "partial_rotary_factor": None,
                 "layout": "rotate_half: cos/sin = cat(freqs, freqs); x*cos + rotate_half(x)*sin",
                 "inv_freq": [float(x) for x in inv_freq], "position_ids": "0..T-1 per row (HF default)"},
        "batch": {"lengths": list(LENGTHS), "padding": "right, id 0", "labels": f"first {PROMPT} positions and "
                  "padding are -100", "n_label_tokens_in_loss": int(keep.sum())},
        "logits_layout": "ref.logits and ref.logits_no_window are (sum(lengths), vocab): the real positions of "
                         "sequence 0 then sequence 1, in order",
        "loss": float(out.loss.detach()),
        "loss_no_window": float(o2.loss),
        "sliding_window": {**window_rule(), **{"empirical": empirical(model, ids, mask)},
                           "first_position_whose_logits_differ_without_window": first_diff,
                           "max_abs_logit_diff_window_vs_none": max(diff)},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("loss", float(out.loss.detach()), "loss_no_window", float(o2.loss), "first diff", first_diff)


if __name__ == "__main__":
    main()
