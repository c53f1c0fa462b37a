"""mPLUG-Owl2 v1 render/label fixtures (tests/fixtures/owl2/render_v1_*), from upstream's own data code.

Runs X-PLUG/mPLUG-Owl's mPLUG-Owl2 data pipeline (folder mPLUG-Owl2/, commit
0f3068fd) unmodified, on CPU, with the LLaMA-2 SentencePiece model
../shared/assets/tokenizers/llama2/tokenizer.model. Nothing of upstream is
vendored: the checkout comes from $MPLUG_OWL_DIR (a directory holding
mPLUG-Owl2/, put on PYTHONPATH by the wrapper), which
tools/make_owl2_text_fixtures.sh clones into tools/.cache/mPLUG-Owl when it is
unset. Only mplug_owl2.train.train is imported (it imports the model package,
the conversation templates and mm_utils); train_mem.py and the flash-attn
patch are never imported.

What is called, all upstream code (mplug_owl2/train/train.py):
  - the setup train() does for `--version v1`:
      tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir,
          model_max_length=M, padding_side="right", use_fast=False)
      tokenizer.pad_token = tokenizer.unk_token
      conversation_lib.default_conversation = conversation_lib.conv_templates["v1"]
      data_args.image_processor = CLIPImageProcessor.from_pretrained(model_dir)
      data_args.is_multimodal = True
    where model_dir is a temporary stand-in for the checkpoint folder holding
    a link to the LLaMA-2 tokenizer.model, a tokenizer_config.json with only
    {"tokenizer_class": "LlamaTokenizer"} (so AutoTokenizer can pick the class;
    every other setting is transformers 4.31.0's default, giving legacy=True,
    add_bos_token=True, add_eos_token=False) and mPLUG-Owl2's
    preprocessor_config.json values (MAGAer13 repo);
  - make_supervised_data_module(tokenizer, data_args) on the data file, with
    image_aspect_ratio "pad" (Q-Instruct's flag) and an image folder of tiny
    generated JPEGs, one per record's "image" (so upstream's silent
    missing-image resampling never fires; next_rand is made to raise to be
    sure);
  - LazySupervisedDataset.__getitem__(i) for every record: that is
    preprocess_multimodal (records with "image") then
    preprocess(sources, tokenizer, has_image='image' in record), which takes
    preprocess_v1, which calls mm_utils.tokenizer_image_token for image
    records and the tokenizer (truncation at M) for text-only ones. Its stdout
    is captured: "WARNING: tokenization mismatch" gives "mismatch": true;
  - DataCollatorForSupervisedDataset(tokenizer)([item]): a batch of one, so no
    padding, only the cut to model_max_length.

Produces, under tests/fixtures/owl2/ (compact UTF-8 JSON; reruns are
byte-identical):
  render_v1_data.json       the records (LLaVA / Q-Instruct format): the 220 of
                            tests/fixtures/text/render_v1_data.json with
                            Q-Instruct's README sed applied ("<image>" ->
                            "<|image|>": upstream does not treat "<image>" as
                            an image) followed by the owl2-* records written
                            here ("<|image|>" mid-turn / at the end / twice /
                            in two turns / in an answer, "<image>", an image
                            record with no placeholder, text-only records,
                            multi-round, empty answer, trailing question,
                            "</s>" / "<unk>" in the text, a placeholder only
                            in a leading gpt turn (which preprocess_v1 drops),
                            long records for the truncation check).
  render_v1_expected.jsonl  one line per record, in data order:
                            {"id", "model_max_length", "mismatch",
                             "input_ids", "labels",            (__getitem__,
                                                                before the collator)
                             "collated_input_ids", "collated_labels"}
                            image = -200 (IMAGE_TOKEN_INDEX), ignored = -100.
  render_v1_params.json     model_max_length (2048, upstream's Q-Instruct value)
                            and the truncation check: the ids run with
                            model_max_length 64 instead (every field of those
                            lines, the mismatch check and the text-only
                            tokenizer truncation included, comes from a
                            tokenizer loaded with 64); the tokenizer settings
                            seen (class, legacy, add_bos_token, ...), the
                            template, versions and the upstream commit.

Pins (tools/venv_owl2.sh, upstream's pyproject.toml): Python 3.11, torch 2.0.1
(the PyPI build, run on CPU), transformers 4.31.0, tokenizers 0.13.3,
sentencepiece 0.1.99, numpy 1.26.4, einops 0.6.1, Pillow 10.1.0, icecream,
safetensors.

Usage: tools/make_owl2_text_fixtures.sh
       (or MPLUG_OWL_DIR=/path/to/mPLUG-Owl tools/make_owl2_text_fixtures.sh)
Developers only; `make test` never needs it.
"""
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "owl2")
SRC_DATA = os.path.join(ROOT, "tests", "fixtures", "text", "render_v1_data.json")
SP_MODEL = os.path.realpath(os.path.join(ROOT, "..", "shared", "assets", "tokenizers", "llama2",
                                         "tokenizer.model"))
MAX_LEN = 2048        # Q-Instruct's --model_max_length
SHORT_MAX_LEN = 64    # the truncation check
VERSION = "v1"        # Q-Instruct's --version
# mPLUG-Owl2's preprocessor_config.json (MAGAer13/mplug-owl2-llama2-7b), verbatim values.
PREPROCESSOR_CONFIG = {"crop_size": 448, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                       "feature_extractor_type": "CLIPFeatureExtractor",
                       "image_mean": [0.48145466, 0.4578275, 0.40821073],
                       "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 448}
MISMATCH = "WARNING: tokenization mismatch"

try:
    from mplug_owl2.train import train as owl2_train  # upstream; imports mplug_owl2.model (patches llama)
except ImportError as e:
    sys.exit(f"mplug_owl2.train.train is not importable ({e}): put $MPLUG_OWL_DIR/mPLUG-Owl2 on "
             "PYTHONPATH (tools/make_owl2_text_fixtures.sh does)")
import sentencepiece
import tokenizers
import torch
import transformers
from mplug_owl2 import conversation as conversation_lib
from mplug_owl2.constants import DEFAULT_IMAGE_TOKEN, IGNORE_INDEX, IMAGE_TOKEN_INDEX
from PIL import Image
from transformers.models.clip.image_processing_clip import CLIPImageProcessor

assert owl2_train.conversation_lib is conversation_lib


def h(v):
    return {"from": "human", "value": v}


def g(v):
    return {"from": "gpt", "value": v}


LONG_ANSWER = ("The image shows a busy street market at dusk, with stalls selling fruit, vegetables, "
               "spices and hand-made baskets; people walk between the stalls under strings of lights.")


def extra_records():
    """Records added for mPLUG-Owl2 (ids owl2-*); "image" names a generated file."""
    r = []

    def add(conv, image=True):
        rec = {"id": f"owl2-{len(r):04d}"}
        if image:
            rec["image"] = f"owl2_{len(r):04d}.jpg"
        rec["conversations"] = conv
        r.append(rec)

    add([h("What is shown <|image|> in this picture?"), g("A red bicycle.")])               # 0 mid-turn
    add([h("Describe the scene.<|image|>"), g("A quiet beach at sunrise.")])                # 1 end of turn
    add([h("<|image|>"), g("A cat.")])                                                     # 2 placeholder only
    add([h("  \n<|image|>  How many dogs are there?  \n"), g("Two.")])                     # 3 whitespace
    add([h("Compare <|image|> and <|image|>, please."), g("They look the same.")])         # 4 twice in a turn
    add([h("<|image|>\nWhat colour is the car?"), g("Blue."),                               # 5 two turns
         h("And this one? <|image|>"), g("Green.")])
    add([h("<|image|>\nWhat is it?"), g("Here it is: <|image|> a lamp.")])                  # 6 in an answer
    add([h("<image>\nWhat is in the picture?"), g("A tree.")])                             # 7 LLaVA's <image>
    add([h("<image>\n<|image|>What does the sign say?"), g("STOP.")])                      # 8 both
    add([h("What does the sign say?"), g("It says EXIT.")])                                # 9 image, no placeholder
    add([h("<|image|>\nWhat is on the table?"), g("A cup of tea."),                         # 10 multi-round
         h("What colour is the cup?"), g("White."),
         h("Is it hot?"), g("Steam rises from it, so probably yes."),
         h("Anything else?"), g("A spoon and a saucer."),
         h("Thanks!"), g("You're welcome.")])
    add([h("What is the capital of France?"), g("Paris.")], image=False)                   # 11 text-only
    add([h("Write a haiku about rain."), g("Soft rain on the roof\nwhispers to the sleeping town\n"
                                           "puddles hold the sky"),
         h("Now one about snow."), g("White hush on the hills\nfootprints fill before the dawn\n"
                                     "the world holds its breath")], image=False)          # 12 text-only, 2 rounds
    add([h("<|image|>\nWhat is this?"), g("A text-only record keeps the literal placeholder.")],
        image=False)                                                                       # 13 text-only <|image|>
    add([h("<image>\nDescribe it."), g("Literal text.")], image=False)                     # 14 text-only <image>
    add([h("<|image|>\nWhat is this?"), g(""), h("Say something."), g("Something.")])      # 15 empty answer
    add([h("<|image|>\nWhat is this?"), g("A kite."), h("Is it flying?")])                  # 16 trailing question
    add([g("Hello! Send me a picture."), h("<|image|>\nHere it is. What is it?"),          # 17 starts with gpt
         g("A mountain lake.")])
    add([h("<|image|>\nDescribe the image in detail."), g(LONG_ANSWER),                     # 18 long, image
         h("What time of day is it?"), g("Dusk, judging by the light.")])
    add([h("Tell me about street markets."), g(LONG_ANSWER),                               # 19 long, text-only
         h("And at night?"), g("They get busier.")], image=False)
    add([h("<|image|>\nDescribe the image in detail."), g(LONG_ANSWER + "</s> More.")])    # 20 long, </s> past 64
    add([h("<|image|>\nWhat is it?"), g("A boat.</s>")])                                   # 21 short, </s>
    add([h("Hi <unk> there"), g("Hello.")], image=False)                                   # 22 <unk> = pad
    add([h("<|image|>\nDescribe the image in detail."), g(LONG_ANSWER + "</s> More.")])    # 23 = 20, at 2048
    add([g("<|image|> Look at this."), h("What is it?"), g("A hat.")])                     # 24 in a dropped gpt turn
    for _ in range(2):                                                                     # 25 (at 64), 26 (at 2048)
        add([h("Tell me about street markets."), g(LONG_ANSWER + "</s> More.")], image=False)
    return r


# Records run with SHORT_MAX_LEN instead of MAX_LEN (the collator's / tokenizer's truncation).
TRUNC_IDS = ["owl2-0010", "owl2-0018", "owl2-0019", "owl2-0020", "owl2-0021", "owl2-0025"]


def model_dir(tmp):
    """A stand-in for the checkpoint folder train() loads the tokenizer and image processor from."""
    d = os.path.join(tmp, "model")
    os.makedirs(d)
    os.symlink(SP_MODEL, os.path.join(d, "tokenizer.model"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "LlamaTokenizer"}, f)
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump(PREPROCESSOR_CONFIG, f)
    return d


def image_folder(tmp, records):
    d = os.path.join(tmp, "images")
    os.makedirs(d)
    for rec in records:
        if "image" in rec:
            Image.new("RGB", (6, 4), (200, 30, 60)).save(os.path.join(d, rec["image"]), format="JPEG")
    return d


def load_tokenizer(mdir, max_len):
    # As train(): AutoTokenizer.from_pretrained(model_name_or_path, cache_dir, model_max_length,
    # padding_side="right", use_fast=False); then pad = unk.
    tok = transformers.AutoTokenizer.from_pretrained(mdir, cache_dir=None, model_max_length=max_len,
                                                     padding_side="right", use_fast=False)
    tok.pad_token = tok.unk_token
    return tok


def no_resample():
    raise RuntimeError("upstream tried to replace a missing image (next_rand)")


def dataset(data_path, mdir, imgdir, max_len):
    """Upstream's dataset, collator and tokenizer over data_path at model_max_length max_len."""
    tok = load_tokenizer(mdir, max_len)
    # As train() with --version v1:
    if VERSION in conversation_lib.conv_templates:
        conversation_lib.default_conversation = conversation_lib.conv_templates[VERSION]
    else:
        conversation_lib.default_conversation = conversation_lib.conv_templates["vicuna_v1"]
    data_args = owl2_train.DataArguments(data_path=data_path, lazy_preprocess=True,
                                         image_folder=imgdir, image_aspect_ratio="pad")
    data_args.image_processor = CLIPImageProcessor.from_pretrained(mdir)
    data_args.is_multimodal = True
    module = owl2_train.make_supervised_data_module(tokenizer=tok, data_args=data_args)
    ds, collator = module["train_dataset"], module["data_collator"]
    ds.next_rand = no_resample
    return ds, collator, tok


def run(data_path, mdir, imgdir, max_len):
    """Upstream's dataset + collator over data_path at model_max_length max_len."""
    ds, collator, tok = dataset(data_path, mdir, imgdir, max_len)
    out = []
    for i in range(len(ds)):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            item = ds[i]
        printed = buf.getvalue()
        assert printed == "" or printed.startswith(MISMATCH), printed
        rec = ds.list_data_dict[i]
        img = item["image"]
        assert tuple(img.shape) == (3, 448, 448), img.shape
        if "image" not in rec:
            assert not img.any()
        batch = collator([item])
        out.append({"id": rec["id"], "model_max_length": max_len, "mismatch": MISMATCH in printed,
                    "input_ids": item["input_ids"].tolist(), "labels": item["labels"].tolist(),
                    "collated_input_ids": batch["input_ids"][0].tolist(),
                    "collated_labels": batch["labels"][0].tolist()})
    return out, tok


def dumps(x):
    return json.dumps(x, ensure_ascii=False, separators=(",", ":"))


def main():
    with open(SRC_DATA, encoding="utf-8") as f:
        records = json.load(f)
    # Q-Instruct's README "Must Do!": sed 's/<image>/<|image|>/g' on LLaVA-format data before
    # training mPLUG-Owl2 (vlm needs no such step; the owl2-* records below keep "<image>" cases)
    for r in records:
        for turn in r["conversations"]:
            turn["value"] = turn["value"].replace("<image>", "<|image|>")
    records = records + extra_records()
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids) and all(t in ids for t in TRUNC_IDS)
    os.makedirs(OUT, exist_ok=True)
    data_path = os.path.join(OUT, "render_v1_data.json")
    with open(data_path, "w", encoding="utf-8") as f:
        f.write(dumps(records) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        mdir = model_dir(tmp)
        imgdir = image_folder(tmp, records)
        full, tok = run(data_path, mdir, imgdir, MAX_LEN)
        short, _ = run(data_path, mdir, imgdir, SHORT_MAX_LEN)
    short = {r["id"]: r for r in short}
    lines = [short[r["id"]] if r["id"] in TRUNC_IDS else r for r in full]

    with open(os.path.join(OUT, "render_v1_expected.jsonl"), "w", encoding="utf-8") as f:
        for line in lines:
            f.write(dumps(line) + "\n")

    owl_dir = os.environ.get("MPLUG_OWL_DIR", "")
    try:
        commit = subprocess.run(["git", "-C", owl_dir, "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    conv = conversation_lib.conv_templates[VERSION]
    params = {
        "upstream": {"repo": "X-PLUG/mPLUG-Owl", "folder": "mPLUG-Owl2", "commit": commit},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "sentencepiece": sentencepiece.__version__},
        "version": VERSION,
        "template": {"system": conv.system, "roles": list(conv.roles), "sep_style": conv.sep_style.name,
                     "sep": conv.sep, "sep2": conv.sep2},
        "placeholder": DEFAULT_IMAGE_TOKEN, "image_token_index": IMAGE_TOKEN_INDEX,
        "ignore_index": IGNORE_INDEX,
        "model_max_length": MAX_LEN,
        "truncation_check": {"model_max_length": SHORT_MAX_LEN, "ids": TRUNC_IDS},
        "tokenizer": {"sp_model": "../shared/assets/tokenizers/llama2/tokenizer.model",
                      "tokenizer_config": {"tokenizer_class": "LlamaTokenizer"},
                      "class": type(tok).__name__, "legacy": tok.legacy,
                      "add_bos_token": tok.add_bos_token, "add_eos_token": tok.add_eos_token,
                      "padding_side": tok.padding_side, "bos_token_id": tok.bos_token_id,
                      "eos_token_id": tok.eos_token_id, "unk_token_id": tok.unk_token_id,
                      "pad_token": str(tok.pad_token), "pad_token_id": tok.pad_token_id,
                      "vocab_size": tok.vocab_size},
        "image_aspect_ratio": "pad",
        "records": len(lines),
        "mismatch_ids": [r["id"] for r in lines if r["mismatch"]],
    }
    with open(os.path.join(OUT, "render_v1_params.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(params, ensure_ascii=False, indent=1) + "\n")

    n_img = sum(1 for r in lines if IMAGE_TOKEN_INDEX in r["input_ids"])
    print(f"{len(lines)} records ({n_img} with -200), {len(params['mismatch_ids'])} mismatches: "
          f"{' '.join(params['mismatch_ids'])}")
    print(f"tokenizer: {params['tokenizer']}")


if __name__ == "__main__":
    main()
