"""Trains LoRA with `vlm train --lora_enable True` from the start LLaVA's
scripts/v1_5/finetune_lora.sh uses (an LLM folder + a CLIP folder + PT's
mm_projector.bin, that script's flags at tiny sizes), then loads the output
folder with upstream LLaVA's own
llava.model.builder.load_pretrained_model(OUT, LLM, "llava-tiny-lora")
(transformers 4.37.2, PEFT 0.8.2, CPU) and compares the merged model's
next-token logits with `vlm forward --model OUT --ids ... --pixels ...` on a
vicuna_v1 prompt with 211.jpg (LLaVA's tokenizer_image_token and
process_images, pad) and a text-only one.

The start: tests/fixtures/model/tiny_gqa_llm, its vocabulary widened from
101 to the LLaMA-2 tokenizer's 32000 rows (rows 0-100 as they are, the rest
N(0, 0.02) seeded), with that tokenizer.model beside it (with 101 rows the
tokenizer's ids fall outside the embedding, and the loader's
resize_token_embeddings(len(tokenizer)) would grow it); tiny_gqa_clip plus
the preprocessor_config.json that LLaVA's CLIPVisionTower.load_model needs
(CLIPImageProcessor at the tower's 16 px); tiny_gqa_mm_projector.bin.

load_pretrained_model runs twice, its code unchanged:
  as it is   it forces torch_dtype float16 (its `else` when neither 8 nor 4 bit,
             set after the caller's kwargs, so a torch_dtype kwarg cannot win);
             logits compared with an fp16-sized tolerance (5e-2 relative)
  float32    the same call with the builder module's `torch` seen through a proxy
             whose float16 is float32 (every other name is torch's), so
             from_pretrained, the merge and vision_tower.to() run in fp32;
             logits compared at 1e-4 relative
Every nn.Module.load_state_dict call is observed (passed through unchanged):
the non_lora_trainables call (strict=False) must report no unexpected key and
none of mm_projector.* missing; PEFT's adapter call no unexpected key and no
lora_ key missing. The projector after loading must equal the file's, and
each wrapped linear must be base + (alpha / r) B A after merge_and_unload.
vlm's own image preprocessing (`vlm image preprocess --pad`, `vlm forward
--image --pad`) is compared with process_images too.

If the folder as written does not load, the error is printed and the check
fails; when its config.json lacks mm_hidden_size (which LLaVA's
initialize_vision_modules sets to the tower's width and build_vision_projector
reads), the rest runs on a copy with it added, OUT-mm_hidden_size.
Usage: tools/check_llava_lora_load.sh [WORKDIR]   (kept when given; VLM=path of vlm, default build/vlm)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "model")
IMAGES = os.path.join(os.path.dirname(ROOT), "shared", "assets", "images")
LLAMA2 = os.path.join(os.path.dirname(ROOT), "shared", "assets", "tokenizers", "llama2", "tokenizer.model")
VLM = os.environ.get("VLM", os.path.join(ROOT, "build", "vlm"))
VOCAB = 32000  # the LLaMA-2 tokenizer's
PHOTOS = ["211.jpg", "extreme_ironing.jpg", "llava_logo.png", "sausage.jpg", "waterview.jpg"]


def make_inputs(work):
    """LLM folder (vocab widened to the tokenizer's), CLIP folder (+ preprocessor_config.json), data.json."""
    llm, clip = os.path.join(work, "llm"), os.path.join(work, "clip")
    os.makedirs(llm, exist_ok=True)
    with open(os.path.join(FIXTURES, "tiny_gqa_llm", "config.json")) as f:
        conf = json.load(f)
    tensors = load_file(os.path.join(FIXTURES, "tiny_gqa_llm", "model.safetensors"))
    gen = torch.Generator().manual_seed(5)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        old = tensors[name]
        extra = torch.randn(VOCAB - old.shape[0], old.shape[1], generator=gen) * 0.02
        tensors[name] = torch.cat([old, extra]).contiguous()
    conf["vocab_size"] = VOCAB
    save_file(tensors, os.path.join(llm, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(llm, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    shutil.copyfile(LLAMA2, os.path.join(llm, "tokenizer.model"))
    shutil.copytree(os.path.join(FIXTURES, "tiny_gqa_clip"), clip, dirs_exist_ok=True)
    from transformers import CLIPImageProcessor
    with open(os.path.join(clip, "config.json")) as f:
        size = json.load(f)["image_size"]
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(clip)
    records = []
    for i in range(6):
        if i == 4:
            records.append({"id": "text4", "conversations": [{"from": "human", "value": "Count to 4."},
                                                             {"from": "gpt", "value": "4"}]})
        else:
            p = PHOTOS[i % 5]
            records.append({"id": f"img{i}", "image": p, "conversations": [
                {"from": "human", "value": f"<image>\nWhat is in picture {i}?"},
                {"from": "gpt", "value": f"The file {p}."}]})
    with open(os.path.join(work, "data.json"), "w") as f:
        json.dump(records, f, indent=1)
    return llm, clip


def train(work, llm, clip):
    """scripts/v1_5/finetune_lora.sh's flags at tiny sizes (no deepspeed / bf16 / wandb)."""
    out = os.path.join(work, "out")
    args = [VLM, "train", "--lora_enable", "True", "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0.05",
            "--mm_projector_lr", "2e-4", "--model_name_or_path", llm, "--version", "v1",
            "--data_path", os.path.join(work, "data.json"), "--image_folder", IMAGES, "--vision_tower", clip,
            "--pretrain_mm_mlp_adapter", os.path.join(FIXTURES, "tiny_gqa_mm_projector.bin"),
            "--mm_projector_type", "mlp2x_gelu", "--mm_vision_select_layer", "-2", "--mm_use_im_start_end", "False",
            "--mm_use_im_patch_token", "False", "--image_aspect_ratio", "pad", "--group_by_modality_length", "True",
            "--output_dir", out, "--per_device_train_batch_size", "2", "--max_steps", "3", "--save_strategy", "no",
            "--learning_rate", "2e-3", "--weight_decay", "0.", "--warmup_ratio", "0.03", "--lr_scheduler_type", "cosine",
            "--logging_steps", "1", "--model_max_length", "96", "--lazy_preprocess", "True"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"vlm train failed ({r.returncode}):\n{r.stderr[-4000:]}")
    print("vlm train: " + ", ".join(sorted(os.listdir(out))))
    return out



class Fp32Torch(types.ModuleType):
    """torch, except that float16 is float32: what builder.py sees for its forced torch_dtype."""

    def __getattr__(self, name):
        return getattr(torch, name)


def load(out, llm, fp32):
    """upstream's load_pretrained_model(out, llm, "llava-tiny-lora") on CPU; every load_state_dict call recorded."""
    import llava.model.builder as builder
    calls = []
    original = torch.nn.Module.load_state_dict

    def recording(self, state_dict, *args, **kwargs):
        result = original(self, state_dict, *args, **kwargs)
        calls.append((type(self).__name__, sorted(state_dict), list(result.missing_keys), list(result.unexpected_keys)))
        return result

    proxy = Fp32Torch("torch")
    proxy.float16 = torch.float32
    # from_pretrained sets torch's default dtype to its torch_dtype and does not put it back when the
    # model's __init__ raises: a failed load would leave float16 behind, and CLIPVisionTower.load_model
    # (from_pretrained without a torch_dtype) would then build the next tower in float16
    default = torch.get_default_dtype()
    torch.nn.Module.load_state_dict = recording
    if fp32:
        builder.torch = proxy
    try:
        tokenizer, model, processor, _ = builder.load_pretrained_model(out, llm, "llava-tiny-lora", device_map="cpu",
                                                                       device="cpu")
    finally:
        torch.nn.Module.load_state_dict = original
        builder.torch = torch
        torch.set_default_dtype(default)
    return tokenizer, model.eval(), processor, calls


def check_calls(calls, fails):
    """non_lora_trainables (the projector) and PEFT's adapters: nothing unexpected, nothing of theirs missing."""
    proj = [c for c in calls if c[0] == "LlavaLlamaForCausalLM"]
    peft = [c for c in calls if c[0] == "PeftModelForCausalLM"]
    if len(proj) != 1 or len(peft) != 1:
        fails.append(f"load_state_dict calls: {[c[0] for c in calls]}")
        return
    _, keys, missing, unexpected = proj[0]
    lost = [k for k in missing if ".mm_projector." in k]
    print(f"  non_lora_trainables: {keys}\n    unexpected {unexpected}; mm_projector missing {lost}"
          f" ({len(missing)} other keys missing, strict=False: the LLM's, loaded before)")
    if unexpected or lost or len(keys) != 4:
        fails.append("non_lora_trainables.bin did not load whole")
    _, keys, missing, unexpected = peft[0]
    lost = [k for k in missing if "lora_" in k]
    print(f"  adapters: {len(keys)} tensors; unexpected {unexpected}; lora_ missing {lost}")
    if unexpected or lost or not keys:
        fails.append("adapter_model.safetensors did not load whole")


def check_weights(model, llm, out, fails):
    """The projector is the file's; each wrapped linear is base + (alpha / r) B A; the rest is the base."""
    base = load_file(os.path.join(llm, "model.safetensors"))
    lora = load_file(os.path.join(out, "adapter_model.safetensors"))
    proj = torch.load(os.path.join(out, "non_lora_trainables.bin"), map_location="cpu")
    with open(os.path.join(out, "adapter_config.json")) as f:
        ac = json.load(f)
    scale = ac["lora_alpha"] / ac["r"]
    state = {k: v.float() for k, v in model.state_dict().items()}
    worst_proj = max((state[k[len("base_model.model."):]] - v.float()).abs().max().item() for k, v in proj.items())
    worst_merge, wrapped = 0.0, 0
    for name, w in base.items():
        a = lora.get(f"base_model.model.{name[:-len('.weight')]}.lora_A.weight")
        want = w if a is None else w + scale * lora[f"base_model.model.{name[:-len('.weight')]}.lora_B.weight"] @ a
        if a is not None:
            wrapped += 1
            if torch.equal(state[name], w):
                fails.append(f"{name}: unchanged by merge_and_unload")
        worst_merge = max(worst_merge, (state[name] - want).abs().max().item() / max(1.0, want.abs().max().item()))
    print(f"  projector vs non_lora_trainables.bin: max |diff| {worst_proj:.3g}; "
          f"{wrapped} wrapped linears: max rel |merged - (base + {scale:g} B A)| {worst_merge:.3g}")
    return worst_proj, worst_merge, wrapped


def prompts(tokenizer, processor, config, work):
    """LLaVA's own inputs: vicuna_v1 prompts through tokenizer_image_token, 211.jpg through process_images (pad)."""
    from PIL import Image
    from llava.constants import IMAGE_TOKEN_INDEX
    from llava.conversation import conv_templates
    from llava.mm_utils import process_images, tokenizer_image_token
    cases = []
    for text, image in (("<image>\nWhat is in picture 0?", "211.jpg"), ("Count to 4.", None)):
        conv = conv_templates["vicuna_v1"].copy()
        conv.append_message(conv.roles[0], text)
        conv.append_message(conv.roles[1], None)
        ids = tokenizer_image_token(conv.get_prompt(), tokenizer, IMAGE_TOKEN_INDEX, return_tensors="pt")
        pixels = None
        if image:
            pixels = process_images([Image.open(os.path.join(IMAGES, image)).convert("RGB")], processor, config)
            save_file({"pixel_values": pixels[0].contiguous()}, os.path.join(work, "pixels.safetensors"))
        cases.append((image or "text only", ids, pixels, image))
    return cases


def vlm_forward(out, ids, pixels_file=None, image=None):
    args = [VLM, "forward", "--model", out, "--ids", ",".join(str(int(i)) for i in ids), "--top", "5"]
    if pixels_file:
        args += ["--pixels", pixels_file]
    if image:
        args += ["--image", os.path.join(IMAGES, image), "--pad"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"vlm forward failed ({r.returncode}):\n{r.stderr[-4000:]}")
    top = []
    for line in r.stdout.splitlines()[1:]:
        i, p, logit = line.split()
        top.append((int(i), float(p[2:]), float(logit[len("logit="):])))
    return top


def compare(model, cases, tops, rel, label, fails):
    worst = 0.0
    for (name, ids, pixels, _), top in zip(cases, tops):
        with torch.no_grad():
            kw = {"images": pixels.to(model.dtype)} if pixels is not None else {}
            logits = model(input_ids=ids[None], **kw).logits[0, -1].double()
        probs = logits.softmax(-1)
        ref = logits.topk(5)
        mine = [t[0] for t in top]
        d = max(abs(logits[i].item() - l) / max(1.0, abs(logits[i].item())) for i, _, l in top)
        dp = max(abs(probs[i].item() - p) for i, p, _ in top)
        worst = max(worst, d)
        print(f"  {name}: {len(ids)} ids; LLaVA top 5 {ref.indices.tolist()} {[round(x, 6) for x in ref.values.tolist()]}\n"
              f"    vlm top 5 {mine} {[t[2] for t in top]}; max rel |logit diff| {d:.3g}, max |p diff| {dp:.2g}")
        if mine != ref.indices.tolist() and rel < 1e-3:
            fails.append(f"{label} {name}: top-5 ids differ")
        if d > rel:
            fails.append(f"{label} {name}: logits differ by {d:.3g} (> {rel:g})")
    return worst


def main():
    keep = len(sys.argv) > 1
    work = os.path.abspath(sys.argv[1]) if keep else tempfile.mkdtemp(prefix="llava-lora-")
    os.makedirs(work, exist_ok=True)
    fails = []
    try:
        llm, clip = make_inputs(work)
        out = train(work, llm, clip)
        with open(os.path.join(out, "config.json")) as f:
            conf = json.load(f)
        print("config.json: " + ", ".join(f"{k}={conf[k]}" for k in conf if k.startswith("mm_")))
        # 1. the folder as vlm wrote it, with the loader as it is (fp16)
        print(f"load_pretrained_model({out}, {llm}, 'llava-tiny-lora') as written, fp16 as the loader forces:")
        target = out
        try:
            loaded = load(out, llm, fp32=False)
        except Exception as e:  # noqa: BLE001  (reported, then retried on a mended copy)
            loaded = None
            fails.append(f"the folder as written does not load: {type(e).__name__}: {e}")
            print(f"  FAILED: {type(e).__name__}: {e}")
            if "mm_hidden_size" not in conf:  # what LLaVA's initialize_vision_modules writes: the tower's width
                target = out + "-mm_hidden_size"
                shutil.copytree(out, target, dirs_exist_ok=True)
                with open(os.path.join(clip, "config.json")) as f:
                    conf["mm_hidden_size"] = json.load(f)["hidden_size"]
                with open(os.path.join(target, "config.json"), "w") as f:
                    json.dump(conf, f, indent=2)
                print(f"  config.json lacks mm_hidden_size: going on with {target} (mm_hidden_size {conf['mm_hidden_size']})")
                loaded = load(target, llm, fp32=False)
        if loaded is None:
            raise SystemExit("FAILED: " + "; ".join(fails))
        tokenizer, model, processor, calls = loaded
        print(f"  loaded: {type(model).__name__} {model.dtype}, tokenizer {len(tokenizer)}, "
              f"lm_head {list(model.lm_head.weight.shape)} (no resize: {model.lm_head.weight.shape[0] == VOCAB})")
        if model.lm_head.weight.shape[0] != VOCAB:
            fails.append(f"embeddings resized to {model.lm_head.weight.shape[0]}")
        check_calls(calls, fails)
        cases = prompts(tokenizer, processor, model.config, work)
        pixels_file = os.path.join(work, "pixels.safetensors")
        tops = [vlm_forward(out, ids, pixels_file if px is not None else None) for _, ids, px, _ in cases]
        # vlm's own preprocessing of the image (--image --pad) against LLaVA's process_images
        own = vlm_forward(out, cases[0][1], image=cases[0][3])
        subprocess.run([VLM, "image", "preprocess", "--size", str(cases[0][2].shape[-1]), "--pad",
                        os.path.join(IMAGES, cases[0][3]), os.path.join(work, "vlm_pixels.safetensors")],
                       check=True, capture_output=True)
        dpx = (load_file(os.path.join(work, "vlm_pixels.safetensors"))["pixel_values"] - cases[0][2][0]).abs().max().item()
        print(f"  pixels: vlm image preprocess --pad vs LLaVA's process_images: max |diff| {dpx:.3g}; "
              f"vlm forward --image --pad gives the --pixels top 5: {own == tops[0]}")
        if dpx > 1e-5 or own != tops[0]:
            fails.append("vlm's image preprocessing differs from LLaVA's")
        compare(model, cases, tops, 5e-2, "fp16", fails)
        # 2. the same call in float32
        print("load_pretrained_model again, its float16 read as float32:")
        tokenizer, model, processor, calls = load(target, llm, fp32=True)
        print(f"  loaded: {type(model).__name__} {model.dtype}, vision tower {model.get_vision_tower().dtype}")
        check_calls(calls, fails)
        worst_proj, worst_merge, wrapped = check_weights(model, llm, out, fails)
        if worst_proj != 0 or worst_merge > 1e-6 or wrapped == 0:
            fails.append("weights after loading are not the files'")
        worst = compare(model, cases, tops, 1e-4, "fp32", fails)
        print(f"max rel |logit diff| (fp32) {worst:.3g}")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    for f in fails:
        print("FAILED: " + f)
    print("OK" if not fails else "FAILED")
    sys.exit(0 if not fails else 1)


if __name__ == "__main__":
    main()
