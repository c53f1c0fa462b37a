"""Real-size, random-weight OLA-VLM teachers for make bench's teacher section
(scripts/bench.sh teachers), written once into OUT (build/bench/teachers), the way
users have the real ones (tools/.venv-ola: torch 2.15.0 CPU, transformers 4.41.2):

  OUT/depth/depth_anything_v2_vitl.pth
      torch.save(DepthAnythingV2(encoder="vitl").state_dict()): upstream OLA-VLM's own
      Depth-Anything-v2 (SHI-Labs/OLA-VLM 6032a6c, ola_vlm/model/aux_heads/depth_anything_v2,
      from the checkout in OLA_VLM_DIR), DINOv2 ViT-L/14 (1024 wide, 24 blocks, 16 heads) with
      its DPT head (features 256, out_channels [256, 512, 1024, 1024]), as
      depth_anything_v2_vitl.pth is
  OUT/seg/  config.json, pytorch_model.bin, preprocessor_config.json
      OneFormerForUniversalSegmentation.save_pretrained with COCO Swin-L's backbone (embed 192,
      depths [2, 2, 18, 2], heads [6, 12, 24, 48], window 12, pretrained at 384), the rest of
      OneFormer as small as its config allows (only the backbone runs for the target), and its
      OneFormerImageProcessor as COCO Swin-L's conversion writes it (shortest edge 800, longest
      1333, COCO's mean / std); OUT/seg_classes/coco_panoptic.json the class names the processor
      reads at construction (the hub's shi-labs/oneformer_demo otherwise)
  OUT/gen/image_encoder/  config.json, model.fp16.safetensors
      CLIPVisionModelWithProjection with OpenCLIP ViT-H/14's config (hidden 1280, 32 layers, 16
      heads, intermediate 5120, projection 1024, image 224, patch 14, gelu) saved in float16 with
      variant="fp16", what SD-2.1-unCLIP's pipeline loads upstream
  OUT/gen/feature_extractor/  CLIPImageProcessor at 224 (SD-2.1-unCLIP's)

Weights: each library's own initialisation (seeded), then every 1-D parameter (biases, norm
weights, LayerScale gammas) moved by N(0, 0.05) and Swin's relative position bias tables
(zeros at init) drawn N(0, 1), so every tensor of the computed path matters. A teacher already
in OUT is left alone; each is written into NAME.tmp and renamed when complete.
Usage: python make_bench_teachers.py OUT
"""
import json
import os
import shutil
import sys
import time

import torch
from transformers import (CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection, OneFormerConfig,
                          OneFormerForUniversalSegmentation, OneFormerImageProcessor, SwinConfig)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLA = os.environ.get("OLA_VLM_DIR", os.path.join(ROOT, "tools", ".cache", "OLA-VLM"))

SWIN_L = dict(image_size=384, patch_size=4, num_channels=3, embed_dim=192, depths=[2, 2, 18, 2],
              num_heads=[6, 12, 24, 48], window_size=12, mlp_ratio=4.0, qkv_bias=True, hidden_act="gelu",
              use_absolute_embeddings=False, drop_path_rate=0.3, out_features=["stage1", "stage2", "stage3", "stage4"])
VIT_H = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16, image_size=224,
             patch_size=14, projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5, num_channels=3)
PIXEL_MEAN, PIXEL_STD = [123.675, 116.280, 103.530], [58.395, 57.120, 57.375]  # OneFormer's COCO configs
CLASSES = {"0": {"isthing": 1, "name": "person"}, "1": {"isthing": 0, "name": "sky"}, "2": {"isthing": 0, "name": "road"}}


def perturb(model, seed, prefix=""):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if not n.startswith(prefix):
                continue
            if "relative_position_bias_table" in n:
                p.copy_(torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.add_(0.05 * torch.randn(p.shape, generator=g))


def make_depth(d):
    sys.path.insert(0, os.path.join(OLA, "ola_vlm", "model", "aux_heads"))
    import depth_anything_v2.dpt as dpt  # upstream's package alone (importing ola_vlm pulls in the whole model)
    torch.manual_seed(0)
    model = dpt.DepthAnythingV2(encoder="vitl").eval()
    perturb(model, 1)
    torch.save(model.state_dict(), os.path.join(d, "depth_anything_v2_vitl.pth"))


def make_seg(d):
    torch.manual_seed(2)
    cfg = OneFormerConfig(backbone_config=SwinConfig(**SWIN_L).to_dict(), num_queries=4, conv_dim=32, mask_dim=32,
                          hidden_dim=32, encoder_feedforward_dim=16, encoder_layers=1, decoder_layers=2,
                          num_attention_heads=2, dim_feedforward=16, text_encoder_width=8, text_encoder_num_layers=1,
                          text_encoder_vocab_size=64, text_encoder_context_length=8, text_encoder_n_ctx=2,
                          task_seq_len=8, query_dec_layers=1, num_labels=3,
                          id2label={0: "person", 1: "sky", 2: "road"}, label2id={"person": 0, "sky": 1, "road": 2})
    model = OneFormerForUniversalSegmentation(cfg).float().eval()
    perturb(model, 3, "model.pixel_level_module.encoder.")
    model.save_pretrained(d, safe_serialization=False)  # pytorch_model.bin, as shi-labs/oneformer_coco_swin_large
    classes = os.path.join(os.path.dirname(d), "seg_classes")
    os.makedirs(classes, exist_ok=True)
    with open(os.path.join(classes, "coco_panoptic.json"), "w") as f:
        json.dump(CLASSES, f)
    proc = OneFormerImageProcessor(image_mean=(torch.tensor(PIXEL_MEAN) / 255).tolist(),
                                   image_std=(torch.tensor(PIXEL_STD) / 255).tolist(), size=800, max_size=1333,
                                   num_labels=133, ignore_index=255, class_info_file="coco_panoptic.json",
                                   repo_path=classes)
    proc.repo_path = "shi-labs/oneformer_demo"  # as the conversion writes it, not this machine's folder
    proc.save_pretrained(d)


def make_gen(d):
    torch.manual_seed(4)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**VIT_H)).eval()
    perturb(model, 5)
    model.half().save_pretrained(os.path.join(d, "image_encoder"), variant="fp16")  # model.fp16.safetensors
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
        os.path.join(d, "feature_extractor"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in (("depth", make_depth), ("seg", make_seg), ("gen", make_gen)):
        final = os.path.join(out, name)
        if os.path.isdir(final):
            continue
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        t0 = time.perf_counter()
        make(tmp)
        os.rename(tmp, final)
        size = sum(os.path.getsize(os.path.join(dp, n)) for dp, _, ns in os.walk(final) for n in ns)
        print(f"wrote {final} ({size / 2**20:.0f} MB) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
