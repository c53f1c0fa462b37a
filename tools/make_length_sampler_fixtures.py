"""HF Trainer's --group_by_length order (tests/fixtures/owl2/length_sampler.json), from the references.

What runs, none of it written here:
  - upstream mPLUG-Owl2's LazySupervisedDataset over tests/fixtures/owl2/render_v1_data.json
    with --version v1 (built by tools/make_owl2_text_fixtures.py's dataset(): the same setup
    as train(), the LLaMA-2 tokenizer), at model_max_length 2048 and 64 (the text-only path
    truncates in its tokenizer call, the image path does not);
  - transformers 4.31.0's Trainer._get_train_sampler with TrainingArguments(group_by_length=True,
    per_device_train_batch_size=B, gradient_accumulation_steps=A): the LengthGroupedSampler it
    builds measures len(dataset[i]["input_ids"]) itself and orders with
    get_length_grouped_indices (mPLUG-Owl2's trainer falls through to it when
    group_by_modality_length is False);
  - torch 2.0.1's randperm: the order draws torch.randperm(n) from the global generator, so the
    permutation is recorded by seeding the generator, drawing it, reseeding, and iterating the
    sampler.

Produces tests/fixtures/owl2/length_sampler.json (compact; reruns are byte-identical):
  {"data": the data file, "versions", "cases": [{"model_max_length", "per_device_train_batch_size",
   "gradient_accumulation_steps", "sampler_batch_size" (what the Trainer passed), "seed",
   "lengths" (the sampler's, per record in data order), "perm" (randperm's draw), "order"}]}
The cases cover mega_batch_mult = min(n // (4 * batch), 50) at 50, in between, and clamped to 1,
an incomplete last megabatch, and the longest-first swap.

Usage: tools/make_length_sampler_fixtures.sh (MPLUG_OWL_DIR as for make_owl2_text_fixtures.sh).
Developers only; `make test` never needs it.
"""
import json
import os
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_owl2_text_fixtures as owl2_text  # noqa: E402  (imports upstream's mplug_owl2)

import torch  # noqa: E402
import transformers  # noqa: E402

DATA = os.path.join(owl2_text.OUT, "render_v1_data.json")
OUT = os.path.join(owl2_text.OUT, "length_sampler.json")
# (model_max_length, per_device_train_batch_size, gradient_accumulation_steps, seed)
CASES = [(2048, 16, 1, 0), (2048, 4, 1, 1), (2048, 1, 1, 2), (2048, 8, 4, 3), (2048, 64, 2, 4),
         (64, 16, 1, 5), (64, 3, 2, 6)]


def main():
    with open(DATA, encoding="utf-8") as f:
        records = json.load(f)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        mdir = owl2_text.model_dir(tmp)
        imgdir = owl2_text.image_folder(tmp, records)
        datasets = {}
        for max_len, batch, accum, seed in CASES:
            if max_len not in datasets:
                datasets[max_len] = owl2_text.dataset(DATA, mdir, imgdir, max_len)
            ds, _, tok = datasets[max_len]
            args = transformers.TrainingArguments(output_dir=os.path.join(tmp, "out"), group_by_length=True,
                                                  per_device_train_batch_size=batch,
                                                  gradient_accumulation_steps=accum, no_cuda=True,
                                                  report_to=[])
            trainer = types.SimpleNamespace(args=args, train_dataset=ds, tokenizer=tok)
            sampler = transformers.Trainer._get_train_sampler(trainer)
            assert isinstance(sampler, transformers.trainer_pt_utils.LengthGroupedSampler), type(sampler)
            torch.manual_seed(seed)
            perm = torch.randperm(len(ds)).tolist()
            torch.manual_seed(seed)
            order = list(iter(sampler))
            assert sorted(order) == list(range(len(ds)))
            cases.append({"model_max_length": max_len, "per_device_train_batch_size": batch,
                          "gradient_accumulation_steps": accum, "sampler_batch_size": sampler.batch_size,
                          "seed": seed, "lengths": list(sampler.lengths), "perm": perm, "order": order})
    out = {"data": "render_v1_data.json",
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
           "cases": cases}
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(json.dumps(out, separators=(",", ":")) + "\n")
    for c in cases:
        print(f"max_len {c['model_max_length']} batch {c['sampler_batch_size']}: lengths "
              f"{min(c['lengths'])}..{max(c['lengths'])}, first {c['order'][:4]}")


if __name__ == "__main__":
    main()
