#!/usr/bin/env bash
# make bench: vlm.c next to the reference implementations, same machine, same
# run, single thread; prints each throughput and the ratio. Needs ../shared
# (the real tokenizer files) and PyPI for the reference packages (tools/.venv-bench,
# tools/.venv-ola). `scripts/bench.sh teachers` runs only the last section.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
llama2=../shared/assets/tokenizers/llama2/tokenizer.model
llama3=../shared/assets/tokenizers/llama3/tokenizer.model
mkdir -p build/bench
# `scripts/bench.sh teachers` runs only the last section (OLA-VLM's teachers)
section=${1:-all}
case $section in
  all|teachers) ;;
  *) echo "usage: scripts/bench.sh [teachers]" >&2; exit 2 ;;
esac
if [ "$section" = all ]; then  # every section but the teachers', up to their header below
corpus=build/bench/corpus.txt
if [ ! -s "$corpus" ]; then
  # ~8 MB of real text: licences and manuals that every Debian machine has, plus the
  # multilingual test corpus, one document per line
  python3 - "$corpus" <<'PY'
import glob, json, sys
docs = []
for path in sorted(glob.glob("/usr/share/common-licenses/*"))[:40]:
    try: docs += [p.replace("\n", " ") for p in open(path, encoding="utf-8").read().split("\n\n") if p.strip()]
    except (UnicodeDecodeError, IsADirectoryError): pass
docs += json.load(open("tests/fixtures/text/corpus.json"))
docs = [d.replace("\n", " ") for d in docs if d]
out, size = [], 0
while size < 8_000_000:
    for d in docs:
        out.append(d); size += len(d.encode()) + 1
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(out))
PY
fi
python3 -m venv tools/.venv-bench 2>/dev/null || true
printf '*\n' > tools/.venv-bench/.gitignore
tools/.venv-bench/bin/pip install -q transformers==4.37.2 tokenizers==0.15.2 sentencepiece==0.1.99 protobuf tiktoken==0.7.0 \
  pillow==13.0.0 "numpy<2" torch==2.15.0 peft==0.8.2 accelerate==0.26.1
echo "== tokenizer throughput, one thread, $(du -h $corpus | cut -f1) corpus"
ours2=$(build/bench_tokenizer $llama2 $corpus 3)
ours3=$(build/bench_tokenizer $llama3 $corpus 3)
refs=$(tools/.venv-bench/bin/python bench/bench_tokenizer_ref.py $llama2 $llama3 $corpus 3)
python3 - "$ours2" "$ours3" "$refs" <<'PY'
import json, sys
o2, o3 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r2, r3 = [json.loads(l) for l in sys.argv[3].splitlines()]
for name, ours, ref in (("llama2", o2, r2), ("llama3", o3, r3)):
    same = "same tokens" if ours["tokens"] == ref["tokens"] else f"TOKEN COUNT DIFFERS ({ours['tokens']} vs {ref['tokens']})"
    print(f"{name}: vlm.c {ours['mb_per_s']:.2f} MB/s, {ref['tokenizer']} {ref['mb_per_s']:.2f} MB/s, "
          f"ratio {ours['mb_per_s'] / ref['mb_per_s']:.2f}x ({same})")
PY

# ---- dataset indexing: a generated llava_v1_5_mix665k-sized file (665K records, ~1 GB)
big=build/bench/mix665k.json
if [ ! -s "$big" ]; then
  echo "== generating $big (once)"
  python3 - "$big" <<'PY'
import json, random, sys
r = random.Random(0)
words = "the a cat dog sits on red blue image shows person holding umbrella street car sign reads open what is in this picture describe detail color".split()
def text(n): return " ".join(r.choice(words) for _ in range(n))
with open(sys.argv[1], "w") as f:
    f.write("[\n")
    for i in range(665_000):
        turns = []
        for k in range(r.choice([1, 2, 3, 6])):
            turns.append({"from": "human", "value": ("<image>\n" if k == 0 else "") + text(r.randint(5, 25)) + "?"})
            turns.append({"from": "gpt", "value": text(r.randint(20, 200)) + "."})
        rec = {"id": f"{i:012d}", "conversations": turns}
        if i % 16: rec["image"] = f"coco/train2017/{i:012d}.jpg"
        f.write(("" if i == 0 else ",\n") + json.dumps(rec))
    f.write("\n]\n")
PY
fi
echo "== dataset indexing, $(du -h $big | cut -f1), same run"
ours=$(build/bench_dataset_index $big)
ref=$(python3 - "$big" <<'PY'
import json, resource, sys, time
t0 = time.perf_counter()
data = json.load(open(sys.argv[1]))  # what LLaVA's LazySupervisedDataset does
dt = time.perf_counter() - t0
print(json.dumps({"records": len(data), "seconds": round(dt, 3),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
PY
)
python3 - "$ours" "$ref" <<'PY'
import json, sys
o, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"vlm.c index: {o['records']} records in {o['seconds']:.2f} s, peak {o['peak_rss_mb']:.0f} MB resident")
print(f"python json.load (upstream): {r['records']} records in {r['seconds']:.2f} s, peak {r['peak_rss_mb']:.0f} MB resident")
print(f"ratio: {r['seconds'] / o['seconds']:.1f}x faster, {r['peak_rss_mb'] / o['peak_rss_mb']:.1f}x less memory")
PY

# ---- images: decode + pad + CLIP preprocessing at 336, one thread: the real photos, then
# extreme panoramas (90x15360 and 15360x90 padded to 15360x15360 squares, and a 2 KB GIF
# declaring 90x15360), which cost upstream the square and vlm.c only the image
image_bench() {  # LABEL ROUNDS FILE...
  local label=$1 rounds=$2; shift 2
  echo "== image decode + preprocess (336, pad), one thread, $label: $# files x $rounds rounds"
  local ours ref
  ours=$(build/bench_image "$rounds" 336 "$@")
  ref=$(tools/.venv-bench/bin/python bench/bench_image_ref.py "$rounds" 336 "$@" 2>/dev/null)
  python3 - "$ours" "$ref" <<'PY'
import json, sys
o, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
same = "same output" if abs(o["checksum"] - r["checksum"]) <= 1e-3 * max(1.0, abs(r["checksum"])) else f"OUTPUT DIFFERS ({o['checksum']} vs {r['checksum']})"
print(f"vlm.c {o['images_per_s']:.1f} images/s, peak {o['peak_rss_mb']:.0f} MB; Pillow + CLIPImageProcessor "
      f"{r['images_per_s']:.1f} images/s, peak {r['peak_rss_mb']:.0f} MB (with Python and torch)")
print(f"ratio: {o['images_per_s'] / r['images_per_s']:.2f}x throughput, {r['peak_rss_mb'] / o['peak_rss_mb']:.1f}x less memory ({same})")
PY
}
image_bench "$(ls ../shared/assets/images | wc -l) photos" 20 ../shared/assets/images/*
image_bench "panoramas" 3 tests/fixtures/image/panorama_90x15360.png tests/fixtures/image/panorama_15360x90.png \
  tests/fixtures/image/screen_90x15360.gif

# ---- LLaVA training step on CPU: the "small" config, all cores, vlm.c vs PyTorch + transformers
echo "== LLaVA training step (ViT 6x384 @224/16, LLaMA 8x512 GQA 8/4, vocab 32000, batch 4 x 256 tokens), $(nproc) threads"
ours=$(build/bench_model 3)
ref=$(tools/.venv-bench/bin/python bench/bench_model_ref.py 3 2>/dev/null | tail -1)
python3 - "$ours" "$ref" <<'PY'
import json, sys
o, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"vlm.c {o['tokens_per_s']:.0f} tokens/s ({o['step_s']:.2f} s/step), peak {o['peak_rss_mb']:.0f} MB; "
      f"{o['gflops']:.0f} GFLOP/s of a measured sgemm peak of {o['sgemm_peak_gflops']:.0f}")
print(f"PyTorch + transformers {r['tokens_per_s']:.0f} tokens/s ({r['step_s']:.2f} s/step), peak {r['peak_rss_mb']:.0f} MB")
print(f"ratio: {o['tokens_per_s'] / r['tokens_per_s']:.2f}x throughput, {r['peak_rss_mb'] / o['peak_rss_mb']:.2f}x less memory")
PY

# ---- mPLUG-Owl2 training step: the small config in vlm.c vs upstream's own code under its pins
# (tools/venv_owl2.sh; the upstream checkout of tools/make_owl2_fixtures.sh, cloned when missing)
echo "== mPLUG-Owl2 training step (ViT 6x384 @224/16, abstractor 2x384 64 queries, LLaMA 8x512 multiway, vocab 32000, batch 4 x 256 tokens), $(nproc) threads"
. tools/owl2_upstream.sh
ours=$(build/bench_model 3 256 4 0 owl2)
ref=$(PYTHONPATH="$owl_path" "$venv/bin/python" bench/bench_owl2_ref.py 3 2>/dev/null | tail -1)
python3 - "$ours" "$ref" <<'PY'
import json, sys
o, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"vlm.c {o['tokens_per_s']:.0f} tokens/s ({o['step_s']:.2f} s/step), peak {o['peak_rss_mb']:.0f} MB; "
      f"upstream mPLUG-Owl2 (torch 2.0.1, transformers 4.31.0) {r['tokens_per_s']:.0f} tokens/s ({r['step_s']:.2f} s/step), "
      f"peak {r['peak_rss_mb']:.0f} MB")
print(f"ratio: {o['tokens_per_s'] / r['tokens_per_s']:.2f}x throughput, {r['peak_rss_mb'] / o['peak_rss_mb']:.2f}x less memory")
PY

# ---- long sequences: the small config at 2048 tokens, batch 1, with and without recomputation,
# against PyTorch with SDPA attention with and without gradient_checkpointing_enable()
echo "== LLaVA training step at 2048 tokens, batch 1, $(nproc) threads: peak memory with and without checkpointing"
ours0=$(build/bench_model 2 2048 1 0)
ours1=$(build/bench_model 2 2048 1 1)
ref0=$(tools/.venv-bench/bin/python bench/bench_model_ref.py 2 2048 1 0 2>/dev/null | tail -1)
ref1=$(tools/.venv-bench/bin/python bench/bench_model_ref.py 2 2048 1 1 2>/dev/null | tail -1)
python3 - "$ours0" "$ours1" "$ref0" "$ref1" <<'PY'
import json, sys
o0, o1, r0, r1 = (json.loads(a) for a in sys.argv[1:5])
for name, o, r in (("without checkpointing", o0, r0), ("with checkpointing", o1, r1)):
    print(f"{name}: vlm.c {o['tokens_per_s']:.0f} tokens/s, peak {o['peak_rss_mb']:.0f} MB; PyTorch + transformers (SDPA) "
          f"{r['tokens_per_s']:.0f} tokens/s, peak {r['peak_rss_mb']:.0f} MB: {o['peak_rss_mb'] / r['peak_rss_mb']:.2f} of its peak, "
          f"{o['tokens_per_s'] / r['tokens_per_s']:.2f}x throughput")
print(f"checkpointing costs vlm.c {o0['tokens_per_s'] / o1['tokens_per_s'] - 1:.0%} per token "
      f"(PyTorch {r0['tokens_per_s'] / r1['tokens_per_s'] - 1:.0%}) and saves {o0['peak_rss_mb'] - o1['peak_rss_mb']:.0f} MB")
PY

# ---- data parallel: 2 ranks x 1 thread against 1 process x 2 threads (the same global batch of 4),
# and what each rank holds at each ZeRO stage (mpirun as root needs OpenMPI's two variables)
echo "== data parallel, small LLaVA config, global batch 4 x 256 tokens: 1 process x $(nproc) threads vs mpirun -np 2"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
one=$(build/bench_dist 3 4 0)
runs=()
for z in 0 1 2 3; do runs+=("$(mpirun -np 2 --bind-to none build/bench_dist 3 2 $z)"); done
python3 - "$one" "${runs[@]}" <<'PY'
import json, sys
one, *zs = (json.loads(a) for a in sys.argv[1:])
print(f"1 process x {one['threads']} threads: {one['tokens_per_s']:.0f} tokens/s ({one['step_s']:.2f} s/step), "
      f"peak {one['ranks'][0]['peak_rss_mb']:.0f} MB")
base = None
for z in zs:
    r = max(z["ranks"], key=lambda x: x["peak_rss_mb"])
    held = r["params_mb"] + r["grads_mb"] + r["moments_mb"]
    base = base or held
    print(f"2 ranks x {z['threads']} thread, ZeRO-{z['zero']}: {z['tokens_per_s']:.0f} tokens/s "
          f"({z['tokens_per_s'] / one['tokens_per_s']:.2f}x; gradient reduction {z['reduce_s']:.2f} s of {z['step_s']:.2f} s/step), "
          f"per rank peak {r['peak_rss_mb']:.0f} MB, parameters + gradients + moments held between steps {held:.0f} MB "
          f"({held / base:.2f} of ZeRO-0's)")
PY

# ---- LoRA (LLaVA's finetune_lora.sh: r 128, alpha 256, dropout 0.05, projector at 2e-5) against
# full fine-tuning of every module and against PyTorch + PEFT 0.8.2, the small LLaVA config
echo "== LoRA r 128 training step, small LLaVA config, batch 4 x 256 tokens, $(nproc) threads"
lora=$(build/bench_dist 3 4 0 128)
lora16=$(build/bench_dist 3 4 0 128 bf16)
full=$(build/bench_dist 3 4 0)
peft=$(tools/.venv-bench/bin/python bench/bench_lora_ref.py 3 128 2>/dev/null | tail -1)
python3 - "$lora" "$full" "$peft" "$lora16" <<'PY'
import json, sys
l, f, p, h = (json.loads(a) for a in sys.argv[1:5])
lr, fr = l["ranks"][0], f["ranks"][0]
print(f"vlm.c LoRA: {l['tokens_per_s']:.0f} tokens/s, peak {lr['peak_rss_mb']:.0f} MB ({l['trained_params']} trained); "
      f"full fine-tuning {f['tokens_per_s']:.0f} tokens/s, peak {fr['peak_rss_mb']:.0f} MB")
print(f"vlm.c LoRA over a bf16 base (--bits 16 --bf16 True): {h['tokens_per_s']:.0f} tokens/s, "
      f"peak {h['ranks'][0]['peak_rss_mb']:.0f} MB")
print(f"PyTorch + PEFT LoRA: {p['tokens_per_s']:.0f} tokens/s, peak {p['peak_rss_mb']:.0f} MB ({p['trainable_params']} trained)")
print(f"ratio against PEFT: {l['tokens_per_s'] / p['tokens_per_s']:.2f}x throughput, "
      f"{p['peak_rss_mb'] / lr['peak_rss_mb']:.2f}x less memory")
PY
fi  # end of the sections a plain `scripts/bench.sh` runs before the teachers

# ---- OLA-VLM's teachers: `vlm ola targets`, one teacher per run, against upstream's own per-image
# target computation (bench/bench_teachers_ref.py: PyTorch fp32 on CPU, tools/.venv-ola, the
# upstream checkout of tools/make_teacher_vit_fixtures.sh, cloned when missing), both with all
# cores, on real-size random-weight teachers written once by bench/make_bench_teachers.py
echo "== OLA-VLM teachers' targets (real-size random weights), $(nproc) threads: vlm ola targets vs upstream's PyTorch code"
. tools/venv_ola.sh
ola=tools/.cache/OLA-VLM
if [ ! -d "$ola/ola_vlm" ]; then
  mkdir -p tools/.cache
  git clone -q "${OLA_VLM_REPO:-https://github.com/SHI-Labs/OLA-VLM}" "$ola"
fi
git -C "$ola" -c advice.detachedHead=false checkout -q 6032a6c
export OLA_VLM_DIR="$root/$ola"
teachers=build/bench/teachers out=build/bench/teacher_targets
"$venv/bin/python" bench/make_bench_teachers.py $teachers 2> >(grep -v xFormers >&2)
rm -rf $out && mkdir -p $out
photos=../shared/assets/images
teacher_bench() {  # TASK FLAG TEACHER PHOTO...: one teacher's run in vlm.c, then the reference's
  local task=$1 flag=$2 teacher=$3; shift 3
  local p recs=()
  for p in "$@"; do recs+=("{\"id\": \"$p\", \"image\": \"$p\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\"}, {\"from\": \"gpt\", \"value\": \".\"}]}"); done
  (IFS=,; printf '[%s]\n' "${recs[*]}") > $out/$task.json
  /usr/bin/time -v -o $out/$task.time build/vlm --threads "$(nproc)" ola targets --data_path $out/$task.json \
    --image_folder $photos --teacher_embeddings $out/$task --mode $task "$flag" "$teacher" 2> $out/$task.log ||
    { cat $out/$task.log >&2; exit 1; }
  local paths=()
  for p in "$@"; do paths+=("$photos/$p"); done
  "$venv/bin/python" bench/bench_teachers_ref.py $task "$teacher" $out/${task}_ref.safetensors "${paths[@]}" \
    > $out/${task}_ref.out 2> $out/${task}_ref.log || { tail -20 $out/${task}_ref.log >&2; exit 1; }
  "$venv/bin/python" - $task $out "$@" <<'PY'
import json, re, sys
import numpy as np
from safetensors.numpy import load_file
task, out, photos = sys.argv[1], sys.argv[2], sys.argv[3:]
log = open(f"{out}/{task}.log").read()
m = re.search(r"(\d+) written, \d+ already there, \d+ bad \(skipped\) in ([\d.]+) s", log)
fwd = re.search(rf"{task} teacher: ([\d.]+) images/s", log)
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{out}/{task}.time").read())
if not (m and fwd and rss) or int(m.group(1)) != len(photos):
    sys.exit(f"{task}: vlm ola targets did not write every target:\n{log}")
ours = int(m.group(1)) / float(m.group(2))
ref = json.loads(open(f"{out}/{task}_ref.out").read().splitlines()[-1])
r = load_file(f"{out}/{task}_ref.safetensors")
worst = 0.0
for i, p in enumerate(photos):
    a, b = load_file(f"{out}/{task}/{p}.safetensors")[task], r[str(i)]
    worst = max(worst, float(np.abs(a.reshape(b.shape) - b).max() / np.abs(b).max()))
same = "targets agree" if worst <= 1e-4 else "TARGETS DIFFER"
mb = int(rss.group(1)) / 1024
print(f"{task} ({len(photos)} photos, target {' x '.join(map(str, ref['shape']))}): vlm.c {ours:.3f} images/s "
      f"(the teacher's forwards alone {float(fwd.group(1)):.2f}), peak {mb:.0f} MB; upstream PyTorch fp32 "
      f"{ref['images_per_s']:.3f} images/s, peak {ref['peak_rss_mb']:.0f} MB")
print(f"  ratio: {ours / ref['images_per_s']:.2f}x throughput, {ref['peak_rss_mb'] / mb:.1f}x less memory "
      f"({same}: max |vlm.c - upstream| / max |upstream| {worst:.1e} over the photos)")
PY
}
five="211.jpg extreme_ironing.jpg rebecca_poster_small.jpeg sausage.jpg waterview.jpg"
teacher_bench depth --depth_estimator $teachers/depth/depth_anything_v2_vitl.pth $five
teacher_bench gen --image_generator $teachers/gen $five
teacher_bench seg --image_segmentor $teachers/seg extreme_ironing.jpg 211.jpg
