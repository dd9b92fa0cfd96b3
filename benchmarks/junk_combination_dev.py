"""How junk orders the records below its cuts: percentile combinations compared on development
sets that share no record with the benchmark samples.

Below every cut, ``junk`` is ``-1 / (1 + F)``, with ``F`` Fisher's combination of a record's
percentiles among the tail signals (``tamis.scorers.junk._fisher``). This orders the records no
signal fired on, so it moves AUROC, not what the filter drops. Compared here: Fisher over the
largest 1 (Tippett's rule: the record's most extreme signal), 2 or 3 percentiles, Fisher over all
of them (junk until 2026-12-07), and Stouffer's sum of normal scores over all.

Development sets: the 600 Alpaca 52k and 500 Dolly 15k records of
benchmarks/part_relevance_dev.py, 30% corrupted with all 14 kinds (seed 11), scored by
benchmarks/noise.py as the benchmark scores (SmolLM2-135M, template auto) into
``out/dev/noise_POOL`` (about 10 and 15 min on two cores; skipped when there). The rule,
declared before the benchmark was run: the combination with the highest mean junk AUROC over the
two pools. It chose the 2 largest (``TOP_PERCENTILES``); then benchmarks/noise.py judges it on
the benchmark samples.

Usage: python benchmarks/junk_combination_dev.py [--results PATH]
       (default: benchmarks/results/junk_combination_dev.json)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from alpaca_sample import SHARED
from noise import auroc
from noise import run as noise_run
from part_relevance_dev import POOLS, dev_set

import tamis.scorers.junk as junk
from tamis.data.outputs import read_scores

ROOT = Path(__file__).resolve().parent.parent
SEED = 11
RULES = {"top 1 (Tippett)": 1, "top 2": 2, "top 3": 3, "all (Fisher)": 99, "Stouffer": None}


def score_dev(name: str, path: Path | None, n: int) -> Path:
    """The dev pool ``name`` corrupted and scored by benchmarks/noise.py (once)."""
    out = ROOT / "out" / "dev" / f"noise_{name}"
    if not (out / f"seed{SEED}" / "scores.parquet").is_file():
        data = ROOT / "out" / "dev" / f"{name}.jsonl"
        data.parent.mkdir(parents=True, exist_ok=True)
        rows = dev_set(path or SHARED.parent / "dolly15k" / "dolly_15k.jsonl", n)
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        argv = [str(data), "--rate", "0.3", "--seeds", str(SEED), "--template", "auto"]
        noise_run([*argv, "--out", str(out), "--results", str(out.with_suffix(".json"))])
    return out / f"seed{SEED}"


def stouffer(rows, found, signals) -> dict[int, float]:
    """Stouffer's combination of all the row's percentiles, shifted to stay positive."""
    from scipy.stats import norm

    ps = junk._percentiles(rows, found, signals)
    z = {k: float(norm.ppf(v).sum()) / math.sqrt(len(v)) for k, v in ps.items() if v}
    return {k: 100 + z[k] if k in z else 0.0 for k in ps}


def evaluate(folder: Path, rule: int | None) -> dict:
    fisher, top = junk._fisher, junk.TOP_PERCENTILES
    try:
        if rule is None:
            junk._fisher = stouffer
        else:
            junk.TOP_PERCENTILES = rule
        rows, _ = read_scores(folder / "scores.parquet")
        verdicts = junk.junk_scores(rows)
    finally:
        junk._fisher, junk.TOP_PERCENTILES = fisher, top
    with (folder / "labels.jsonl").open() as f:
        kinds = np.array([json.loads(line)["kind"] or "" for line in f])
    s = np.array([np.nan if v.junk is None else v.junk for v in verdicts])
    ok = ~np.isnan(s)
    per_kind = {}
    for k in sorted(set(kinds) - {""}):
        pair = ok & ((kinds == k) | (kinds == ""))
        per_kind[k] = round(auroc(s[pair], kinds[pair] == k), 4)
    return {"auroc": round(auroc(s[ok], kinds[ok] != ""), 4), "auroc_by_kind": per_kind}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parent / "results" / "junk_combination_dev.json"
    p.add_argument("--results", type=Path, default=default)
    args = p.parse_args()
    folders = {name: score_dev(name, path, n) for name, (path, n) in POOLS.items()}
    report: dict = {"rule": "highest mean junk AUROC over the two development pools"}
    for label, rule in RULES.items():
        got = {name: evaluate(folder, rule) for name, folder in folders.items()}
        mean = round(float(np.mean([g["auroc"] for g in got.values()])), 4)
        report[label] = {"mean_auroc": mean, **got}
        print(f"{label}: mean {mean}  " + "  ".join(f"{n} {g['auroc']}" for n, g in got.items()))
    best = max(RULES, key=lambda label: report[label]["mean_auroc"])
    report["chosen"] = best
    print(f"chosen: {best}")
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
