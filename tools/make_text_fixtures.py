#!/usr/bin/env python3
"""Regenerates tests/fixtures/text/ (tokenizer + chat-template reference data).

Run through tools/make_text_fixtures.sh, which creates tools/.venv-text with the
pinned packages: transformers==4.37.2 and sentencepiece==0.1.99 (LLaVA's pins),
tokenizers==0.15.2, tiktoken==0.7.0, protobuf, numpy<2, plus blobfile==3.3.0
(tiktoken 0.7.0's load_tiktoken_bpe needs blobfile to open a local file; Meta's
llama3 requirements list it too).  All pins install on Python 3.11 as given.

Tokenizer files (read-only, not copied): ../shared/assets/tokenizers/llama2/
tokenizer.model (LLaMA-2 SentencePiece) and ../shared/assets/tokenizers/llama3/
tokenizer.model (Llama-3 tiktoken ranks), both relative to the repo root.
Input fixtures (hand-written, read here): tests/fixtures/text/phi3/
tokenizer_config.json and special_tokens_map.json (microsoft/Phi-3-mini-4k-instruct's,
trimmed to the keys transformers reads; Phi-3-mini's tokenizer.model is the LLaMA-2
SentencePiece model, so the phi3 tokenizer is those two files next to a copy of the
llama2 tokenizer.model).

Outputs (tests/fixtures/text/): corpus.json, llama2.json, llama3.json, phi3_tokenize.json,
render_params.json, render_{plain,v1,v1_nonlegacy,mplug_owl2,llava_llama_3,llava_phi_3}_data.json
and render_*_expected.jsonl, README.md is written by hand.

The template renderers below re-implement the upstream data paths one sample at
a time with python lists instead of torch tensors (no torch needed); the string
building, the chunking and the label arithmetic are upstream's.  Upstream
sources (read via the code-search index):
  * haotian-liu/LLaVA  llava/train/train.py  (preprocess_multimodal,
    preprocess_plain, preprocess_v1, preprocess, LazySupervisedDataset.__getitem__,
    DataCollatorForSupervisedDataset), llava/conversation.py (Conversation.get_prompt,
    conv_vicuna_v1, conv_llava_plain), llava/mm_utils.py (tokenizer_image_token).
  * X-PLUG/mPLUG-Owl  mPLUG-Owl2/mplug_owl2/train/train.py (preprocess_multimodal,
    preprocess_v1, LazySupervisedDataset, collator), mplug_owl2/conversation.py
    (conv_mplug_owl2, SeparatorStyle.TWO_NO_SYS), mplug_owl2/mm_utils.py
    (tokenizer_image_token, the variant that maps an empty chunk to []).
  * SHI-Labs/OLA-VLM (now SHI-Labs/VisPer-LM)  ola_vlm/train/train.py
    (preprocess_llama_3, preprocess_multimodal, collator), ola_vlm/conversation.py
    (conv_llava_llama_3: MPT separator style, version "llama3"), ola_vlm/mm_utils.py
    (tokenizer_image_token).
  * SHI-Labs/OLA-VLM (now SHI-Labs/VisPer-LM)  ola_vlm/train/train.py and
    ola_vlm/train/ola_vlm_train.py (identical preprocess_phi_3, selected by
    preprocess() when default_conversation.version == "phi3"; train(): the
    tokenizer setup), ola_vlm/conversation.py (conv_llava_phi_3: MPT separator
    style, version "phi3"; registered as conv_templates["llava_phi_3"]).

Tokenizer emulation notes / deviations:
  * LLaMA-2 (plain, v1, mplug_owl2): the real transformers 4.37.2 slow
    LlamaTokenizer(vocab_file, legacy=True), model_max_length=max_len,
    padding_side="right", pad_token = unk_token (id 0) as LLaVA/mPLUG-Owl2 set it.
    (Upstream takes `legacy` from the checkpoint's tokenizer_config.)  With
    legacy=True the IS_TOKENIZER_GREATER_THAN_0_14 branch of LLaVA's newer
    preprocess_v1 is inert, so older and newer LLaVA agree.
  * v1_nonlegacy: LLaVA preprocess_v1 exactly as v1, but with
    LlamaTokenizer(vocab_file, legacy=False), which is what vicuna-7b-v1.5's
    tokenizer_config.json ("legacy": false) selects, i.e. real LLaVA-1.5
    training.  tokenizers 0.15.2 >= 0.14, so IS_TOKENIZER_GREATER_THAN_0_14 is
    True and `if i != 0 and not tokenizer.legacy` takes round_len -= 1,
    instruction_len -= 1 for every round after the first.  In 4.37.2 the
    non-legacy slow tokenizer loads the SentencePiece model with
    normalizer_spec.add_dummy_prefix = False (get_spm_processor, via protobuf),
    prepends "\u2581" to the whole text after replacing every "\u2581" in it by
    " ", splits on the special tokens, encodes a chunk that starts with " " or
    "\u2581" as sp.encode("<unk>" + chunk)[unk_token_length:], any other chunk
    with plain sp.encode (so no dummy prefix after a special token), and drops a
    leading lone "\u2581" piece when the next token is special.
    llama2.json's "hf_slow_nonlegacy" is that tokenizer on the corpus.
  * Llama-3 (llava_llama_3): the HF tokenizer is replaced by the Llama3Tok class:
    [128000] + tiktoken.encode(text, allowed_special="all"), built exactly as
    Meta's llama3 tokenizer.py builds its tiktoken.Encoding.  OLA-VLM's train()
    sets pad_token = unk_token (None for Llama-3) and then, since pad_token_id is
    None, adds "<pad>" as a new special token (id 128256 = len(tokenizer)).  The
    class reproduces that: "<pad>" in text is split out as id 128256 exactly as an
    HF added special token is (text is split on added tokens before
    pre-tokenization, so tiktoken on each piece is equivalent).  Truncation
    (text-only samples: max_length=model_max_length, truncation=True) keeps the
    first max_length ids, which is what HF does with one leading special token.
    Meta's tokenizer.py additionally chunks very long inputs (400k chars / 25k
    non-space runs); HF does not and nothing here comes near those sizes.
  * Phi-3 (llava_phi_3): the real transformers 4.37.2 slow tokenizer, built as
    OLA-VLM's train() builds it: AutoTokenizer.from_pretrained(<dir>,
    model_max_length=max_len, padding_side="right", use_fast=False) on a temp dir
    holding tests/fixtures/text/phi3/{tokenizer_config,special_tokens_map}.json and
    a copy of the llama2 tokenizer.model.  That is a LlamaTokenizer with
    legacy=False and add_bos_token=False (Phi-3-mini-4k-instruct's config since its
    July 2024 update), its 11 added tokens 32000..32010 (<|assistant|>, <|system|>,
    <|end|>, <|user|>, <|placeholderN|> with rstrip=True: the slow tokenizer strips
    all whitespace after them; <|endoftext|> without), "</s>" as a non-special
    added token with rstrip=True, and pad_token = eos = "<|endoftext|>" (32000), so
    train()'s pad fallbacks (pad = unk, then add "<pad>") do nothing.
    OLA-VLM pins transformers==4.41.1 (README) / tokenizers==0.19.1 (setup.py);
    4.41.1's slow LlamaTokenizer differs from 4.37.2 only by the add_prefix_space
    argument (default True, absent from Phi-3's config), which keeps 4.37.2's
    behaviour; the renders were cross-checked against 4.41.1 (same ids and labels).
  * Collator: each expected line is one sample through
    DataCollatorForSupervisedDataset alone: no padding, input_ids and labels cut
    to model_max_length.
  * Dialect conversion: records marked "dialect_converted" in the expected file
    were written with the other placeholder (<|image|> for LLaVA-style
    templates, <image> for mplug_owl2).  Their expected output is upstream's
    output after replacing every occurrence of the other placeholder by the
    template's own placeholder in every message value (nothing else changes).
"""
import copy
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the local ranks file, no cache copy

import sentencepiece as spm  # noqa: E402
import tiktoken  # noqa: E402
from tiktoken.load import load_tiktoken_bpe  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, LlamaTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()

ROOT = Path(__file__).resolve().parent.parent
LLAMA2_MODEL = (ROOT / "../shared/assets/tokenizers/llama2/tokenizer.model").resolve()
LLAMA3_MODEL = (ROOT / "../shared/assets/tokenizers/llama3/tokenizer.model").resolve()
OUT = ROOT / "tests" / "fixtures" / "text"
PHI3_DIR = OUT / "phi3"  # hand-written input: Phi-3-mini-4k-instruct tokenizer json files

IGNORE_INDEX = -100
IMAGE_TOKEN_INDEX = -200
MAX_LEN = 256
N_RECORDS = 220
# llava_phi_3 mismatches every multi-round record under max_len (see preprocess_phi_3),
# so it gets more records to keep over 150 mismatch-free ones, like the other templates.
N_RECORDS_BY_TEMPLATE = {"llava_phi_3": 400}

# pad_token_id: what upstream's `target.ne(tokenizer.pad_token_id)` counts against
# (LLaMA-2: unk = 0; Llama-3 under OLA-VLM: the added "<pad>" = 128256; Phi-3:
# its own pad_token "<|endoftext|>" = 32000).
# legacy: the LlamaTokenizer `legacy` flag (LLaMA-2 and Phi-3 templates).
TEMPLATES = {
    "plain": {"tokenizer": "llama2", "max_len": MAX_LEN, "placeholder": "<image>", "pad_token_id": 0,
              "legacy": True},
    "v1": {"tokenizer": "llama2", "max_len": MAX_LEN, "placeholder": "<image>", "pad_token_id": 0,
           "legacy": True},
    "mplug_owl2": {"tokenizer": "llama2", "max_len": MAX_LEN, "placeholder": "<|image|>",
                   "pad_token_id": 0, "legacy": True},
    "llava_llama_3": {"tokenizer": "llama3", "max_len": MAX_LEN, "placeholder": "<image>",
                      "pad_token_id": 128256},
    "v1_nonlegacy": {"tokenizer": "llama2", "max_len": MAX_LEN, "placeholder": "<image>",
                     "pad_token_id": 0, "legacy": False},
    "llava_phi_3": {"tokenizer": "phi3", "max_len": MAX_LEN, "placeholder": "<image>",
                    "pad_token_id": 32000, "legacy": False},
}


def dump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------
# Llama-3 tokenizer, as in meta-llama/llama3 llama/tokenizer.py Tokenizer.__init__
# ---------------------------------------------------------------------------
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_NUM_RESERVED = 256


def llama3_encoding():
    mergeable_ranks = load_tiktoken_bpe(str(LLAMA3_MODEL))
    num_base_tokens = len(mergeable_ranks)
    special_tokens = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>",
        "<|reserved_special_token_3|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|reserved_special_token_4|>",
        "<|eot_id|>",  # end of turn
    ] + [f"<|reserved_special_token_{i}|>" for i in range(5, LLAMA3_NUM_RESERVED - 5)]
    special = {tok: num_base_tokens + i for i, tok in enumerate(special_tokens)}
    enc = tiktoken.Encoding(
        name=LLAMA3_MODEL.name,
        pat_str=LLAMA3_PATTERN,
        mergeable_ranks=mergeable_ranks,
        special_tokens=special,
    )
    return enc, special


class _Ids:
    def __init__(self, ids):
        self.input_ids = ids


class Llama3Tok:
    """Stands in for the HF Llama-3 tokenizer as OLA-VLM configures it."""

    PAD = "<pad>"

    def __init__(self, enc, model_max_length):
        self.enc = enc
        self.bos_token_id = 128000
        self.eos_token_id = 128001
        self.pad_token_id = enc.n_vocab  # 128256, the "<pad>" added by train()
        self.model_max_length = model_max_length

    def encode_body(self, text):
        out = []
        for k, piece in enumerate(text.split(self.PAD)):
            if k:
                out.append(self.pad_token_id)
            out.extend(self.enc.encode(piece, allowed_special="all"))
        return out

    def __call__(self, text, max_length=None, truncation=False):
        ids = [self.bos_token_id] + self.encode_body(text)
        if truncation and max_length is not None:
            ids = ids[:max_length]
        return _Ids(ids)


def llama2_slow(max_len, legacy):
    tok = LlamaTokenizer(vocab_file=str(LLAMA2_MODEL), legacy=legacy,
                         model_max_length=max_len, padding_side="right")
    tok.pad_token = tok.unk_token  # LLaVA / mPLUG-Owl2 train(): pad = unk
    return tok


# ---------------------------------------------------------------------------
# Phi-3-mini tokenizer: Phi-3-mini-4k-instruct's tokenizer_config.json and
# special_tokens_map.json (tests/fixtures/text/phi3/) next to the LLaMA-2
# tokenizer.model (Phi-3-mini uses the LLaMA-2 tokenizer; its 32064-row
# embedding covers 32000 pieces + 11 added tokens + padding).
# ---------------------------------------------------------------------------
PHI3_ADDED = {32000: "<|endoftext|>", 32001: "<|assistant|>", 32002: "<|placeholder1|>",
              32003: "<|placeholder2|>", 32004: "<|placeholder3|>", 32005: "<|placeholder4|>",
              32006: "<|system|>", 32007: "<|end|>", 32008: "<|placeholder5|>",
              32009: "<|placeholder6|>", 32010: "<|user|>"}


def phi3_load(**kwargs):
    """AutoTokenizer.from_pretrained on a temp dir: the phi3 json files + the llama2 model."""
    with tempfile.TemporaryDirectory() as d:
        shutil.copyfile(LLAMA2_MODEL, os.path.join(d, "tokenizer.model"))
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(PHI3_DIR / name, os.path.join(d, name))
        tok = AutoTokenizer.from_pretrained(d, **kwargs)
    return tok


def phi3_slow(max_len, add_bos_token=False):
    # SHI-Labs/OLA-VLM ola_vlm/train/train.py train() (same in ola_vlm_train.py).
    # add_bos_token=True (summary only) stands in for Phi-3-mini-4k-instruct's
    # tokenizer_config.json before its July 2024 update.
    extra = {"add_bos_token": True} if add_bos_token else {}
    tok = phi3_load(model_max_length=max_len, padding_side="right", use_fast=False, **extra)
    if tok.pad_token is None:
        tok.pad_token = tok.unk_token
    if tok.pad_token_id is None:  # smart_tokenizer_and_embedding_resize(pad_token="<pad>")
        tok.add_special_tokens(dict(pad_token="<pad>"))
    # what the rest of this script (and the C side) relies on
    assert type(tok).__name__ == "LlamaTokenizer" and tok.legacy is False
    assert tok.add_bos_token is add_bos_token and tok.add_eos_token is False
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == 32000 and len(tok) == 32011
    for i, content in PHI3_ADDED.items():
        at = tok.added_tokens_decoder[i]
        assert at.content == content and at.special and not at.lstrip and not at.single_word
        assert at.rstrip is (i != 32000)
    eos = tok.added_tokens_decoder[2]
    assert eos.content == "</s>" and eos.rstrip and not eos.special
    return tok


# ---------------------------------------------------------------------------
# Upstream conversation templates (Conversation.get_prompt, string messages only)
# ---------------------------------------------------------------------------
# haotian-liu/LLaVA llava/conversation.py: conv_vicuna_v1 (SeparatorStyle.TWO)
V1_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
             "The assistant gives helpful, detailed, and polite answers to the user's questions.")
V1_ROLES = ("USER", "ASSISTANT")
V1_SEP, V1_SEP2 = " ", "</s>"

# X-PLUG/mPLUG-Owl mPLUG-Owl2/mplug_owl2/conversation.py: conv_mplug_owl2 (TWO_NO_SYS)
OWL_ROLES = ("USER", "ASSISTANT")
OWL_SEP, OWL_SEP2 = " ", "</s>"

# SHI-Labs/OLA-VLM ola_vlm/conversation.py: conv_llava_llama_3 (MPT, version "llama3")
L3_SYSTEM = ("<|start_header_id|>system<|end_header_id|>\n\nA chat between a curious user and an "
             "artificial intelligence assistant. The assistant gives helpful, detailed, and "
             "polite answers to the user's questions.")
L3_ROLES = ("<|start_header_id|>user<|end_header_id|>\n\n",
            "<|start_header_id|>assistant<|end_header_id|>\n\n")
L3_SEP = "<|eot_id|>"

# SHI-Labs/OLA-VLM ola_vlm/conversation.py: conv_llava_phi_3 (MPT, version "phi3")
P3_SYSTEM = "<|system|>\nYou are a helpful AI assistant."
P3_ROLES = ("\n<|user|>\n", "\n<|assistant|>\n")
P3_SEP = "<|end|>"

# haotian-liu/LLaVA llava/conversation.py: conv_llava_plain
PLAIN_SEP = "\n"


# Conversation.get_prompt, SeparatorStyle.TWO branch (LLaVA conversation.py)
def prompt_two(system, messages, sep, sep2):
    seps = [sep, sep2]
    ret = system + seps[0]
    for i, (role, message) in enumerate(messages):
        if message:
            ret += role + ": " + message + seps[i % 2]
        else:
            ret += role + ":"
    return ret


# Conversation.get_prompt, SeparatorStyle.TWO_NO_SYS branch (mplug_owl2/conversation.py)
def prompt_two_no_sys(messages, sep, sep2):
    seps = [sep, sep2]
    ret = ""
    for i, (role, message) in enumerate(messages):
        if message:
            ret += role + ": " + message + seps[i % 2]
        else:
            ret += role + ":"
    return ret


# Conversation.get_prompt, SeparatorStyle.MPT branch (ola_vlm/conversation.py)
def prompt_mpt(system, messages, sep):
    ret = system + sep
    for role, message in messages:
        if message:
            ret += role + message + sep
        else:
            ret += role
    return ret


# ---------------------------------------------------------------------------
# tokenizer_image_token
# ---------------------------------------------------------------------------
def _insert_separator(X, sep):
    return [ele for sublist in zip(X, [sep] * len(X)) for ele in sublist][:-1]


# haotian-liu/LLaVA llava/mm_utils.py tokenizer_image_token (same in ola_vlm/mm_utils.py)
def tokenizer_image_token_llava(prompt, tokenizer, image_token_index=IMAGE_TOKEN_INDEX):
    prompt_chunks = [tokenizer(chunk).input_ids for chunk in prompt.split('<image>')]
    input_ids = []
    offset = 0
    if len(prompt_chunks) > 0 and len(prompt_chunks[0]) > 0 and prompt_chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        input_ids.append(prompt_chunks[0][0])
    for x in _insert_separator(prompt_chunks, [image_token_index] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


# X-PLUG/mPLUG-Owl mPLUG-Owl2/mplug_owl2/mm_utils.py tokenizer_image_token
def tokenizer_image_token_owl(prompt, tokenizer, image_token_index=IMAGE_TOKEN_INDEX):
    prompt_chunks = [tokenizer(chunk).input_ids if len(chunk) > 0 else []
                     for chunk in prompt.split('<|image|>')]
    input_ids = []
    offset = 0
    if len(prompt_chunks) > 0 and len(prompt_chunks[0]) > 0 and prompt_chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        input_ids.append(prompt_chunks[0][0])
    for x in _insert_separator(prompt_chunks, [image_token_index] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


# torch semantics of `target[a:b] = IGNORE_INDEX` on a 1-D tensor (a, b >= 0 here)
def _set(target, a, b, value=IGNORE_INDEX):
    assert (a is None or a >= 0) and (b is None or b >= 0)  # negative would wrap in torch
    n = len(target)
    a = min(max(a, 0), n) if a is not None else 0
    b = n if b is None else min(max(b, 0), n)
    for k in range(a, b):
        target[k] = value


# torch semantics of `target[a:b] = IGNORE_INDEX` for any a, b (negative = from the end)
def _set_slice(target, a, b, value=IGNORE_INDEX):
    for k in range(*slice(a, b).indices(len(target))):
        target[k] = value


def _count_ne(ids, pad):
    return sum(1 for x in ids if x != pad)


# ---------------------------------------------------------------------------
# preprocess_multimodal: LLaVA llava/train/train.py (mm_use_im_start_end=False,
# version without "mmtag"); mPLUG-Owl2 and OLA-VLM train.py are the same with
# their DEFAULT_IMAGE_TOKEN ("<|image|>" for mPLUG-Owl2, "<image>" otherwise).
# ---------------------------------------------------------------------------
def preprocess_multimodal(sources, image_token):
    for source in sources:
        for sentence in source:
            if image_token in sentence['value']:
                sentence['value'] = sentence['value'].replace(image_token, '').strip()
                sentence['value'] = image_token + '\n' + sentence['value']
                sentence['value'] = sentence['value'].strip()
            replace_token = image_token
            sentence["value"] = sentence["value"].replace(image_token, replace_token)
    return sources


def _build_messages(source, roles_pair):
    roles = {"human": roles_pair[0], "gpt": roles_pair[1]}
    if roles[source[0]["from"]] != roles_pair[0]:
        # Skip the first one if it is not from human
        source = source[1:]
    messages = []
    for j, sentence in enumerate(source):
        role = roles[sentence["from"]]
        assert role == roles_pair[j % 2]
        messages.append([role, sentence["value"]])
    return messages


# haotian-liu/LLaVA llava/train/train.py preprocess_plain (one sample)
def preprocess_plain(source, tokenizer):
    assert len(source) == 2
    assert '<image>' in source[0]['value']
    source[0]['value'] = '<image>'
    conversation = source[0]['value'] + source[1]['value'] + PLAIN_SEP
    input_ids = tokenizer_image_token_llava(conversation, tokenizer)
    target = list(input_ids)
    tokenized_len = len(tokenizer_image_token_llava(source[0]['value'], tokenizer))
    _set(target, 0, tokenized_len)
    return input_ids, target, False


# Shared body of LLaVA preprocess_v1 (llava/train/train.py) and mPLUG-Owl2
# preprocess_v1 (mplug_owl2/train/train.py); they differ only in the template,
# the tokenizer_image_token variant and LLaVA's IS_TOKENIZER_GREATER_THAN_0_14
# correction (inert for legacy=True; taken for v1_nonlegacy).
def _preprocess_v1_common(conversation, tokenizer, has_image, tit, roles_pair, sep_, sep2,
                          llava_fix):
    if has_image:
        input_ids = tit(conversation, tokenizer)
    else:
        input_ids = tokenizer(conversation, max_length=tokenizer.model_max_length,
                              truncation=True).input_ids
    target = list(input_ids)
    mismatch = False

    sep = sep_ + roles_pair[1] + ": "
    total_len = _count_ne(target, tokenizer.pad_token_id)
    rounds = conversation.split(sep2)
    cur_len = 1
    _set(target, None, cur_len)
    for i, rou in enumerate(rounds):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        if has_image:
            round_len = len(tit(rou, tokenizer))
            instruction_len = len(tit(parts[0], tokenizer)) - 2
        else:
            round_len = len(tokenizer(rou).input_ids)
            instruction_len = len(tokenizer(parts[0]).input_ids) - 2
        # LLaVA: `if i != 0 and not tokenizer.legacy and IS_TOKENIZER_GREATER_THAN_0_14`
        # (tokenizers 0.15.2 >= 0.14, so taken iff tokenizer.legacy is False)
        if llava_fix and i != 0 and not tokenizer.legacy:
            round_len -= 1
            instruction_len -= 1
        _set(target, cur_len, cur_len + instruction_len)
        cur_len += round_len
    _set(target, cur_len, None)
    if cur_len < tokenizer.model_max_length:
        if cur_len != total_len:
            _set(target, None, None)
            mismatch = True  # "WARNING: tokenization mismatch"
    return input_ids, target, mismatch


# haotian-liu/LLaVA llava/train/train.py preprocess_v1 with conv_vicuna_v1
def preprocess_v1(source, tokenizer, has_image):
    messages = _build_messages(source, V1_ROLES)
    conversation = prompt_two(V1_SYSTEM, messages, V1_SEP, V1_SEP2)
    return _preprocess_v1_common(conversation, tokenizer, has_image,
                                 tokenizer_image_token_llava, V1_ROLES, V1_SEP, V1_SEP2, True)


# X-PLUG/mPLUG-Owl mPLUG-Owl2/mplug_owl2/train/train.py preprocess_v1 with conv_mplug_owl2
def preprocess_mplug_owl2(source, tokenizer, has_image):
    messages = _build_messages(source, OWL_ROLES)
    conversation = prompt_two_no_sys(messages, OWL_SEP, OWL_SEP2)
    # mPLUG-Owl2's preprocess_v1 has no IS_TOKENIZER_GREATER_THAN_0_14 branch.
    return _preprocess_v1_common(conversation, tokenizer, has_image,
                                 tokenizer_image_token_owl, OWL_ROLES, OWL_SEP, OWL_SEP2, False)


# SHI-Labs/OLA-VLM ola_vlm/train/train.py preprocess_llama_3 with conv_llava_llama_3
def preprocess_llama_3(source, tokenizer, has_image):
    tit = tokenizer_image_token_llava
    messages = _build_messages(source, L3_ROLES)
    conversation = prompt_mpt(L3_SYSTEM, messages, L3_SEP)
    if has_image:
        input_ids = tit(conversation, tokenizer)
    else:
        input_ids = tokenizer(conversation, max_length=tokenizer.model_max_length,
                              truncation=True).input_ids
    target = list(input_ids)
    mismatch = False

    sep = L3_SEP + L3_ROLES[1]
    total_len = _count_ne(target, tokenizer.pad_token_id)
    rounds = conversation.split(L3_SEP)
    re_rounds = [L3_SEP.join(rounds[:3])]
    for conv_idx in range(3, len(rounds), 2):
        re_rounds.append(L3_SEP.join(rounds[conv_idx:conv_idx + 2]))
    cur_len = 1
    _set(target, None, cur_len)
    for i, rou in enumerate(re_rounds):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        if has_image:
            round_len = len(tit(rou, tokenizer))
            instruction_len = len(tit(parts[0], tokenizer)) - 2
        else:
            round_len = len(tokenizer(rou).input_ids)
            instruction_len = len(tokenizer(parts[0]).input_ids) - 2
        # (upstream has the `if i > 0: ... -= 1` correction commented out)
        _set(target, cur_len, cur_len + instruction_len)
        cur_len += round_len
    _set(target, cur_len, None)
    if cur_len < tokenizer.model_max_length:
        if cur_len != total_len:
            _set(target, None, None)
            mismatch = True
    return input_ids, target, mismatch


# SHI-Labs/OLA-VLM ola_vlm/train/train.py preprocess_phi_3 with conv_llava_phi_3
# (ola_vlm/train/ola_vlm_train.py has the same function).  Same shape as
# preprocess_llama_3 (system + first round joined, then user+gpt pairs, split on
# "<|end|>"), but upstream subtracts 2 from round_len and instruction_len for every
# round after the first (`if i > 0: round_len -= 2; instruction_len -= 2`): a later
# round starts with "\n<|user|>", which tokenized alone gives "\u2581", "\n" that the
# whole conversation does not have ("<|end|>" has rstrip=True and eats the "\n").
# Each round string also lacks its closing "<|end|>"; the arithmetic only adds up
# when the tokenizer prepends <s> (add_bos_token=True: round 0 is covered by
# cur_len = 1, later rounds by their own <s>).  Phi-3-mini-4k-instruct's current
# config has add_bos_token=False, so each round after the first is one token short
# and every multi-round sample under model_max_length is a mismatch.  Reproduced as is.
def preprocess_phi_3(source, tokenizer, has_image):
    tit = tokenizer_image_token_llava  # ola_vlm/mm_utils.py tokenizer_image_token
    messages = _build_messages(source, P3_ROLES)
    conversation = prompt_mpt(P3_SYSTEM, messages, P3_SEP)
    if has_image:
        input_ids = tit(conversation, tokenizer)
    else:
        input_ids = tokenizer(conversation, max_length=tokenizer.model_max_length,
                              truncation=True).input_ids
    target = list(input_ids)
    mismatch = False

    sep = P3_SEP + P3_ROLES[1]
    total_len = _count_ne(target, tokenizer.pad_token_id)
    rounds = conversation.split(P3_SEP)
    re_rounds = [P3_SEP.join(rounds[:3])]  # system + user + gpt
    for conv_idx in range(3, len(rounds), 2):
        re_rounds.append(P3_SEP.join(rounds[conv_idx:conv_idx + 2]))  # user + gpt
    cur_len = 1
    _set_slice(target, None, cur_len)
    for i, rou in enumerate(re_rounds):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        if has_image:
            round_len = len(tit(rou, tokenizer))
            instruction_len = len(tit(parts[0], tokenizer)) - 2
        else:
            round_len = len(tokenizer(rou).input_ids)
            instruction_len = len(tokenizer(parts[0]).input_ids) - 2
        if i > 0:
            round_len -= 2
            instruction_len -= 2
        _set_slice(target, cur_len, cur_len + instruction_len)
        cur_len += round_len
    _set_slice(target, cur_len, None)
    if cur_len < tokenizer.model_max_length:
        if cur_len != total_len:
            _set_slice(target, None, None)
            mismatch = True  # "WARNING: tokenization mismatch"
    return input_ids, target, mismatch


PREPROCESS = {
    "plain": lambda s, t, h: preprocess_plain(s, t),
    "v1": preprocess_v1,
    "v1_nonlegacy": preprocess_v1,  # same code; the tokenizer has legacy=False
    "mplug_owl2": preprocess_mplug_owl2,
    "llava_llama_3": preprocess_llama_3,
    "llava_phi_3": preprocess_phi_3,
}


# LazySupervisedDataset.__getitem__ + DataCollatorForSupervisedDataset, one sample
# (haotian-liu/LLaVA, mPLUG-Owl2 and OLA-VLM train.py are identical here).
def render(template, record, tokenizer):
    placeholder = TEMPLATES[template]["placeholder"]
    sources = copy.deepcopy(record["conversations"])
    has_image = "image" in record
    if has_image:
        sources = preprocess_multimodal([sources], placeholder)[0]
    input_ids, labels, mismatch = PREPROCESS[template](sources, tokenizer, has_image)
    full_len = len(input_ids)
    m = tokenizer.model_max_length
    return input_ids[:m], labels[:m], mismatch, full_len > m


# ---------------------------------------------------------------------------
# corpus
# ---------------------------------------------------------------------------
SCRIPTS = {
    "zh": "我们今天去公园散步，天气很好。机器学习是人工智能的一个分支。你好世界！",
    "ja": "今日はいい天気ですね。東京タワーに行きましょう。ひらがなとカタカナ、漢字。",
    "ko": "안녕하세요, 만나서 반갑습니다. 한국어 텍스트입니다. 서울은 대한민국의 수도입니다.",
    "ar": "مرحبا بالعالم. اللغة العربية تكتب من اليمين إلى اليسار. شكرا جزيلا.",
    "hi": "नमस्ते दुनिया। हिन्दी भारत की एक प्रमुख भाषा है। धन्यवाद।",
    "ru": "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "el": "Γειά σου Κόσμε! Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "th": "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ ขอบคุณมากครับ",
    "he": "שלום עולם, זהו טקסט בעברית.",
}
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸🇬🇧", "🧑🏿‍💻", "❤️", "🤖", "🐍", "👩‍🔬", "🎉🎊"]
WORDS = ("the quick brown fox jumps over lazy dog image model vision language token "
         "picture shows a cat sitting on red sofa near window with sunlight streaming "
         "through curtains while two children play board games on wooden floor").split()


def mixed_text(rng, n_chars):
    parts = []
    size = 0
    pools = [
        lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))),
        lambda: rng.choice(list(SCRIPTS.values())),
        lambda: "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4))),
        lambda: str(rng.randint(0, 10 ** rng.randint(1, 12))),
        lambda: rng.choice([" ", "  ", "\n", "\n\n", "\t", "\r\n", "   \n ", " \t "]),
        lambda: rng.choice(["!!!", "...", "?!", "---", "(x)", "[1]", "{a: b}", "\"quoted\"",
                            "'single'", "I'm", "they'LL", "don't", "it's", "we've"]),
        lambda: "e\u0301 n\u0303 a\u030a" + rng.choice(["", " Z\u0351\u0352\u0353"]),
        lambda: rng.choice(["def f(x):\n    return x * 2\n", "int main(void) { return 0; }",
                            "for (int i = 0; i < n; ++i) a[i] += b[i];", "x = {'k': [1, 2, 3]}"]),
    ]
    while size < n_chars:
        p = rng.choice(pools)()
        parts.append(p)
        size += len(p)
    return "".join(parts)[:n_chars]


def build_corpus():
    c = [
        "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\t\t\tindented",
        "Hello", "Hello world", "Hello world!", "hello world", " Hello world", "Hello world ",
        "  Hello   world  ", "Hello\tworld", "Hello\nworld", "Hello\n\nworld", "Hello\r\nworld",
        "The quick brown fox jumps over the lazy dog.",
        "A picture of a cat sitting on a red sofa, next to a window.",
        "What is shown in this image? Please describe it in detail.",
        "Line one\nLine two\nLine three\n",
        "trailing newline\n", "\nleading newline", "multiple   spaces   between   words",
        "    four leading spaces", "trailing spaces    ", " \t mixed \t whitespace \t ",
        "I'm", "I'M here", "they'LL", "don't", "Don'T", "you're we've she'd it's", "'s 't 're 've 'm 'll 'd",
        "rock 'n' roll", "O'Neil's", "quotes \"double\" and 'single'",
        "1", "12", "123", "1234", "12345", "1234567", "1234567890123", "3.14159", "-42", "+1-800-555-0199",
        "1,000,000", "2024-01-15T12:34:56Z", "0x1F600", "1e-10", "v1.2.3", "50%",
        "!!!", "???", "...", "!?!?!?", "--", "---", "***", "=== === ===", "$$$", "@#$%^&*()",
        "<>", "<<>>", "[[]]", "{{}}", "a.b.c", "foo_bar_baz", "camelCaseWord", "snake_case_word",
        "e-mail: someone@example.com", "https://example.com/path?q=1&r=2#frag",
        "def hello():\n    print(\"Hello, world!\")\n    return 42\n",
        "int main(void) {\n\treturn 0;\n}\n",
        "for i in range(10):\n    if i % 2 == 0:\n        continue\n",
        "SELECT * FROM users WHERE id = 1;",
        "<div class=\"x\">text</div>",
        "x = [1, 2, 3]; y = {\"a\": 1}",
        SCRIPTS["zh"], SCRIPTS["ja"], SCRIPTS["ko"], SCRIPTS["ar"], SCRIPTS["hi"], SCRIPTS["ru"],
        SCRIPTS["el"], SCRIPTS["th"], SCRIPTS["he"],
        "中文", "日本語", "한국어", "ελληνικά", "русский", "ไทย", "हिन्दी", "عربي",
        "Mixed English 和中文 with 日本語 and 한국어.",
        "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸🇬🇧🇫🇷", "🧑🏿‍💻 codes", "I ❤️ NY", "emoji😀inside",
        "e\u0301", "cafe\u0301", "café", "n\u0303", "A\u030a", "Z\u0351\u0352\u0353\u0354\u0355",
        "\u00a0nbsp\u00a0", "zero\u200bwidth", "soft\u00adhyphen", "\u2581already\u2581underscored",
        "\ufeffBOM", "tab\tand\u3000ideographic space", "ﬁ ligature", "Ω Å K",
        "\x01\x02 control \x7f", "bell\x07 and escape\x1b[0m",
        "</s>", "<s>", "<unk>", "Hello</s>USER: hi", "a </s> b", "<s>text</s>", "x<unk>y",
        "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
        "<|begin_of_text|>x", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_250|>",
        "<image>", "<|image|>", "<image>\nDescribe the image.", "USER: <image>\nWhat is this? ASSISTANT:",
        "<|eot_id", "|eot_id|>", "<pad>", "<|image|>\nDescribe",
    ]
    rng = random.Random(0)
    while len(c) < 146:
        c.append(mixed_text(rng, rng.randint(20, 300)))
    for n in (5000, 5000, 5200, 4800):
        c.append(mixed_text(rng, n))
    assert all("\x00" not in s for s in c)
    return c


# extra strings for phi3_tokenize.json (after the corpus)
PHI3_EXTRA_TEXTS = ["<|user|>\nhi<|end|>\n<|assistant|>\nyes<|end|>", "a <|end|>  b",
                    "<|system|>   x", "x   <|end|>"]


# ---------------------------------------------------------------------------
# conversation records
# ---------------------------------------------------------------------------
QUESTIONS = [
    "What is shown in this image?",
    "Describe the image in detail.",
    "What color is the car?",
    "How many people are in the picture?",
    "Is there a dog in the image? Answer yes or no.",
    "What is the man holding in his hand?",
    "Can you read the text on the sign?",
    "Where might this photo have been taken?",
    "What's unusual about this scene?",
    "Explain the chart.",
    "What time of day is it?",
    "这张图片里有什么？",
    "この写真には何が写っていますか？",
    "이 사진에 무엇이 있나요?",
    "Что изображено на картинке?",
    "ما الذي يظهر في هذه الصورة؟",
    "Write a short poem about the picture 🎨",
    "Convert the table to JSON:\n| a | b |\n|---|---|\n| 1 | 2 |",
    "What does this code do?\n```python\nprint(sum(range(10)))\n```",
    "  Is it raining?  ",
    "\nWhat is the brand of the laptop?\n",
    "What is 1234567 + 3.14159?",
    "they'LL say I'm wrong, don't they?",
    "Count the apples.\tThen the oranges.",
]
ANSWER_SENTENCES = [
    "The image shows a cat sitting on a red sofa.",
    "There are two people standing next to a blue car.",
    "It appears to be late afternoon, judging by the long shadows.",
    "The sign reads \"OPEN 24 HOURS\".",
    "Yes.",
    "No",
    "The man is holding an umbrella in his left hand.",
    "This photo was likely taken in a city park during autumn.",
    "The chart shows revenue growing from 1,000 to 12,345 units.",
    "图片中有一只猫和一只狗。",
    "写真には富士山が写っています。",
    "사진에는 고양이가 있습니다.",
    "На картинке изображена собака.",
    "It's a sunny day 😀 and everyone looks happy 👨‍👩‍👧‍👦.",
    "```python\nx = [i * i for i in range(5)]\n```",
    "1. First item\n2. Second item\n3. Third item",
    "The answer is 3.14159.",
    "I'm not sure, but they'LL probably agree.",
    "  There is extra whitespace here.  ",
    "Line one.\nLine two.\n\nParagraph two.",
    "Temperature: 23°C; humidity: 45%.",
    "العنوان مكتوب باللغة العربية.",
]
# Strings that may provoke upstream's mismatch path depending on the template.
TRICKY = {
    "llama2": ["</s>", "<unk>", " ASSISTANT: ", "<s>"],
    "llama3": ["<|eot_id|>", "<pad>",
               "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|begin_of_text|>"],
    "phi3": ["<|end|>", "<|endoftext|>", "<|end|>\n<|assistant|>\n", "</s>"],
}
# Phi-3 chat-control literals put into answers (llava_phi_3 only, about 15% of records)
PHI3_LITERALS = ["<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<|endoftext|>",
                 " <|end|>  ", "<|end|>\n<|user|>\n", "<|placeholder1|>", "<s>", "</s>",
                 "<unk>", "\n<|assistant|>\n"]
CROSS_TRICKY = ["</s>", "<|eot_id|>", "<s>", "<unk>", "USER:", "###", "<|end_header_id|>"]


def answer(rng, long=False):
    n = rng.randint(45, 80) if long else rng.choice([1, 1, 1, 1, 2, 2, 3])
    s = " ".join(rng.choice(ANSWER_SENTENCES) for _ in range(n))
    if rng.random() < 0.08:
        s = rng.choice([" ", "\n", "  "]) + s
    if rng.random() < 0.08:
        s = s + rng.choice([" ", "\n", "  ", "\n\n"])
    return s


def question(rng, long=False):
    q = rng.choice(QUESTIONS)
    if long:
        q = q + " Context: " + " ".join(rng.choice(ANSWER_SENTENCES) for _ in range(rng.randint(40, 60)))
    return q


def place(rng, q, ph, where):
    if where == "start":
        return ph + rng.choice(["\n", "\n", " ", ""]) + q
    if where == "end":
        return q + rng.choice(["\n", " ", ""]) + ph
    if where == "middle":
        words = q.split(" ")
        k = rng.randint(0, len(words))
        return " ".join(words[:k] + [ph] + words[k:])
    if where == "only":
        return ph
    if where == "double":
        return ph + "\n" + q + " " + ph
    raise ValueError(where)


def build_records(template, rng):
    cfg = TEMPLATES[template]
    ph = cfg["placeholder"]
    other = "<|image|>" if ph == "<image>" else "<image>"
    tricky_own = TRICKY[cfg["tokenizer"]]
    records, converted = [], []
    for i in range(N_RECORDS_BY_TEMPLATE.get(template, N_RECORDS)):
        rid = f"{template}-{i:04d}"
        text_only = template != "plain" and rng.random() < 0.15
        long = rng.random() < 0.10
        dialect = (not text_only) and rng.random() < 0.10
        use_ph = other if dialect else ph
        if template == "plain":
            n_rounds = 1
        else:
            n_rounds = 1 if rng.random() < 0.4 else rng.randint(2, 5)
        conv = []
        for r in range(n_rounds):
            q = question(rng, long=long and r == 0 and rng.random() < 0.5)
            a = answer(rng, long=long and r == n_rounds - 1)
            conv.append({"from": "human", "value": q})
            conv.append({"from": "gpt", "value": a})
        if not text_only:
            where = rng.choice(["start", "start", "start", "end", "middle", "middle", "only", "double"])
            conv[0]["value"] = place(rng, conv[0]["value"], use_ph, where)
        # mismatch provokers (about 6%) and cross-template literals (about 8%)
        u = rng.random()
        if u < 0.06:
            t = rng.choice(tricky_own)
            msg = rng.randrange(len(conv))
            v = conv[msg]["value"]
            # insertion point outside any placeholder occurrence
            bad = set()
            for p_ in ("<image>", "<|image|>"):
                j = v.find(p_)
                while j >= 0:
                    bad.update(range(j + 1, j + len(p_)))
                    j = v.find(p_, j + 1)
            k = rng.choice([x for x in range(len(v) + 1) if x not in bad])
            conv[msg]["value"] = v[:k] + t + v[k:]
        elif u < 0.14:
            msg = rng.randrange(len(conv))
            conv[msg]["value"] += " " + rng.choice(CROSS_TRICKY) + " end"
        elif u < 0.16 and template != "plain":
            conv[-1]["value"] = ""  # empty answer: get_prompt emits "ROLE:" with no separator
        elif u < 0.18 and template != "plain" and not text_only:
            conv = [{"from": "gpt", "value": "Preamble from gpt that upstream drops."}] + conv
        if template == "llava_phi_3" and rng.random() < 0.15:
            gpt = [k for k, s in enumerate(conv) if s["from"] == "gpt"]
            msg = rng.choice(gpt)
            v = conv[msg]["value"]
            k = rng.randint(0, len(v))
            conv[msg]["value"] = v[:k] + rng.choice(PHI3_LITERALS) + v[k:]
        rec = {"id": rid}
        if not text_only:
            rec["image"] = f"img_{i:04d}.jpg"
        rec["conversations"] = conv
        records.append(rec)
        converted.append(dialect)
    return records, converted


def convert_dialect(record, template):
    ph = TEMPLATES[template]["placeholder"]
    other = "<|image|>" if ph == "<image>" else "<image>"
    r = copy.deepcopy(record)
    for s in r["conversations"]:
        s["value"] = s["value"].replace(other, ph)
    return r


# ---------------------------------------------------------------------------
def main():
    OUT.mkdir(parents=True, exist_ok=True)
    summary = []

    corpus = build_corpus()
    (OUT / "corpus.json").write_text(dump(corpus), encoding="utf-8")

    sp = spm.SentencePieceProcessor(model_file=str(LLAMA2_MODEL))
    assert sp.GetPieceSize() == 32000
    hf2 = LlamaTokenizer(vocab_file=str(LLAMA2_MODEL), legacy=True)
    hf2n = LlamaTokenizer(vocab_file=str(LLAMA2_MODEL), legacy=False)
    assert hf2n.legacy is False and hf2n.sp_model.encode("a") != sp.encode("a")  # no dummy prefix
    l2 = {"encode": [], "pieces": [], "hf_slow": [], "decode": [], "hf_slow_nonlegacy": []}
    for s in corpus:
        ids = sp.EncodeAsIds(s)
        l2["encode"].append([1] + ids)
        l2["pieces"].append(sp.EncodeAsPieces(s))
        l2["hf_slow"].append(hf2(s).input_ids)
        l2["decode"].append(sp.DecodeIds(ids))
        l2["hf_slow_nonlegacy"].append(hf2n(s).input_ids)
    (OUT / "llama2.json").write_text(dump(l2), encoding="utf-8")

    enc, special = llama3_encoding()
    assert enc.n_vocab == 128256 and special["<|eot_id|>"] == 128009
    l3 = {"pattern": LLAMA3_PATTERN, "special_tokens": special, "encode": [], "decode": []}
    for s in corpus:
        ids = enc.encode(s, allowed_special="all")
        l3["encode"].append([128000] + ids)
        l3["decode"].append(enc.decode(ids))
    (OUT / "llama3.json").write_text(dump(l3), encoding="utf-8")
    summary.append(f"corpus: {len(corpus)} strings, longest {max(map(len, corpus))} chars; "
                   f"llama2 tokens {sum(map(len, l2['encode']))}, llama3 tokens {sum(map(len, l3['encode']))}")
    n_diff = sum(a != b for a, b in zip(l2["hf_slow"], l2["hf_slow_nonlegacy"]))
    summary.append(f"llama2 hf_slow_nonlegacy: {sum(map(len, l2['hf_slow_nonlegacy']))} tokens, "
                   f"differs from hf_slow (legacy) on {n_diff} of {len(corpus)} strings")

    # Phi-3 reference tokenizer (OLA-VLM: use_fast=False), config's own model_max_length
    tok3 = phi3_load(use_fast=False)
    assert type(tok3).__name__ == "LlamaTokenizer" and tok3.legacy is False
    p3_texts = corpus + PHI3_EXTRA_TEXTS
    p3 = {"texts": p3_texts, "ids": [tok3(s).input_ids for s in p3_texts]}
    (OUT / "phi3_tokenize.json").write_text(dump(p3), encoding="utf-8")
    tok3f = phi3_load(use_fast=True)  # summary only: how far the fast tokenizer is off
    n_fast = sum(tok3f(s).input_ids != ids for s, ids in zip(p3_texts, p3["ids"]))
    n_l2 = sum(a != b for a, b in zip(p3["ids"], l2["hf_slow_nonlegacy"]))
    summary.append(f"phi3_tokenize: {len(p3_texts)} strings, {sum(map(len, p3['ids']))} tokens; "
                   f"differs from llama2 hf_slow_nonlegacy on {n_l2} of {len(corpus)} corpus strings; "
                   f"fast tokenizer ({type(tok3f).__name__}) differs on {n_fast}")

    (OUT / "render_params.json").write_text(dump(TEMPLATES), encoding="utf-8")
    for template, cfg in TEMPLATES.items():
        rng = random.Random(f"render-{template}")
        if cfg["tokenizer"] == "llama2":
            tok = llama2_slow(cfg["max_len"], cfg["legacy"])
            assert tok.legacy is cfg["legacy"]
        elif cfg["tokenizer"] == "phi3":
            tok = phi3_slow(cfg["max_len"])
            assert tok.legacy is cfg["legacy"]
        else:
            tok = Llama3Tok(enc, cfg["max_len"])
        assert tok.pad_token_id == cfg["pad_token_id"]
        records, converted = build_records(template, rng)
        lines, n_mis, n_trunc, n_text, n_conv = [], 0, 0, 0, 0
        # non-legacy templates: also render with the legacy tokenizer, for the summary only
        tok_leg = (llama2_slow(cfg["max_len"], True)
                   if cfg["tokenizer"] == "llama2" and cfg.get("legacy") is False else None)
        n_ids_diff = n_lab_diff = 0
        # llava_phi_3: also render with add_bos_token=True, for the summary only
        tok_bos = phi3_slow(cfg["max_len"], add_bos_token=True) if cfg["tokenizer"] == "phi3" else None
        n_bos_mis = n_multi = n_multi_mis = 0
        for rec, conv in zip(records, converted):
            src = convert_dialect(rec, template) if conv else rec
            ids, labels, mismatch, truncated = render(template, src, tok)
            assert len(ids) == len(labels)
            line = {"id": rec["id"], "input_ids": ids, "labels": labels, "mismatch": mismatch}
            if conv:
                line["dialect_converted"] = True
            lines.append(dump(line))
            n_mis += mismatch
            n_trunc += truncated
            n_text += "image" not in rec
            n_conv += conv
            if tok_leg is not None:
                ids_l, labels_l, _, _ = render(template, src, tok_leg)
                n_ids_diff += ids != ids_l
                n_lab_diff += labels != labels_l
            if tok_bos is not None:
                n_bos_mis += render(template, src, tok_bos)[2]
                multi = sum(s_["from"] == "human" for s_ in src["conversations"]) > 1
                n_multi += multi
                n_multi_mis += multi and mismatch
        (OUT / f"render_{template}_data.json").write_text(dump(records), encoding="utf-8")
        (OUT / f"render_{template}_expected.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        summary.append(f"{template}: {len(records)} records, text-only {n_text}, dialect_converted {n_conv}, "
                       f"mismatch {n_mis}, truncated {n_trunc} (max_len {cfg['max_len']})")
        if tok_leg is not None:
            summary.append(f"  {template} vs legacy tokenizer on the same records: input_ids differ in "
                           f"{n_ids_diff}, labels differ in {n_lab_diff}")
        if tok_bos is not None:
            summary.append(f"  {template}: multi-round records {n_multi}, of them mismatch {n_multi_mis}; "
                           f"with add_bos_token=True the records would give mismatch {n_bos_mis}")

    total = sum(p.stat().st_size for p in OUT.iterdir() if p.is_file())
    summary.append(f"total size of {OUT.relative_to(ROOT)}: {total} bytes")
    print("\n".join(summary))


if __name__ == "__main__":
    sys.exit(main())
