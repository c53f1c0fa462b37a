"""Reference data for vlm.c's OLA-VLM seg teacher (tests/fixtures/teachers_seg).

OLA-VLM's seg target (SHI-Labs/OLA-VLM, ola_vlm/model/language_model/base_ola_vlm.py
_get_seg_targets, and ola_vlm/model/aux_heads/oneformer_head.py OneFormerHead.forward_features
-> AuxOneFormerPixelLevelModule.forward(return_features=True)), restated in PyTorch on
transformers' own modules (transformers 4.41.2, torch 2.15.0 CPU fp32, Pillow 10.4.0):

    img = pil_rgb.resize((768, 768))                          # Pillow's default filter: BICUBIC
    pixel_values = OneFormerProcessor(img, ["panoptic"])["pixel_values"]   # its image processor:
        # resize (shortest_edge / longest_edge, Pillow on uint8, the config's resample),
        # rescale (float64 product, float32), normalize (float32), CHW, pad (one image: none)
    maps = OneFormerModel.pixel_level_module.encoder(pixel_values).feature_maps   # SwinBackbone
    target = F.interpolate(maps[-1], size=(24, 24), mode="bilinear", align_corners=False)

(OneFormerProcessor hands the images to its OneFormerImageProcessor unchanged; only the
task text goes to the tokenizer, so the image processor alone gives the same pixel_values.)

One tiny random OneFormerForUniversalSegmentation, save_pretrained (pytorch_model.bin, as the
real shi-labs/oneformer_coco_swin_large folder holds): Swin backbone embed_dim 6, depths
[2, 2, 2, 2] (each stage has a shifted block), num_heads [1, 2, 3, 4] (head sizes 6, 6, 8, 12),
window_size 6, layer_norm_eps 1e-3 (the blocks' norms use it; the embeddings', merges' and
stage norms are nn.LayerNorm's 1e-5), all four stages out; the rest of OneFormer as small as its
config allows. Weights: transformers' init, then the backbone's >=2-D weights x10, its norms'
weights 1 + 0.1 N(0,1) and biases 0.1 N(0,1), linear biases 0.1 N(0,1), relative position bias
tables N(0,1) (init zeros them).

Two paths, both on photos of ../shared/assets/images:
  small: the tiny folder's own processor (shortest_edge 54, longest_edge 90, BILINEAR, COCO's
    mean / std), test-only sizes: 48 instead of 768 before it, 5 x 5 instead of 24 x 24 after.
    54 px is padded to 56 by the patch embedding: 14 x 14 patches, stages 14, 7, 4, 2 padded
    to the window (18, 12, 6, 6), merges of odd sizes padded. Two photos, every stage recorded.
  coco: the processor COCO Swin-L's conversion writes (transformers' convert_to_hf_oneformer.py:
    size MIN_SIZE_TEST 800, max_size MAX_SIZE_TEST 1333, PIXEL_MEAN / 255, PIXEL_STD / 255 of
    OneFormer's COCO config), upstream's sizes 768 and 24: 800 px, 200 x 200 patches, stages
    200, 100, 50, 25 padded to 204, 102, 54, 30. One photo; rows of pixel_values and the target.

Written:
  tiny_oneformer/       config.json, pytorch_model.bin, preprocessor_config.json (save_pretrained)
  processor_coco/       preprocessor_config.json (OneFormerImageProcessor.save_pretrained)
  reference.safetensors
    small.N.pixel_values (3, 54, 54), small.N.stageS (C_S, H_S, W_S) S = 1..4 (feature_maps,
      after hidden_states_norms), small.N.target (48, 5, 5)             N = 0, 1
    coco.pixel_rows (3, 9, 800): pixel_values rows 0, 100, ..., 700, 799; coco.target (48, 24, 24)
    bilinear.down (37, 61, 3) uint8: photo 0 resized by Pillow BILINEAR to 61 x 37
  expected.json         versions, photos, sizes, the stage geometry, the checks made here
"""
import json
import os
import shutil
import tempfile

import numpy as np
import PIL
import safetensors
import torch
import torch.nn.functional as F
import transformers
from PIL import Image
from safetensors.torch import save_file
from transformers import (OneFormerConfig, OneFormerForUniversalSegmentation, OneFormerImageProcessor, OneFormerModel,
                          SwinConfig)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "teachers_seg")
PHOTOS = ["extreme_ironing.jpg", "211.jpg"]
PHOTO_DIR = os.path.join(ROOT, "..", "shared", "assets", "images")
PREFIX = "model.pixel_level_module.encoder."
SMALL_PRE, SMALL_SIDE = 48, 5
COCO_PRE, COCO_SIDE = 768, 24
COCO_ROWS = [0, 100, 200, 300, 400, 500, 600, 700, 799]
PIXEL_MEAN, PIXEL_STD = [123.675, 116.280, 103.530], [58.395, 57.120, 57.375]  # OneFormer's COCO configs

BACKBONE = dict(image_size=96, patch_size=4, num_channels=3, embed_dim=6, depths=[2, 2, 2, 2], num_heads=[1, 2, 3, 4],
                window_size=6, mlp_ratio=4.0, qkv_bias=True, hidden_act="gelu", use_absolute_embeddings=False,
                layer_norm_eps=1e-3, drop_path_rate=0.0, out_features=["stage1", "stage2", "stage3", "stage4"])


def class_info_dir():
    """OneFormerImageProcessor reads its class names from repo_path/class_info_file at construction (the
    hub's shi-labs/oneformer_demo otherwise): a tiny one, written to a temporary folder."""
    d = tempfile.mkdtemp(prefix="oneformer-classes-")
    info = {"0": {"isthing": 1, "name": "person"}, "1": {"isthing": 0, "name": "sky"}, "2": {"isthing": 0, "name": "road"}}
    with open(os.path.join(d, "coco_panoptic.json"), "w") as f:
        json.dump(info, f)
    return d


def build_model():
    torch.manual_seed(1234)
    cfg = OneFormerConfig(backbone_config=SwinConfig(**BACKBONE).to_dict(), num_queries=4, conv_dim=32, mask_dim=32,
                          hidden_dim=32, encoder_feedforward_dim=16, encoder_layers=1, decoder_layers=2,
                          num_attention_heads=2, dim_feedforward=16, text_encoder_width=8, text_encoder_num_layers=1,
                          text_encoder_vocab_size=64, text_encoder_context_length=8, text_encoder_n_ctx=2,
                          task_seq_len=8, query_dec_layers=1, num_labels=3,
                          id2label={0: "person", 1: "sky", 2: "road"}, label2id={"person": 0, "sky": 1, "road": 2})
    model = OneFormerForUniversalSegmentation(cfg).float().eval()
    gen = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if not n.startswith(PREFIX):
                continue
            if "relative_position_bias_table" in n:
                p.copy_(torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2:
                p.mul_(10.0)
            elif n.endswith(".weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return model


def load_processor(folder, classes):
    """OneFormerImageProcessor.from_pretrained, with the class names read from the local copy (from_pretrained's
    kwargs reach the processor only after its constructor has looked for them on the hub)."""
    d, _ = OneFormerImageProcessor.get_image_processor_dict(folder)
    return OneFormerImageProcessor.from_dict({**d, "repo_path": classes})


def photo(i):
    return Image.open(os.path.join(PHOTO_DIR, PHOTOS[i])).convert("RGB")


def upstream_target(encoder, processor, img, pre, side):
    img = img.resize((pre, pre))  # upstream: img.resize((768, 768))
    inputs = processor(img, ["panoptic"], return_tensors="pt")
    pv = inputs["pixel_values"].float()
    with torch.no_grad():
        maps = encoder(pv).feature_maps
        target = F.interpolate(maps[-1], size=(side, side), mode="bilinear", align_corners=False)
    return pv, maps, target


def stage_geometry(patches, window, n):
    rows, h = [], patches
    for s in range(n):
        pad = (window - h % window) % window
        rows.append({"stage": s + 1, "tokens_side": h, "padded_side": h + pad, "windows_per_side": (h + pad) // window,
                     "shift_on_odd_blocks": window // 2, "merge_pads": bool(h % 2) if s < n - 1 else None})
        h = (h + 1) // 2
    return rows


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    tiny, coco = os.path.join(OUT, "tiny_oneformer"), os.path.join(OUT, "processor_coco")
    os.makedirs(tiny)
    os.makedirs(coco)
    classes = class_info_dir()

    model = build_model()
    model.save_pretrained(tiny, safe_serialization=False)
    small_proc = OneFormerImageProcessor(size={"shortest_edge": 54, "longest_edge": 90}, resample=2,
                                         image_mean=(torch.tensor(PIXEL_MEAN) / 255).tolist(),
                                         image_std=(torch.tensor(PIXEL_STD) / 255).tolist(), ignore_index=255,
                                         class_info_file="coco_panoptic.json", repo_path=classes, num_text=3)
    # as the conversion's: the class names' hub dataset, not this machine's temporary folder
    small_proc.repo_path = "shi-labs/oneformer_demo"
    small_proc.save_pretrained(tiny)
    coco_proc = OneFormerImageProcessor(image_mean=(torch.tensor(PIXEL_MEAN) / 255).tolist(),
                                        image_std=(torch.tensor(PIXEL_STD) / 255).tolist(), size=800, max_size=1333,
                                        num_labels=133, ignore_index=255, class_info_file="coco_panoptic.json",
                                        repo_path=classes)
    coco_proc.repo_path = "shi-labs/oneformer_demo"
    coco_proc.save_pretrained(coco)

    # what upstream loads: OneFormerHead (an OneFormerModel) from the folder, its processor from the folder
    head = OneFormerModel.from_pretrained(tiny).float().eval()
    encoder = head.pixel_level_module.encoder
    assert type(encoder).__name__ == "SwinBackbone", type(encoder)
    sd = model.state_dict()
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, sd[PREFIX + k]), k
    small, cocop = load_processor(tiny, classes), load_processor(coco, classes)
    assert small.resample == 2 and cocop.resample == 2 and cocop.size == {"shortest_edge": 800, "longest_edge": 1333}

    tensors, checks = {}, {}
    for i in range(len(PHOTOS)):
        pv, maps, target = upstream_target(encoder, small, photo(i), SMALL_PRE, SMALL_SIDE)
        assert pv.shape == (1, 3, 54, 54), pv.shape
        tensors[f"small.{i}.pixel_values"] = pv[0]
        for s, m in enumerate(maps):
            tensors[f"small.{i}.stage{s + 1}"] = m[0]
        tensors[f"small.{i}.target"] = target[0]
        # pixel_values by hand: Pillow BICUBIC to 48, BILINEAR to 54, x (1/255) in float64 -> float32, then
        # (x - mean) / std in float32
        u8 = np.asarray(photo(i).resize((SMALL_PRE, SMALL_PRE)).resize((54, 54), Image.BILINEAR))
        x = (u8.astype(np.float64) * (1 / 255)).astype(np.float32)
        x = (x - np.array(small.image_mean, np.float32)) / np.array(small.image_std, np.float32)
        checks[f"small.{i}.pixel_values_by_hand_equal"] = bool(np.array_equal(x.transpose(2, 0, 1), pv[0].numpy()))
        assert checks[f"small.{i}.pixel_values_by_hand_equal"]
    # the batch of two, as vlm runs it: each image alone (upstream's loop); the backbone batched gives the same
    with torch.no_grad():
        both = encoder(torch.stack([tensors["small.0.pixel_values"], tensors["small.1.pixel_values"]])).feature_maps[-1]
    checks["batched_backbone_max_abs_diff"] = float((both[1] - tensors["small.1.stage4"]).abs().max())

    pv, maps, target = upstream_target(encoder, cocop, photo(0), COCO_PRE, COCO_SIDE)
    assert pv.shape == (1, 3, 800, 800), pv.shape
    assert [tuple(m.shape[-2:]) for m in maps] == [(200, 200), (100, 100), (50, 50), (25, 25)]
    tensors["coco.pixel_rows"] = pv[0][:, COCO_ROWS, :]
    tensors["coco.target"] = target[0]
    tensors["bilinear.down"] = torch.from_numpy(np.asarray(photo(0).resize((61, 37), Image.BILINEAR)).copy())
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "reference.safetensors"))

    with open(os.path.join(tiny, "config.json")) as f:
        saved = json.load(f)
    summary = {
        "generator": "tools/make_teacher_seg_fixtures.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__, "Pillow": PIL.__version__,
                     "numpy": np.__version__, "safetensors": safetensors.__version__},
        "upstream": "SHI-Labs/OLA-VLM base_ola_vlm.py _get_seg_targets + oneformer_head.py OneFormerHead.forward_features",
        "photos": PHOTOS,
        "backbone_config": saved["backbone_config"],
        "backbone_tensors": {k[len(PREFIX):]: list(v.shape) for k, v in sd.items() if k.startswith(PREFIX)},
        "small": {"pre_resize": SMALL_PRE, "side": SMALL_SIDE, "pixels": 54, "padded_pixels": 56,
                  "stages": stage_geometry(14, BACKBONE["window_size"], 4)},
        "coco": {"pre_resize": COCO_PRE, "side": COCO_SIDE, "pixels": 800, "rows": COCO_ROWS,
                 "stages": stage_geometry(200, BACKBONE["window_size"], 4)},
        "swin_backbone_note": "SwinBackbone.forward calls its encoder with always_partition=True: SwinLayer never runs "
                              "set_shift_and_window_size, so every block keeps window_size and shift window_size // 2 "
                              "on odd blocks even where a stage is no larger than the window (it is padded up to it)",
        "checks": checks,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    shutil.rmtree(classes)
    total = sum(os.path.getsize(os.path.join(dp, n)) for dp, _, ns in os.walk(OUT) for n in ns)
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
