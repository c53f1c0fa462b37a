"""Writes tests/fixtures/eval/metrics.json: correlation cases with the values
scipy.stats.spearmanr / pearsonr give (Q-Bench's SRCC / PLCC). Run through
tools/make_eval_fixtures.sh (pinned scipy in tools/.venv-model)."""
import json
import os
import warnings

import numpy as np
import scipy
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "eval", "metrics.json")


def case(name, x, y):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = stats.spearmanr(x, y)[0]
        p = stats.pearsonr(x, y)[0]
    nan = lambda v: None if np.isnan(v) else float(v)  # JSON has no NaN: null means scipy gave nan
    return {"name": name, "x": x, "y": y, "spearman": nan(s), "pearson": nan(p),
            "ranks_x": [float(r) for r in stats.rankdata(x, method="average")]}


def main():
    rng = np.random.default_rng(20261122)
    cases = [
        case("small", [1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),
        case("ties", [1, 2, 2, 3, 3, 3, 4], [0.1, 0.5, 0.5, 0.2, 0.9, 0.9, 0.3]),
        case("ties_both", [3, 1, 1, 2, 2, 5, 5, 5], [1, 1, 2, 2, 3, 3, 4, 4]),
        case("negative", [0.9, 0.7, 0.5, 0.2], [1, 2, 3, 4.5]),
        case("n2", [1.5, 2.5], [3.0, -1.0]),
        case("n2_up", [0.25, 0.75], [10.0, 20.0]),
        case("constant_y", [1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5]),
        case("constant_x", [7, 7, 7], [1, 2, 3]),
        case("mos_like", rng.uniform(1, 5, 50).round(2), rng.uniform(0, 1, 50)),
        case("large", rng.normal(size=1000), rng.normal(size=1000) * 0.3 + np.linspace(0, 1, 1000)),
        case("large_ties", rng.integers(0, 10, 1000), rng.integers(0, 5, 1000) + rng.normal(size=1000) * 0.1),
        case("offset", 1e6 + rng.normal(size=100), rng.normal(size=100)),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"scipy": scipy.__version__, "numpy": np.__version__, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases (scipy {scipy.__version__})")


if __name__ == "__main__":
    main()
