"""Small tokenizer.json files trained by HF `tokenizers`, in the three layouts
users' model directories have, with HF's own ids for the shared test corpus:

  sp_bpe/       LLaMA-2 style as transformers 4.37 converts it: BPE + byte
                fallback, normalizer Prepend("▁") + Replace(" ", "▁"), BOS by
                TemplateProcessing
  metaspace/    the same model, newer layout: Metaspace pre-tokenizer
                (prepend_scheme "first"), no normalizer
  byte_level/   Llama-3 style: Split(regex, isolated) + ByteLevel, BPE with
                ignore_merges, <|begin_of_text|> by TemplateProcessing

Run tools/make_hf_tokenizer_fixtures.sh (pins tokenizers 0.22.1). Writes tests/fixtures/text/hf/<layout>/{tokenizer.json,expected.json}.
"""
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "text", "hf")
CORPUS = json.load(open(os.path.join(ROOT, "tests", "fixtures", "text", "corpus.json")))
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
# training text: the corpus minus its longest strings, so tests also meet unseen text
TRAIN = [s for s in CORPUS if len(s) < 1000] * 3
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def sp_style(metaspace):
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    if metaspace:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    else:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>", "<s>", "</s>"] + BYTE_TOKENS,
                                  show_progress=False, limit_alphabet=120)
    tok.train_from_iterator(TRAIN, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tok


def byte_level():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=["<|begin_of_text|>", "<|eot_id|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TRAIN, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    return tok


def main():
    for name, tok in (("sp_bpe", sp_style(False)), ("metaspace", sp_style(True)), ("byte_level", byte_level())):
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))  # what users load
        encode = [tok.encode(s).ids for s in CORPUS]
        decode = [tok.decode(ids[1:], skip_special_tokens=False) for ids in encode]
        json.dump({"encode": encode, "decode": decode}, open(os.path.join(d, "expected.json"), "w"),
                  separators=(",", ":"), ensure_ascii=False)
        print(name, tok.get_vocab_size(), "tokens", sum(map(len, encode)))


if __name__ == "__main__":
    main()
