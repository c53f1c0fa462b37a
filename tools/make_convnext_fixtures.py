"""Reference data for vlm.c's CLIP-ConvNeXt vision tower (tests/fixtures/convnext).

OLA-VLM's OLA-VLM-CLIP-ConvNeXT-Llama3-8b uses open_clip's
CLIP-convnext_xxlarge-laion2B-s34B-b82K-augreg-soup at 768 px as LLaVA's vision tower:
upstream's CLIPConvNextVisionTower (ola_vlm/model/multimodal_encoder/clip_convnext_encoder.py)
loads it with its openclip_utils.create_model_from_pretrained("hf-hub:laion/...") and runs
_forward = trunk.stem -> trunk.stages -> trunk.norm_pre -> flatten(2, 3).permute(0, 2, 1).

Here a tiny random open_clip CLIP with the same vision config as the hub's
(timm_model_name convnext_xxlarge, timm_pool "", timm_proj linear, timm_drop_path 0.1) is
built, with timm.create_model given depths DEPTHS and dims DIMS for it (convnext_xxlarge's
own norm_eps 1e-5 stays), and written as the hub layout (open_clip's push_to_hf_hub.save_for_hf
without the tokenizer: open_clip_config.json by save_config_for_hf, open_clip_pytorch_model.bin
by torch.save of the state_dict, open_clip_model.safetensors by safetensors' save_file).
Upstream's own tower (run from an OLA-VLM checkout, $OLA_VLM_DIR, imported without its package
__init__) then loads that folder exactly as it loads the hub (open_clip's download is pointed at
the folder), with the name "CLIP-convnext_xxlarge-res64": image size 64 from the -res suffix
(the config's image_size 48 is the pretraining size, which upstream overrides).

Weights: timm's init gives layer scale 1e-6 (every block a no-op), so every tensor is redrawn:
conv / linear weights N(0, 1/fan_in), biases 0.1 N(0, 1), LayerNorm weights 1 + 0.1 N(0, 1),
gamma U(0.5, 1.5) (generator seed 4321).

Recorded in tests/fixtures/convnext/reference.safetensors:
  pixels              (2, 3, 64, 64): two photos through upstream's image processor at 64
  features            (2, 4, D3): upstream's _forward (eval mode)
  upstream_grad       (2, 4, D3): R, fixed N(0, 1)
  grad.<trunk name>   d sum(features * R) / d p for every trunk parameter that gets one
                      (trunk names as timm's: stem.0.weight, stages.1.downsample.1.weight,
                      stages.2.blocks.0.conv_dw.weight, ...; head.norm.* get none)
  pre.<photo>.47[.pad]  (3, 47, 47): upstream's processor with its Resize / CenterCrop sizes set
                      to 47 (as CLIPConvNextVisionTower sets them to its image size), on
                      Image.open(photo).convert('RGB') as its train.py opens images; .pad after
                      its expand2square with ProcessorWrapper.image_mean; pixels are the first
                      two photos at 64 through the tower's own processor
tests/fixtures/convnext/expected.json: versions, config, parameter names and shapes, the
processor's transforms, which crops round half to even, upstream's train-mode stochastic depth.
tests/fixtures/convnext/tiny_openclip: the hub folder.
"""
import copy
import importlib
import json
import os
import shutil
import sys
import types
from types import SimpleNamespace

import numpy as np
import open_clip
import PIL
import safetensors
import timm
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "convnext")
ASSETS = os.path.join(os.path.dirname(ROOT), "shared", "assets", "images")
UPSTREAM = os.environ["OLA_VLM_DIR"]
DEPTHS = (1, 2, 1, 1)
DIMS = (7, 12, 17, 20)
SIZE = 64
NAME = f"CLIP-convnext_xxlarge-res{SIZE}"
MEAN = (0.485, 0.456, 0.406)  # not OpenAI's: the preprocess_cfg's are the ones used
STD = (0.229, 0.224, 0.225)
MODEL_CFG = {
    "embed_dim": 8,
    "vision_cfg": {"timm_model_name": "convnext_xxlarge", "timm_model_pretrained": False, "timm_pool": "",
                   "timm_proj": "linear", "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": 48},
    "text_cfg": {"context_length": 4, "vocab_size": 16, "width": 8, "heads": 2, "layers": 1},
}
PHOTOS = ("211.jpg", "extreme_ironing.jpg", "rebecca_poster_small.jpeg", "llava_logo.png")
PRE = 47  # the other size: 211.jpg and extreme_ironing.jpg crop at an offset that rounds half to even

_create_model = timm.create_model


def tiny_create_model(name, *args, **kwargs):
    if name == "convnext_xxlarge":
        kwargs = dict(kwargs, depths=DEPTHS, dims=DIMS)
    return _create_model(name, *args, **kwargs)


timm.create_model = tiny_create_model  # open_clip's TimmModel calls timm.create_model(name, ...)


def import_upstream():
    """Upstream's encoder modules without ola_vlm's package __init__ (which imports every model)."""
    for pkg, rel in (("ola_vlm", "ola_vlm"), ("ola_vlm.model", "ola_vlm/model"),
                     ("ola_vlm.model.multimodal_encoder", "ola_vlm/model/multimodal_encoder")):
        m = types.ModuleType(pkg)
        m.__path__ = [os.path.join(UPSTREAM, rel)]
        sys.modules[pkg] = m
    utils = importlib.import_module("ola_vlm.model.multimodal_encoder.openclip_utils")
    enc = importlib.import_module("ola_vlm.model.multimodal_encoder.clip_convnext_encoder")
    return utils, enc


def randomize(model):
    gen = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for n, p in model.visual.trunk.named_parameters():
            if n.endswith("gamma"):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            elif p.dim() == 1 and ("norm" in n or n.endswith("stem.1.weight") or "downsample.0" in n):
                if n.endswith("weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


def write_hub_folder(model, d):
    from open_clip.push_to_hf_hub import save_config_for_hf
    from pathlib import Path
    os.makedirs(d)
    tensors = model.state_dict()
    save_file(tensors, os.path.join(d, "open_clip_model.safetensors"))
    torch.save(tensors, os.path.join(d, "open_clip_pytorch_model.bin"))
    model.visual.image_mean, model.visual.image_std = MEAN, STD
    save_config_for_hf(model, Path(d) / "open_clip_config.json", model_config=MODEL_CFG)


def center_crop_offsets(w, h, size):
    """torchvision's Resize(size) output and CenterCrop's top / left, and whether floor would differ."""
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return nw, nh, top, left, top != (nh - size) // 2 or left != (nw - size) // 2


def expand2square(pil_img, background_color):  # upstream's train.py, as it is
    width, height = pil_img.size
    if width == height:
        return pil_img
    elif width > height:
        result = Image.new(pil_img.mode, (width, width), background_color)
        result.paste(pil_img, (0, (width - height) // 2))
        return result
    else:
        result = Image.new(pil_img.mode, (height, height), background_color)
        result.paste(pil_img, ((height - width) // 2, 0))
        return result


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    hub = os.path.join(OUT, "tiny_openclip")
    torch.manual_seed(1234)
    built = open_clip.model.CLIP(**MODEL_CFG).float()
    randomize(built)
    write_hub_folder(built, hub)

    utils, enc = import_upstream()

    def from_folder(model_id, filename="open_clip_pytorch_model.bin", revision=None, cache_dir=None):
        assert model_id == "laion/CLIP-convnext_xxlarge-laion2B-s34B-b82K-augreg-soup", model_id
        return os.path.join(hub, filename)
    utils.download_pretrained_from_hf = from_folder
    open_clip.factory.download_pretrained_from_hf = from_folder
    args = SimpleNamespace(mm_vision_select_layer=-2, mm_vision_select_feature="patch", unfreeze_mm_vision_tower=False)
    tower = enc.CLIPConvNextVisionTower(NAME, args=args, delay_load=False)
    trunk = tower.vision_tower
    assert tower.image_size == SIZE and tower.hidden_size == DIMS[-1] and tower.num_patches == (SIZE // 32) ** 2
    assert isinstance(trunk.norm_pre, torch.nn.Identity)
    # the folder loaded to the weights written
    saved = built.visual.trunk.state_dict()
    for n, t in trunk.state_dict().items():
        assert torch.equal(t, saved[n]), n
    eps = {n: m.eps for n, m in trunk.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    assert set(eps.values()) == {1e-5}, eps
    assert isinstance(trunk.stages[0].downsample, torch.nn.Identity)

    processor = tower.image_processor
    pre = {}
    crops = {}
    other = copy.deepcopy(processor)  # the same transform at another size, set as the tower sets its own
    other._transforms.transforms[0].size = PRE
    other._transforms.transforms[1].size = (PRE, PRE)
    for i, photo in enumerate(PHOTOS):
        img = Image.open(os.path.join(ASSETS, photo)).convert("RGB")
        if i < 2:  # the model's input
            pre[f"pre.{photo}.{SIZE}"] = processor.preprocess(img)["pixel_values"][0]
            crops[f"{photo}.{SIZE}"] = center_crop_offsets(img.width, img.height, SIZE)
        pre[f"pre.{photo}.{PRE}"] = other.preprocess(img)["pixel_values"][0]
        crops[f"{photo}.{PRE}"] = center_crop_offsets(img.width, img.height, PRE)
        if i == 1:
            padded = expand2square(img, tuple(int(x * 255) for x in processor.image_mean))
            pre[f"pre.{photo}.{PRE}.pad"] = other.preprocess(padded)["pixel_values"][0]
    assert any(c[4] for c in crops.values()), crops  # a crop that rounds half to even is covered

    pixels = torch.stack([pre[f"pre.{PHOTOS[0]}.{SIZE}"], pre[f"pre.{PHOTOS[1]}.{SIZE}"]]).contiguous()
    tower.eval()
    with torch.no_grad():
        features = tower(pixels).detach().clone()
        # upstream's _forward restated: the same bits
        x = trunk.stem(pixels)
        for stage in trunk.stages:
            x = stage(x)
        again = trunk.norm_pre(x).flatten(2, 3).permute(0, 2, 1)
        assert torch.equal(again, features)
    R = torch.randn(features.shape, generator=torch.Generator().manual_seed(99))
    trunk.requires_grad_(True)
    trunk.zero_grad(set_to_none=True)
    f = tower(pixels)
    (f * R).sum().backward()
    grads, none, params = {}, [], {}
    for n, p in trunk.named_parameters():
        params[n] = list(p.shape)
        if p.grad is None:
            none.append(n)
        else:
            grads["grad." + n] = p.grad.detach().clone()
    assert none == ["head.norm.weight", "head.norm.bias"], none
    # OLA-VLM trains with the model in train mode: the hub config's timm_drop_path 0.1 makes the frozen
    # tower's stochastic depth (timm DropPath, rates linspace(0, 0.1) over the blocks) drop branches
    dp = [float(m.drop_prob) for m in trunk.modules() if type(m).__name__ == "DropPath"]
    tower.train()
    runs = []
    with torch.no_grad():
        for seed in range(20):  # a batch of 2 keeps every branch with probability ~0.6: several draws
            torch.manual_seed(seed)
            runs.append(not torch.equal(tower(pixels), features))
    stochastic = sum(runs)
    tower.eval()

    tensors = {"pixels": pixels, "features": features.contiguous(), "upstream_grad": R, **grads,
               **{k: v.contiguous() for k, v in pre.items() if not k.endswith(f".{SIZE}")}}  # those two: pixels
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "reference.safetensors"))
    with open(os.path.join(hub, "open_clip_config.json")) as fh:
        hub_config = json.load(fh)
    summary = {
        "generator": "tools/make_convnext_fixtures.py",
        "upstream": {"repo": "SHI-Labs/OLA-VLM", "commit": "6032a6c",
                     "files": ["ola_vlm/model/multimodal_encoder/clip_convnext_encoder.py",
                               "ola_vlm/model/multimodal_encoder/openclip_utils.py",
                               "ola_vlm/model/multimodal_encoder/base_encoder.py"],
                     "tower_name": NAME},
        "versions": {"torch": torch.__version__, "timm": timm.__version__, "open_clip": open_clip.__version__,
                     "torchvision": torchvision.__version__, "Pillow": PIL.__version__, "numpy": np.__version__,
                     "safetensors": safetensors.__version__},
        "depths": list(DEPTHS), "dims": list(DIMS), "image_size": SIZE, "norm_eps": 1e-5,
        "open_clip_config": hub_config,
        "trunk_parameters": params, "no_gradient": none,
        "transforms": [t.__name__ if callable(t) and hasattr(t, "__name__") else repr(t)
                       for t in processor._transforms.transforms],
        "processor_image_mean_for_pad": list(processor.image_mean),
        "crops": {k: {"resized": [c[0], c[1]], "top": c[2], "left": c[3], "round_differs_from_floor": c[4]}
                  for k, c in crops.items()},
        "train_mode": {"drop_path_rates": dp, "train_mode_runs_differing_from_eval_of_20": stochastic,
                       "note": "upstream's tower is a submodule of the trained model, so HF Trainer's model.train() "
                               "turns on stochastic depth in the frozen ConvNeXt; vlm runs it deterministically "
                               "(eval), as upstream's inference"},
        "features_norm": float(features.norm()),
    }
    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    print("features", tuple(features.shape), "norm", float(features.norm()), "stochastic in train mode", stochastic)
    print("crops", {k: c for k, c in crops.items() if c[4]})


if __name__ == "__main__":
    main()
