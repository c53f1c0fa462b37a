"""Reference tokenizer throughput on the same corpus, single thread:
LLaMA-2 with HF `tokenizers` (the fast tokenizer converted from tokenizer.model
by transformers), Llama-3 with `tiktoken` (Meta's reference for that file).
Prints one JSON line per tokenizer, with the token count as a parity check."""
import base64
import json
import os
import sys
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

llama2, llama3, corpus, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = open(corpus, "rb").read()
lines = text.decode("utf-8").split("\n")


def timed(name, encode):
    best, tokens = 1e30, 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        tokens = sum(len(encode(line)) for line in lines)
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"tokenizer": name, "mb_per_s": round(len(text) / 1e6 / best, 3), "tokens": tokens,
                      "seconds": round(best, 4)}))


from transformers import LlamaTokenizerFast  # noqa: E402

fast = LlamaTokenizerFast(vocab_file=llama2, legacy=True)  # converted to a tokenizers.Tokenizer
timed("hf-tokenizers llama2", lambda s: fast._tokenizer.encode(s).ids)

import tiktoken  # noqa: E402

ranks = {base64.b64decode(t): int(r) for t, r in (l.split() for l in open(llama3) if l.strip())}
pattern = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
special = ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(4)] + \
          ["<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"] + \
          [f"<|reserved_special_token_{i}|>" for i in range(5, 251)]
enc = tiktoken.Encoding("llama3", pat_str=pattern, mergeable_ranks=ranks,
                        special_tokens={t: len(ranks) + i for i, t in enumerate(special)})
timed("tiktoken llama3", lambda s: [128000] + enc.encode(s, allowed_special="all"))
