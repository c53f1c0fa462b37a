"""Writes checkpoint fixtures with the reference libraries (torch.save,
safetensors) and the values our readers must reproduce, plus hostile files.

Outputs (relative to the repository root):
  tests/fixtures/formats/*.safetensors, *.bin, sharded_*/   real files
  tests/fixtures/formats/hostile/*                          files that must be refused
  tests/fixtures/formats/expected.json                      every tensor's dtype, shape, values
  tests/fuzz/corpus/{safetensors,pickle,torch_bin}/         fuzz seeds
Then, if build/vlm exists, it converts fixtures with `vlm convert` and checks
that Python safetensors loads them to the same tensors (the writer's parity).
"""
import collections
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "formats")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
EXPECTED = {"files": {}, "hostile": {}}

DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
               torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
               torch.uint8: "U8", torch.bool: "BOOL"}


def describe(t):
    """dtype, shape and exact values (floats as float64, which holds every f16/bf16/f32 exactly)."""
    t = t.detach().contiguous()
    if t.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        vals = [float(v) for v in t.to(torch.float64).flatten().tolist()]
        vals = [v if np.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf")) for v in vals]
    else:
        vals = [int(v) for v in t.to(torch.int64).flatten().tolist()]
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "values": vals}


def record(name, tensors, skipped=0):
    EXPECTED["files"][name] = {"tensors": {k: describe(v) for k, v in tensors.items()}, "skipped": skipped}


def dtype_tensors():
    g = torch.Generator().manual_seed(0)
    return collections.OrderedDict([
        ("f32", torch.randn(2, 3, generator=g)),
        ("f16", torch.tensor([0.0, -0.0, 1.0, 65504.0, 6e-8, 1e-5, -2.5, float("inf")], dtype=torch.float16)),
        ("bf16", torch.tensor([1.0, -3.140625, 1e30, 1e-30, float("-inf")], dtype=torch.bfloat16)),
        ("f64", torch.tensor([1.0 / 3.0, -1e300, 5e-324], dtype=torch.float64)),
        ("i64", torch.tensor([[-(2**62), 2**62], [0, -1]], dtype=torch.int64)),
        ("i32", torch.tensor([-(2**31), 2**31 - 1, 7], dtype=torch.int32)),
        ("i16", torch.tensor([-32768, 32767], dtype=torch.int16)),
        ("i8", torch.tensor([-128, 127, -1], dtype=torch.int8)),
        ("u8", torch.tensor([0, 255, 128], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True])),
        ("empty", torch.zeros(0, 4)),
        ("scalar", torch.tensor(2.5)),
        ("weights.layer.0", torch.randn(4, 5, generator=g).to(torch.bfloat16)),
    ])


def zip_member(path, suffix):
    with zipfile.ZipFile(path) as z:
        for n in z.namelist():
            if n.endswith(suffix):
                return z.read(n)
    raise KeyError(suffix)


def write_sharded(dirname, tensors, kind):
    d = os.path.join(OUT, dirname)
    os.makedirs(d, exist_ok=True)
    names = list(tensors)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map, total = {}, 0
    for i, part in enumerate(halves):
        if kind == "safetensors":
            fname = f"model-{i + 1:05d}-of-00002.safetensors"
            save_file({k: tensors[k] for k in part}, os.path.join(d, fname), metadata={"format": "pt"})
        else:
            fname = f"pytorch_model-{i + 1:05d}-of-00002.bin"
            torch.save({k: tensors[k] for k in part}, os.path.join(d, fname))
        for k in part:
            weight_map[k] = fname
            total += tensors[k].numel() * tensors[k].element_size()
    index = "model.safetensors.index.json" if kind == "safetensors" else "pytorch_model.bin.index.json"
    # the layout transformers' save_pretrained writes
    with open(os.path.join(d, index), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    return d


def llava_config():
    return {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "torch_dtype": "float16",
            "image_token_index": 32000, "projector_hidden_act": "gelu", "vision_feature_layer": -2,
            "vision_feature_select_strategy": "default",
            "text_config": {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320},
            "vision_config": {"model_type": "clip_vision_model", "hidden_size": 48, "image_size": 32,
                              "patch_size": 8, "num_hidden_layers": 2}}


def model_tensors():
    g = torch.Generator().manual_seed(1)
    t = collections.OrderedDict()
    t["multi_modal_projector.linear_1.weight"] = torch.randn(64, 48, generator=g).half()
    t["multi_modal_projector.linear_1.bias"] = torch.randn(64, generator=g).half()
    t["language_model.model.embed_tokens.weight"] = torch.randn(320, 64, generator=g).half()
    t["language_model.model.norm.weight"] = torch.ones(64).half()
    t["vision_tower.vision_model.embeddings.class_embedding"] = torch.randn(48, generator=g).half()
    t["vision_tower.vision_model.embeddings.patch_embedding.weight"] = torch.randn(48, 3, 8, 8, generator=g).half()
    return t


# --- hostile files -------------------------------------------------------------

def st_bytes(header, data=b""):
    h = json.dumps(header).encode() if isinstance(header, dict) else header
    return struct.pack("<Q", len(h)) + h + data


class FakeStorage:
    """Pickled by persistent_id like a torch storage, but with a numel we choose."""
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class StoragePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def fake_bin(obj, storages):
    """A torch-style zip: archive/data.pkl (protocol 2, like torch.save) + archive/data/<key>."""
    buf = io.BytesIO()
    StoragePickler(buf, protocol=2).dump(obj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
    return out.getvalue()


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def hostile(name, content, expect):
    path = os.path.join(OUT, "hostile", name)
    if isinstance(content, bytes):
        with open(path, "wb") as f:
            f.write(content)
    EXPECTED["hostile"][name] = expect


def write_hostile(dtypes_st, dtypes_bin):
    os.makedirs(os.path.join(OUT, "hostile"), exist_ok=True)
    good = open(dtypes_st, "rb").read()
    hostile("truncated.safetensors", good[: len(good) - 7], "truncated")
    hostile("header_only_length.safetensors", good[:5], "too small")
    hostile("huge_header.safetensors", struct.pack("<Q", 1 << 40) + b"{}", "exceeds")
    hostile("header_past_end.safetensors", struct.pack("<Q", 5000) + b'{"a":1}', "runs past the end")
    hostile("not_json.safetensors", st_bytes(b"{not json"), "not valid JSON")
    hostile("bad_utf8_name.safetensors",
            st_bytes(b'{"\xff\xfe":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4), "not valid JSON")
    hostile("offsets_past_data.safetensors",
            st_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8), "past the")
    hostile("overlap.safetensors",
            st_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12), "overlap")
    hostile("gap.safetensors",
            st_bytes({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8), "gap")
    hostile("shape_mismatch.safetensors",
            st_bytes({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "needs 12")
    hostile("unknown_dtype.safetensors",
            st_bytes({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16), "unsupported dtype")
    hostile("negative_dim.safetensors",
            st_bytes({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "non-negative")
    hostile("overflow_shape.safetensors",
            st_bytes({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}}, b"\0" * 4), "overflow")
    hostile("duplicate_name.safetensors",
            st_bytes(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                     b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8), "duplicate")
    hostile("metadata_not_strings.safetensors", st_bytes({"__metadata__": {"step": 3}}), "not a string")
    # .bin files
    buf = io.BytesIO()
    torch.save({"x": Evil()}, buf)  # saving never runs the payload; loading with torch.load would
    hostile("evil_global.bin", buf.getvalue(), "refusing pickle global 'posix.system'")
    good_bin = open(dtypes_bin, "rb").read()
    hostile("truncated.bin", good_bin[: len(good_bin) // 2], "not a readable zip archive")
    hostile("not_zip.bin", b"\x80\x02}q\x00." + b"\0" * 64, "legacy (pre-1.6) torch.save format")
    hostile("view_out_of_range.bin",
            fake_bin({"w": FakeTensor(FakeStorage("0", 10), 0, (100,), (1,))}, {"0": b"\0" * 40}),
            "reaches element 99 of a 10-element storage")
    hostile("storage_short.bin",
            fake_bin({"w": FakeTensor(FakeStorage("0", 10), 0, (10,), (1,))}, {"0": b"\0" * 12}),
            "expected (truncated?)")
    hostile("storage_missing.bin",
            fake_bin({"w": FakeTensor(FakeStorage("7", 4), 0, (4,), (1,))}, {}), "is missing")
    # sharded directories with a broken index
    d = os.path.join(OUT, "hostile", "index_missing_tensor")
    os.makedirs(d, exist_ok=True)
    save_file({"a": torch.zeros(2)}, os.path.join(d, "model-1.safetensors"))
    json.dump({"weight_map": {"a": "model-1.safetensors", "b": "model-1.safetensors"}},
              open(os.path.join(d, "model.safetensors.index.json"), "w"))
    hostile("index_missing_tensor", None, "listed in weight_map but missing")
    d = os.path.join(OUT, "hostile", "index_traversal")
    os.makedirs(d, exist_ok=True)
    json.dump({"weight_map": {"a": "../dtypes.safetensors"}}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
    hostile("index_traversal", None, "inside the model directory")
    d = os.path.join(OUT, "hostile", "bad_config")
    os.makedirs(d, exist_ok=True)
    save_file({"a": torch.zeros(2)}, os.path.join(d, "model.safetensors"))
    open(os.path.join(d, "config.json"), "w").write('{"model_type": "llava",')
    hostile("bad_config", None, "config.json: invalid JSON")
    d = os.path.join(OUT, "hostile", "empty_dir")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, ".keep"), "w").close()
    hostile("empty_dir", None, "no weights found")


def write_corpus():
    for sub in ("safetensors", "pickle", "torch_bin"):
        shutil.rmtree(os.path.join(CORPUS, sub), ignore_errors=True)
        os.makedirs(os.path.join(CORPUS, sub))
    hdir = os.path.join(OUT, "hostile")
    for name in sorted(os.listdir(OUT)) + ["hostile/" + n for n in sorted(os.listdir(hdir))]:
        path = os.path.join(OUT, name)
        if not os.path.isfile(path) or os.path.getsize(path) > 65536:
            continue
        base = name.replace("/", "_")
        if name.endswith(".safetensors"):
            shutil.copy(path, os.path.join(CORPUS, "safetensors", base))
        elif name.endswith(".bin"):
            shutil.copy(path, os.path.join(CORPUS, "torch_bin", base))
            try:
                pkl = zip_member(path, "data.pkl")
                open(os.path.join(CORPUS, "pickle", base + ".pkl"), "wb").write(pkl)
            except (KeyError, zipfile.BadZipFile):
                pass


def check_writer():
    """Files written by `vlm convert` must load in Python safetensors unchanged."""
    vlm = os.path.join(ROOT, "build", "vlm")
    if not os.path.exists(vlm):
        print("writer check SKIPPED: build/vlm missing (run `make` first)")
        return False
    tmp = os.path.join(ROOT, "build", "writer-check")
    os.makedirs(tmp, exist_ok=True)
    cases = [("dtypes.bin", torch.load(os.path.join(OUT, "dtypes.bin"), weights_only=True)),
             ("sharded_bin", {k: v for f in sorted(os.listdir(os.path.join(OUT, "sharded_bin")))
                              if f.endswith(".bin") for k, v in
                              torch.load(os.path.join(OUT, "sharded_bin", f), weights_only=True).items()}),
             ("sharded_safetensors", model_tensors())]
    ok = True
    for src, reference in cases:
        out = os.path.join(tmp, src.replace(".", "_") + ".safetensors")
        subprocess.run([vlm, "-q", "convert", os.path.join(OUT, src), out], check=True)
        loaded = load_file(out)
        same = set(loaded) == set(reference) and all(
            loaded[k].dtype == reference[k].dtype and loaded[k].shape == reference[k].shape and
            torch.equal(loaded[k].contiguous().reshape(-1).view(torch.uint8), reference[k].contiguous().reshape(-1).view(torch.uint8))
            for k in reference)
        print(f"writer check: vlm convert {src} -> safetensors.torch.load_file: {'OK' if same else 'MISMATCH'}")
        ok &= same
    return ok


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    tensors = dtype_tensors()
    st = os.path.join(OUT, "dtypes.safetensors")
    save_file(dict(tensors), st, metadata={"format": "pt", "note": "vlm.c fixture"})
    record("dtypes.safetensors", tensors)

    # .bin: the same tensors plus what torch.save can hold that safetensors cannot
    g = torch.Generator().manual_seed(2)
    base = torch.randn(6, 4, generator=g)
    bin_tensors = collections.OrderedDict(tensors)
    bin_tensors["transposed"] = base.t()                # strided view
    bin_tensors["row_slice"] = base[2:5]                # offset into a shared storage
    bin_tensors["column"] = base[:, 1]                  # stride 4
    bin_tensors["param"] = torch.nn.Parameter(torch.randn(3, generator=g))  # _rebuild_parameter
    bin_path = os.path.join(OUT, "dtypes.bin")
    torch.save(bin_tensors, bin_path)
    record("dtypes.bin", bin_tensors)

    # nn.Module.state_dict(): an OrderedDict carrying a _metadata attribute (BUILD)
    torch.manual_seed(3)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4)).half()
    torch.save(module.state_dict(), os.path.join(OUT, "module.bin"))
    record("module.bin", module.state_dict())

    # checkpoints that are not a flat state dict: nested dicts flatten, other values are skipped
    nested = {"model": {"proj": {"weight": torch.ones(2, 2)}}, "epoch": 3, "name": "adamw", "lr": 1e-3}
    torch.save(nested, os.path.join(OUT, "nested.bin"))
    record("nested.bin", {"model.proj.weight": torch.ones(2, 2)}, skipped=3)

    mt = model_tensors()
    d = write_sharded("sharded_safetensors", mt, "safetensors")
    json.dump(llava_config(), open(os.path.join(d, "config.json"), "w"), indent=2)
    record("sharded_safetensors", mt)
    d = write_sharded("sharded_bin", mt, "bin")
    record("sharded_bin", mt)

    write_hostile(st, bin_path)
    write_corpus()
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(EXPECTED, f, separators=(",", ":"), sort_keys=True)
    print(f"wrote fixtures to {OUT} with torch {torch.__version__}")
    ok = check_writer()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
