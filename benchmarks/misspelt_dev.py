"""Where junk's ``misspelt`` cut comes from: the ``misspelt`` share on development sets that share
no record with the benchmark samples.

Development sets: the 600 Alpaca 52k and 500 Dolly 15k records of
benchmarks/part_relevance_dev.py (outside the seeded samples of benchmarks/noise.py and
benchmarks/scorer_quality.py). Every record is scored clean, once more with a ``typos``
corruption (seed 5; ``empty`` stands in where typos does not apply and is not counted), and once
with one of all 14 kinds (seed 6), to see what else the signal catches. ``dangling`` (a 0/1 flag,
no cut to choose) is measured beside it: the clean records it flags and the ``truncate``
corruptions (seed 5) it catches. Printed per pool: the
clean records' quantiles, and at each candidate cut the share of clean records flagged and of
typos caught.

The rule, declared before the benchmark was run: the cut is the smallest multiple of 0.01 that
flags (``misspelt`` at or above it) at most 1% of the clean records of *both* pools (junk's
other signals drop about 4% of clean records; the issue allows 5%). Then benchmarks/noise.py
judges it on the benchmark samples.

Usage: python benchmarks/misspelt_dev.py [--results PATH]
       (default: benchmarks/results/misspelt_dev.json)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from alpaca_sample import SHARED
from part_relevance_dev import POOLS, dev_set, prompt_of, rule_cut

from tamis.data.noise import KINDS, corrupt
from tamis.scorers.endings import dangling
from tamis.scorers.spelling import misspelt

CUTS = [round(0.01 * i, 2) for i in range(1, 16)]
MAX_CLEAN_SHARE = 0.01


def values(prompts: list[str], responses: list[str]) -> np.ndarray:
    """``misspelt`` of each pair, None (another language) as 0: the flag cannot fire on it."""
    return np.array([misspelt(r, p) or 0.0 for p, r in zip(prompts, responses, strict=True)])


def study(rows: list[dict]) -> dict:
    prompts = [prompt_of(r) for r in rows]
    clean = values(prompts, [r["output"] for r in rows])
    objs, labels = corrupt(rows, 1.0, 5, ["typos", "empty"])
    typo = np.array([lab["kind"] == "typos" for lab in labels])
    typos = values(prompts, [o["output"] for o in objs])[typo]
    objs, labels = corrupt(rows, 1.0, 6, KINDS)
    kinds = np.array([lab["kind"] for lab in labels])
    others = values(prompts, [o["output"] for o in objs])
    objs, labels = corrupt(rows, 1.0, 5, ["truncate", "empty"])
    cut = [dangling(o["output"], p) for o, p, lab in zip(objs, prompts, labels, strict=True)]
    cut = np.array([v for v, lab in zip(cut, labels, strict=True) if lab["kind"] == "truncate"])
    out = {
        "records": len(rows),
        "dangling": {  # a 0/1 flag: no cut to choose, measured here beside misspelt
            "clean": round(
                float(
                    np.mean([dangling(r["output"], p) for r, p in zip(rows, prompts, strict=True)])
                ),
                4,
            ),
            "truncate": round(float(cut.mean()), 3),
            "truncated_records": len(cut),
        },
        "typos": int(typo.sum()),
        "clean_quantiles": {q: round(float(np.quantile(clean, q)), 4) for q in (0.5, 0.9, 0.99)},
        "at_cut": {},
    }
    for cut in CUTS:
        out["at_cut"][str(cut)] = {
            "clean": round(float((clean >= cut).mean()), 4),
            "typos": round(float((typos >= cut).mean()), 3),
            "all_kinds": {
                str(k): round(float((others[kinds == k] >= cut).mean()), 3)
                for k in sorted(set(kinds))
            },
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parent / "results" / "misspelt_dev.json"
    p.add_argument("--results", type=Path, default=default)
    args = p.parse_args()
    dolly = SHARED.parent / "dolly15k" / "dolly_15k.jsonl"
    report = {}
    for name, (path, n) in POOLS.items():
        report[name] = r = study(dev_set(path or dolly, n))
        print(f"{name}: {r['records']} clean, {r['typos']} typos, quantiles {r['clean_quantiles']}")
    share = f"{MAX_CLEAN_SHARE:.0%}"
    report["rule"] = f"smallest cut flagging <= {share} of clean records in both pools"
    cut = rule_cut(
        lambda n, c: report[n]["at_cut"][str(c)]["clean"] <= MAX_CLEAN_SHARE, CUTS, smallest=True
    )
    if cut is None:
        raise SystemExit(f"no cut in {CUTS} flags <= {share} of the clean records of both pools")
    report["cut"] = cut
    for name in POOLS:
        at = report[name]["at_cut"][str(report["cut"])]
        print(f"{name} at cut {report['cut']}: clean {at['clean']}, typos {at['typos']}")
        print(f"  all kinds: {at['all_kinds']}")
        print(f"  dangling: {report[name]['dangling']}")
    print(f"cut: {report['cut']} ({report['rule']})")
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
