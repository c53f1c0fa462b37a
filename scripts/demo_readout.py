#!/usr/bin/env python3
# The demo's rating read out per distortion and level (docs/demo.md, "Where the SRCC is lost"):
#   build/vlm eval score --model demo-out/after --image-folder demo-out/data/images --template v1 --pad \
#     --out after.jsonl demo-out/data/eval_score.json
#   scripts/demo_readout.py after.jsonl demo-out/data/eval_score.json
# prints the SRCC and, per distortion and level, the mean logit(good) - logit(poor). Standard library only.
import json, sys
def rank(v):
    o = sorted(range(len(v)), key=lambda i: v[i]); r = [0.0]*len(v); i = 0
    while i < len(o):
        j = i
        while j+1 < len(o) and v[o[j+1]] == v[o[i]]: j += 1
        for k in range(i, j+1): r[o[k]] = (i+j)/2
        i = j+1
    return r
def pearson(a, b):
    n = len(a); ma = sum(a)/n; mb = sum(b)/n
    sa = sum((x-ma)**2 for x in a)**.5; sb = sum((x-mb)**2 for x in b)**.5
    return sum((x-ma)*(y-mb) for x, y in zip(a, b))/(sa*sb) if sa and sb else float('nan')
def srcc(a, b): return pearson(rank(a), rank(b))
rows = [json.loads(l) for l in open(sys.argv[1])]
meta = {m['img_path']: m for m in json.load(open(sys.argv[2]))}
sc = [r['logit_good'] - r['logit_poor'] for r in rows]; gt = [r['gt_score'] for r in rows]
print('all srcc %.3f' % srcc(sc, gt))
by = {}
for r, s in zip(rows, sc):
    m = meta[r['image']]; by.setdefault(m['distortion'], {}).setdefault(m['level'], []).append(s)
for d in sorted(by):
    print('%-9s' % d, ' '.join('L%d %+6.2f(n%d)' % (l, sum(v)/len(v), len(v)) for l, v in sorted(by[d].items())))
