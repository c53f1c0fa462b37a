"""The reference for make bench's teacher section: upstream OLA-VLM's own per-image
target computation (SHI-Labs/OLA-VLM 6032a6c, base_ola_vlm.py), on CPU in float32,
with all cores, one teacher per process (tools/.venv-ola: torch 2.15.0, transformers
4.41.2, opencv 4.10; the upstream checkout in OLA_VLM_DIR), as
tools/make_teacher_vit_fixtures.py and tools/make_teacher_seg_fixtures.py run it:

  depth  _get_dav2_feats (its source, read from base_ola_vlm.py, run on a stand-in `self`
         holding upstream's DepthAnythingV2(encoder="vitl") loaded from the .pth; its
         da_v2_head, the student's head drawing the logged depth map, is a stub): PIL
         resize((336, 336)), infer_image(is_dsg=True), mean of the four layers: (576, 1024)
  seg    _get_seg_targets (the same way) on upstream's OneFormerHead (oneformer_head.py's
         AuxOneFormerPixelLevelModule and OneFormerHead, compiled from its source: importing
         the module pulls in ola_vlm's model) from_pretrained from the folder:
         img.resize((768, 768)), the processor, forward_features -> the last Swin map at
         24 x 24: (1536, 24, 24). The processor is the folder's OneFormerImageProcessor:
         OneFormerProcessor adds the tokenized task text, which forward_features does not read
  gen    _get_gen_feats the same way on a stand-in pipe holding the folder's
         feature_extractor (CLIPImageProcessor) and image_encoder
         (CLIPVisionModelWithProjection, variant="fp16" loaded as float32): image_embeds (1024)

Timed per image from the file: Image.open(path).convert("RGB") (what the dataset does
before upstream's step sees the image), then upstream's function on that one image; the
model's load is not timed, as `vlm ola targets` does not count its teachers' load.
Writes each target as OUT.safetensors "I" (float32, image I in the order given) and prints
one JSON line: images, seconds, images_per_s, per_image_s, peak_rss_mb (the process's: interpreter,
torch and the loaded model included).
Usage: python bench_teachers_ref.py depth|seg|gen TEACHER OUT.safetensors IMAGE...
"""
import ast
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLA = os.environ.get("OLA_VLM_DIR", os.path.join(ROOT, "tools", ".cache", "OLA-VLM"))


def upstream_source(rel, names, scope, within=None):
    """The definitions called names in OLA/rel (at its top level, or in its class within), compiled into scope."""
    path = os.path.join(OLA, rel)
    body = ast.parse(open(path).read()).body
    if within:
        body = [b for c in body if isinstance(c, ast.ClassDef) and c.name == within for b in c.body]
    found = {n.name: n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in names}
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"{missing} not found in {path}")
    for n in names:  # in the order given: a base class before its subclass
        exec(compile(ast.Module(body=[found[n]], type_ignores=[]), path, "exec"), scope)
    return [scope[n] for n in names]


def base_method(name):
    return upstream_source("ola_vlm/model/language_model/base_ola_vlm.py", [name], {"np": np, "torch": torch},
                           "BaseOLA_VLM")[0]


class Stub:
    pass


def load_depth(path):
    sys.path.insert(0, os.path.join(OLA, "ola_vlm", "model", "aux_heads"))
    import depth_anything_v2.dpt as dpt
    model = dpt.DepthAnythingV2(encoder="vitl")
    model.load_state_dict(torch.load(path, map_location="cpu"))
    self = Stub()
    self.dav2_backbone = model.eval()
    self.da_v2_head = lambda feats: torch.zeros(1, 1, 2, 2) + torch.arange(4.0).view(1, 1, 2, 2)
    fn = base_method("_get_dav2_feats")
    return lambda img: fn(self, [img], "cpu")[0][0][0][0]  # depth_targets[0][0]: (1, 576, C) -> (576, C)


def load_seg(folder):
    from transformers import OneFormerImageProcessor, OneFormerModel
    from transformers.models.oneformer import modeling_oneformer as mo
    from typing import Optional
    scope = {"torch": torch, "nn": torch.nn, "F": F, "Tensor": torch.Tensor, "Optional": Optional,
             "OneFormerModel": OneFormerModel, "OneFormerPixelLevelModule": mo.OneFormerPixelLevelModule,
             "OneFormerPixelLevelModuleOutput": mo.OneFormerPixelLevelModuleOutput}
    _, head_cls = upstream_source("ola_vlm/model/aux_heads/oneformer_head.py",
                                  ["AuxOneFormerPixelLevelModule", "OneFormerHead"], scope)
    # the class names the processor reads at construction: the generator's local copy, not the hub's
    d, _ = OneFormerImageProcessor.get_image_processor_dict(folder)
    proc = OneFormerImageProcessor.from_dict({**d, "repo_path": os.path.join(os.path.dirname(folder), "seg_classes")})
    self = Stub()
    self.oneformer = head_cls.from_pretrained(folder).float().eval()

    def processor(img, tasks, return_tensors):
        out = proc(img, tasks, return_tensors=return_tensors)
        return {"pixel_values": out["pixel_values"], "task_inputs": None}

    self.oneformer_processor = processor
    fn = base_method("_get_seg_targets")
    like = torch.zeros(1)  # seg_preds: only its device and dtype are read
    return lambda img: fn(self, [img], like)[0]  # (C, 24, 24)


def load_gen(folder):
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection
    self = Stub()
    self.pipe = Stub()
    self.pipe.feature_extractor = CLIPImageProcessor.from_pretrained(os.path.join(folder, "feature_extractor"))
    self.pipe.image_encoder = CLIPVisionModelWithProjection.from_pretrained(
        os.path.join(folder, "image_encoder"), variant="fp16", torch_dtype=torch.float32).eval()
    fn = base_method("_get_gen_feats")
    return lambda img: fn(self, [img], "cpu")[0, 0]  # (N, 1, P) -> (P,)


def main():
    task, teacher, out, images = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    torch.set_num_threads(os.cpu_count())
    run = {"depth": load_depth, "seg": load_seg, "gen": load_gen}[task](teacher)
    targets, each = {}, []
    for i, path in enumerate(images):
        t0 = time.perf_counter()
        img = Image.open(path).convert("RGB")
        with torch.no_grad():
            targets[str(i)] = run(img).float().contiguous()
        each.append(round(time.perf_counter() - t0, 3))
    dt = sum(each)
    save_file(targets, out)
    print(json.dumps({"teacher": task, "images": len(images), "seconds": round(dt, 3),
                      "images_per_s": len(images) / dt, "per_image_s": each, "threads": torch.get_num_threads(),
                      "shape": list(targets["0"].shape),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
