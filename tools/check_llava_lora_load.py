"""Trains LoRA with `vlm train --lora_enable True` from the start LLaVA's
scripts/v1_5/finetune_lora.sh uses (an LLM folder + a CLIP folder + PT's
mm_projector.bin), then loads the output folder with upstream LLaVA's own
llava.model.builder.load_pretrained_model(OUT, LLM, "llava-tiny-lora")
(transformers 4.37.2, PEFT 0.8.2, CPU) and compares the merged model's
next-token logits with `vlm forward --model OUT` on one image prompt and one
text-only prompt.

The start: tests/fixtures/model/tiny_gqa_llm, its vocabulary widened from
101 to the LLaMA-2 tokenizer's 32000 rows (rows 0-100 as they are, the rest
N(0, 0.02) seeded), with that tokenizer.model beside it; tiny_gqa_clip plus
the preprocessor_config.json that LLaVA's CLIPVisionTower needs
(CLIPImageProcessor at the tower's 16 px); tiny_gqa_mm_projector.bin.

load_pretrained_model runs twice, its code unchanged:
  as it is   it forces torch_dtype float16 (its `else` when neither 8 nor 4 bit);
             logits compared with an fp16-sized tolerance
  float32    the same call with the builder module's `torch` seen through a proxy
             whose float16 is float32 (every other name is torch's), so
             from_pretrained, the merge and vision_tower.to() run in fp32;
             logits compared at 1e-4 relative
Every nn.Module.load_state_dict call is observed (passed through unchanged):
the non_lora_trainables call (strict=False) must report no unexpected key and
none of mm_projector.* missing; PEFT's adapter call no unexpected key and no
lora_ key missing. The projector after loading must equal the file's, and
merge_and_unload must have changed every wrapped linear.

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


def main():
    keep = len(sys.argv) > 1
    work = os.path.abspath(sys.argv[1]) if keep else tempfile.mkdtemp(prefix="llava-lora-")
    os.makedirs(work, exist_ok=True)
    try:
        llm, clip = make_inputs(work)
        out = train(work, llm, clip)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
