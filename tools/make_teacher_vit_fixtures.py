"""Reference data for OLA-VLM's ViT teachers (tests/fixtures/teachers), made by
tools/make_teacher_vit_fixtures.sh in tools/.venv-ola (torch 2.15.0 CPU, transformers
4.41.2, opencv-python-headless 4.10.0.84, Pillow 10.4.0, numpy 1.26.4).

depth: upstream's own Depth-Anything-v2 (SHI-Labs/OLA-VLM 6032a6c,
ola_vlm/model/aux_heads/depth_anything_v2, imported from a checkout made at run time;
xFormers absent, so plain attention). DepthAnythingV2(encoder="vitl", features=4,
out_channels=[4, 4, 4, 4]) with its DINOv2 built by upstream's DinoVisionTransformer at
a tiny width: embed_dim 16, 24 blocks (so vitl's intermediate_layer_idx [4, 11, 17, 23]
applies unchanged), 2 heads, mlp_ratio 4, img_size 518 / patch 14 (a 37 x 37 position
grid, interpolated to 24 x 24 for the 336 x 336 input), init_values 1.0 (LayerScale),
interpolate_offset 0.1, antialias off: DINOv2()'s settings but the sizes. Every
parameter is then redrawn (seeded) so each one matters: linear and conv weights
N(0, 1/fan_in) x 1.5, biases N(0, 0.1), LayerNorm weights 1 + N(0, 0.1) and biases
N(0, 0.1), LayerScale gammas 1 + N(0, 0.3), cls_token / pos_embed / mask_token N(0, 1).
Saved as torch.save(model.state_dict(), "depth/depth_anything_v2_vitl.pth"), as users
have it (depth_head.* included). The targets come from upstream's _get_dav2_feats
itself (its source, read from base_ola_vlm.py and run on a stand-in `self` holding the
model; its da_v2_head is a stub, the targets do not use it): PIL resize((336, 336)),
np.array, infer_image(img, is_dsg=True), mean of the four.

gen: a tiny random CLIPVisionModelWithProjection (hidden 32, intermediate 44, 3 layers,
4 heads, image_size 30, patch 6, projection_dim 20, hidden_act "gelu", layer_norm_eps
1e-5; weights redrawn as above) saved with save_pretrained into gen/image_encoder
(model.safetensors) and again in float16 with variant="fp16" (model.fp16.safetensors,
what StableUnCLIPImg2ImgPipeline.from_pretrained(..., variant="fp16") loads), and a
CLIPImageProcessor(size shortest_edge 32, crop 30, CLIP mean / std) saved into
gen/feature_extractor. Targets from upstream's _get_gen_feats the same way (a stand-in
`self.pipe` holding the processor and the model): image_embeds.

Images: two of the shared photos (../shared/assets/images), Image.open().convert("RGB").

tests/fixtures/teachers/reference.safetensors:
  depth.target.I     (576, 16)  _get_dav2_feats' target of image I
  depth.layers.0     (4, 576, 16) image 0's four normed block outputs (class token dropped)
  depth.pixels.I     (3, 14, 336) rows 0..13 of image I's pixel tensor after image2tensor
  depth.pos          (577, 16)  interpolate_pos_encoding at 336 x 336 (class position first)
  depth_hf.target.I  (576, 16)  the transformers folder depth_hf (DepthAnythingForDepthEstimation,
                                save_pretrained; DEPTH_HF below: 6 layers, 4 heads, out_indices
                                [2, 3, 5, 6]) on upstream's pixels: its backbone's four feature
                                maps (final-normed) without the class token, averaged
  gen.target.I       (20,)      image_embeds, fp16 weights (the variant) computed in fp32
  gen.target_f32.I   (20,)      the same from model.safetensors (fp32 weights)
  gen.target_default.I (20,)    the image_encoder folder alone: CLIP's default processing at 30
  gen.pixels.I       (3, 30, 30) the feature_extractor's pixel_values
tests/fixtures/teachers/expected.json: versions, sizes, what cv2.resize did at equal size.
"""
import ast
import json
import os
import shutil
import sys
from functools import partial

import cv2
import numpy as np
import PIL
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from transformers import (CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection, DepthAnythingConfig,
                          DepthAnythingForDepthEstimation, Dinov2Config)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "teachers")
OLA = os.environ.get("OLA_VLM_DIR", os.path.join(ROOT, "tools", ".cache", "OLA-VLM"))
IMAGES = ["211.jpg", "rebecca_poster_small.jpeg"]
ASSETS = os.path.join(os.path.dirname(ROOT), "shared", "assets", "images")
if not os.path.isdir(ASSETS):
    ASSETS = "/work/shared/assets/images"

# upstream's depth_anything_v2 package alone (importing ola_vlm would pull in the whole model)
sys.path.insert(0, os.path.join(OLA, "ola_vlm", "model", "aux_heads"))
import depth_anything_v2.dpt as dpt  # noqa: E402
from depth_anything_v2.dinov2 import DinoVisionTransformer  # noqa: E402
from depth_anything_v2.dinov2_layers import MemEffAttention, NestedTensorBlock  # noqa: E402

DEPTH = dict(embed_dim=16, depth=24, num_heads=2, mlp_ratio=4)
# the transformers layout: 6 layers, stages 2, 3, 5, 6 (blocks 1, 2, 4, 5), 4 heads
DEPTH_HF = dict(hidden_size=16, num_hidden_layers=6, num_attention_heads=4, mlp_ratio=4, image_size=518, patch_size=14,
                layerscale_value=1.0, out_indices=[2, 3, 5, 6], apply_layernorm=True, reshape_hidden_states=False,
                layer_norm_eps=1e-6, hidden_act="gelu", use_swiglu_ffn=False)
GEN = dict(hidden_size=32, intermediate_size=44, num_hidden_layers=3, num_attention_heads=4, image_size=30,
           patch_size=6, projection_dim=20, hidden_act="gelu", layer_norm_eps=1e-5, num_channels=3)


def upstream_method(name):
    """The source of BaseOLA_VLM.<name> from base_ola_vlm.py, compiled on its own."""
    path = os.path.join(OLA, "ola_vlm", "model", "language_model", "base_ola_vlm.py")
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "BaseOLA_VLM":
            for f in node.body:
                if isinstance(f, ast.FunctionDef) and f.name == name:
                    scope = {"np": np, "torch": torch}
                    exec(compile(ast.Module(body=[f], type_ignores=[]), path, "exec"), scope)
                    return scope[name]
    raise SystemExit(f"{name} not found in {path}")


def redraw(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if n.endswith("gamma") or n.endswith("lambda1"):
                p.copy_(1.0 + 0.3 * r)
            elif any(k in n for k in ("cls_token", "pos_embed", "mask_token", "class_embedding", "position_embedding")):
                p.copy_(r)
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(1.5 * r / np.sqrt(fan_in))
            elif "norm" in n and n.endswith("weight"):
                p.copy_(1.0 + 0.1 * r)
            elif n.endswith("bias"):
                p.copy_(0.1 * r)
            else:
                raise SystemExit(f"no rule for {n}")


def tiny_dinov2(model_name):
    assert model_name == "vitl"
    # DINOv2()'s settings (dinov2.py) at a tiny width
    return DinoVisionTransformer(img_size=518, patch_size=14, block_fn=partial(NestedTensorBlock, attn_class=MemEffAttention),
                                 init_values=1.0, ffn_layer="mlp", block_chunks=0, num_register_tokens=0,
                                 interpolate_antialias=False, interpolate_offset=0.1, **DEPTH)


def load_images():
    return [Image.open(os.path.join(ASSETS, n)).convert("RGB") for n in IMAGES]


class Stub:
    pass


def make_depth(images, ref, meta):
    dpt.DINOv2 = tiny_dinov2  # DepthAnythingV2.__init__ calls it by this name
    torch.manual_seed(0)
    model = dpt.DepthAnythingV2(encoder="vitl", features=4, out_channels=[4, 4, 4, 4]).eval()
    redraw(model, 1)
    d = os.path.join(OUT, "depth")
    os.makedirs(d, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(d, "depth_anything_v2_vitl.pth"))
    self = Stub()
    self.dav2_backbone = model
    self.da_v2_head = lambda feats: torch.zeros(1, 1, 2, 2) + torch.arange(4.0).view(1, 1, 2, 2)
    targets, _ = upstream_method("_get_dav2_feats")(self, images, "cpu")
    t = targets[0][0]
    for i in range(len(images)):
        ref[f"depth.target.{i}"] = t[i].contiguous()
    # the debugging intermediates, along the same path
    equal_size_copy = []
    for i, im in enumerate(images):
        raw = np.array(im.resize((336, 336)))
        pix, _ = model.image2tensor(raw, 336)
        ref[f"depth.pixels.{i}"] = pix[0, :, :14, :].contiguous()
        swapped = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB) / 255.0
        same = cv2.resize(swapped, (336, 336), interpolation=cv2.INTER_CUBIC)
        equal_size_copy.append(bool(np.array_equal(same, swapped)))
        assert np.array_equal(swapped[..., 0], raw[..., 2] / 255.0)
        if i == 0:
            with torch.no_grad():
                feats = model.pretrained.get_intermediate_layers(pix, [4, 11, 17, 23], return_class_token=True)
            ref["depth.layers.0"] = torch.stack([f[0][0] for f in feats]).contiguous()
    with torch.no_grad():
        ref["depth.pos"] = model.pretrained.interpolate_pos_encoding(torch.zeros(1, 577, 16), 336, 336)[0].contiguous()
    make_depth_hf(model, images, ref, meta)
    meta["depth"] = {
        "class": "DepthAnythingV2(encoder='vitl', features=4, out_channels=[4, 4, 4, 4])",
        "dinov2": {**DEPTH, "img_size": 518, "patch_size": 14, "init_values": 1.0, "interpolate_offset": 0.1,
                   "interpolate_antialias": False, "layer_norm_eps": 1e-6},
        "intermediate_layer_idx": model.intermediate_layer_idx["vitl"],
        "pos_grid": [37, 37], "input": [336, 336], "grid": [24, 24],
        "cv2_resize_at_equal_size_is_a_copy": equal_size_copy,
        "channels": "cv2.cvtColor(COLOR_BGR2RGB) on an RGB array: the network sees B, G, R",
        "state_dict_keys": len(model.state_dict()),
    }


def make_depth_hf(upstream, images, ref, meta):
    """A transformers DepthAnythingForDepthEstimation folder (save_pretrained), fed upstream's
    pixels (image2tensor of the same PIL resize): the mean of its backbone's four normed
    feature maps without the class token, as _get_dav2_feats averages upstream's."""
    torch.manual_seed(4)
    cfg = DepthAnythingConfig(backbone_config=Dinov2Config(**DEPTH_HF).to_dict(), reassemble_hidden_size=16,
                              neck_hidden_sizes=[4, 4, 4, 4], fusion_hidden_size=4, head_hidden_size=4)
    hf = DepthAnythingForDepthEstimation(cfg).eval()
    redraw(hf, 5)
    d = os.path.join(OUT, "depth_hf")
    hf.save_pretrained(d)
    hf = DepthAnythingForDepthEstimation.from_pretrained(d).eval()
    for i, im in enumerate(images):
        pix, _ = upstream.image2tensor(np.array(im.resize((336, 336))), 336)
        with torch.no_grad():
            f = hf.backbone(pix).feature_maps
        ref[f"depth_hf.target.{i}"] = ((f[0][0, 1:] + f[1][0, 1:] + f[2][0, 1:] + f[3][0, 1:]) / 4).contiguous()
    meta["depth_hf"] = {"backbone_config": DEPTH_HF, "blocks_taken": [i - 1 for i in DEPTH_HF["out_indices"]]}


def make_gen(images, ref, meta):
    d = os.path.join(OUT, "gen")
    enc, fe = os.path.join(d, "image_encoder"), os.path.join(d, "feature_extractor")
    torch.manual_seed(2)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**GEN)).eval()
    redraw(model, 3)
    model.save_pretrained(enc)  # model.safetensors, fp32
    model.half().save_pretrained(enc, variant="fp16")  # model.fp16.safetensors
    proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 30, "width": 30})
    proc.save_pretrained(fe)
    gen_feats = upstream_method("_get_gen_feats")

    def run(m, p):
        self = Stub()
        self.pipe = Stub()
        self.pipe.feature_extractor, self.pipe.image_encoder = p, m
        return gen_feats(self, images, "cpu")  # (N, 1, P)

    fp16 = CLIPVisionModelWithProjection.from_pretrained(enc, variant="fp16", torch_dtype=torch.float32).eval()
    fp32 = CLIPVisionModelWithProjection.from_pretrained(enc, torch_dtype=torch.float32).eval()
    loaded = CLIPImageProcessor.from_pretrained(fe)
    default = CLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30})
    for key, m, p in (("gen.target", fp16, loaded), ("gen.target_f32", fp32, loaded),
                      ("gen.target_default", fp16, default)):
        out = run(m, p)
        for i in range(len(images)):
            ref[f"{key}.{i}"] = out[i, 0].contiguous()
    for i, im in enumerate(images):
        ref[f"gen.pixels.{i}"] = loaded(images=im, return_tensors="pt").pixel_values[0].contiguous()
    meta["gen"] = {"config": GEN, "processor": {"shortest_edge": 32, "crop": 30}}


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    images = load_images()
    ref, meta = {}, {}
    make_depth(images, ref, meta)
    make_gen(images, ref, meta)
    save_file({k: v.float() for k, v in ref.items()}, os.path.join(OUT, "reference.safetensors"))
    meta["images"] = IMAGES
    meta["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__, "opencv": cv2.__version__,
                        "Pillow": PIL.__version__, "numpy": np.__version__, "OLA-VLM": "6032a6c"}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
