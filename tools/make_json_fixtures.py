"""The JSON files transformers' save_pretrained writes, as users' model folders
hold them, with the Python-isms jansson refuses:

  tokenizer/        LlamaTokenizer (slow) from the LLaMA-2 tokenizer.model:
                    tokenizer_config.json has "model_max_length":
                    1000000000000000019884624838656 (VERY_LARGE_INTEGER,
                    int(1e30)), as every tokenizer saved without a length
                    (LlamaTokenizerFast converted from it writes the same
                    two files, byte for byte: checked, not kept)
  llava/            4.37.2 only: a tiny llava-hf LlavaConfig (config.json)
                    and its GenerationConfig (generation_config.json)
  original/         a tiny LlamaConfig with LLaVA's mm_* keys (original LLaVA
                    and mPLUG-Owl2 folders) and its generation_config.json;
                    clip/ the tiny CLIPConfig of the vision tower
  preprocessor/     CLIPImageProcessor (preprocessor_config.json)
  inf_config/       the tiny LlamaConfig with rope_theta = float("inf")
                    (json.dumps writes Infinity)
  huge_dim/         the tiny LlamaConfig with hidden_size = int(1e30): a
                    dimension beyond any int, which vlm must refuse by name
  trainer_state.json  transformers.TrainerState.save_to_json with a nan loss
                    and an inf grad_norm in log_history (HF Trainer logs a nan
                    loss when a step diverges), and total_flos
  dataset.json      a LLaVA dataset written with json.dump: a record whose
                    "id" is 10**30 and that holds a nan score

The tokenizer.model files are deleted: tests copy
../shared/assets/tokenizers/llama2/tokenizer.model beside the JSON files.
Run tools/make_json_fixtures.sh: it runs this with transformers 4.37.2 (the
pin of upstream LLaVA) and 4.31.0 (mPLUG-Owl2's), writing
tests/fixtures/json/transformers-<version>/.
"""
import json
import math
import os
import shutil

import transformers
from transformers import (CLIPConfig, CLIPImageProcessor, GenerationConfig, LlamaConfig, LlamaTokenizer,
                          LlamaTokenizerFast, TrainerState)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(ROOT, "..", "shared", "assets", "tokenizers", "llama2", "tokenizer.model")
OUT = os.path.join(ROOT, "tests", "fixtures", "json", "transformers-" + transformers.__version__)

TEXT = dict(vocab_size=32000, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=64)
VISION = dict(hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, image_size=28,
              patch_size=14)


def drop(folder, *names):
    for name in names:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            os.remove(path)


def tokenizers():
    slow = LlamaTokenizer(VOCAB)
    slow.save_pretrained(os.path.join(OUT, "tokenizer"))
    drop(os.path.join(OUT, "tokenizer"), "tokenizer.model")
    fast_dir = os.path.join(OUT, "tokenizer_fast")
    LlamaTokenizerFast(vocab_file=VOCAB, from_slow=True).save_pretrained(fast_dir)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        with open(os.path.join(fast_dir, name)) as a, open(os.path.join(OUT, "tokenizer", name)) as b:
            assert a.read() == b.read(), name
    shutil.rmtree(fast_dir)
    assert slow.model_max_length == 1000000000000000019884624838656


def configs():
    llama = LlamaConfig(**TEXT)
    if hasattr(transformers, "LlavaConfig"):
        from transformers import CLIPVisionConfig, LlavaConfig
        llava = LlavaConfig(vision_config=CLIPVisionConfig(**VISION).to_dict(), text_config=llama.to_dict())
        llava.save_pretrained(os.path.join(OUT, "llava"))
        GenerationConfig.from_model_config(llava).save_pretrained(os.path.join(OUT, "llava"))
    # original LLaVA's LlavaConfig(LlamaConfig) and mPLUG-Owl2's: the mm_* keys its training sets
    original = LlamaConfig(**TEXT)
    original.mm_vision_tower = "clip"
    original.mm_projector_type = "mlp2x_gelu"
    original.mm_hidden_size = VISION["hidden_size"]
    original.mm_vision_select_layer = -2
    original.mm_vision_select_feature = "patch"
    original.save_pretrained(os.path.join(OUT, "original"))
    GenerationConfig.from_model_config(original).save_pretrained(os.path.join(OUT, "original"))
    CLIPConfig(vision_config=VISION, text_config=dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, vocab_size=99),
               projection_dim=8).save_pretrained(os.path.join(OUT, "original", "clip"))
    inf = LlamaConfig(**TEXT, rope_theta=float("inf"))
    inf.save_pretrained(os.path.join(OUT, "inf_config"))
    LlamaConfig(**dict(TEXT, hidden_size=int(1e30))).save_pretrained(os.path.join(OUT, "huge_dim"))
    CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}).save_pretrained(
        os.path.join(OUT, "preprocessor"))


def logs():
    state = TrainerState(global_step=2, max_steps=2, num_train_epochs=1, total_flos=1.5e20,
                         log_history=[{"loss": float("nan"), "learning_rate": 2e-5, "epoch": 0.5, "step": 1},
                                      {"loss": 1.25, "grad_norm": float("inf"), "epoch": 1.0, "step": 2}])
    state.save_to_json(os.path.join(OUT, "trainer_state.json"))
    records = [{"id": 10 ** 30, "image": "a.png", "score": float("nan"),
                "conversations": [{"from": "human", "value": "<image>\nWhat is it?"},
                                  {"from": "gpt", "value": "A cat."}]},
               {"id": "b", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
                "weight": float("-inf"), "tokens": 12345678901234567890123}]
    with open(os.path.join(OUT, "dataset.json"), "w") as f:
        json.dump(records, f, indent=2)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    tokenizers()
    configs()
    logs()
    # what the files hold, checked with Python's own reader
    with open(os.path.join(OUT, "tokenizer", "tokenizer_config.json")) as f:
        assert json.load(f)["model_max_length"] == 1000000000000000019884624838656
    with open(os.path.join(OUT, "trainer_state.json")) as f:
        assert math.isnan(json.load(f)["log_history"][0]["loss"])
    for dirpath, _, files in sorted(os.walk(OUT)):
        for name in sorted(files):
            print(os.path.relpath(os.path.join(dirpath, name), ROOT), os.path.getsize(os.path.join(dirpath, name)))


if __name__ == "__main__":
    main()
