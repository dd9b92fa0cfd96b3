"""Where junk's ``off_topic`` cut comes from: ``part_relevance`` on development sets that share no
record with the benchmark samples.

Development sets: 600 Alpaca 52k and 500 Dolly 15k records drawn (seed 777) from the records
outside the seeded samples of 1,000 and 2,000 that benchmarks/noise.py and
benchmarks/scorer_quality.py draw (seed 52002). Every record is scored clean, and once more with
one corruption of the kinds ``off_topic`` is meant for (merge, runon, boilerplate, swap; seed 5).
Printed per pool: the clean records' quantiles, AUROC per kind, and at each candidate cut the
share of clean records flagged and of each kind caught.

The rule, declared before the benchmark was run: the cut is the largest multiple of 0.01 that
flags (``part_relevance`` below it) at most 2% of the clean records of *both* pools (junk's
other signals drop about 3%; the issue allows 5%). Then benchmarks/noise.py judges it on the
benchmark samples.

Usage: python benchmarks/part_relevance_dev.py [--results PATH]
       (default: benchmarks/results/part_relevance_dev.json)
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from alpaca_sample import SEED, SHARED
from noise import auroc

from tamis.data.noise import corrupt
from tamis.scorers.topic import part_relevance

POOLS = {"alpaca": (SHARED / "alpaca_52k.jsonl", 600), "dolly": (None, 500)}
KINDS = ["merge", "runon", "boilerplate", "swap"]
CUTS = [round(0.01 * i, 2) for i in range(0, 21)]
MAX_CLEAN_SHARE = 0.02


def dev_set(path: Path, n: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    used = set()
    for k in (1000, 2000):
        used.update(random.Random(SEED).sample(range(len(rows)), k))
    rest = [rows[i] for i in range(len(rows)) if i not in used]
    return random.Random(777).sample(rest, n)


def prompt_of(row: dict) -> str:
    extra = row.get("input") or ""
    return row["instruction"] + (f"\n\n{extra}" if extra else "")


def study(rows: list[dict]) -> dict:
    objs, labels = corrupt(rows, 1.0, 5, KINDS)
    prompts = [prompt_of(r) for r in rows] * 2
    values = np.array(
        [
            1.0 if v is None else v
            for v in part_relevance(prompts, [r["output"] for r in rows + objs])
        ]
    )
    kinds = np.array([None] * len(rows) + [lab["kind"] for lab in labels], dtype=object)
    clean = kinds == None  # noqa: E711 (element-wise)
    out = {
        "records": int(clean.sum()),
        "per_kind": {k: int((kinds == k).sum()) for k in KINDS},
        "clean_quantiles": {
            q: round(float(np.quantile(values[clean], q)), 4) for q in (0.01, 0.02, 0.05, 0.5)
        },
        "auroc": {
            k: auroc(-values[(kinds == k) | clean], (kinds == k)[(kinds == k) | clean])
            for k in KINDS
        },
        "at_cut": {},
    }
    for cut in CUTS:
        flagged = values < cut  # junk fires past the cut: margin > 0
        out["at_cut"][str(cut)] = {
            "clean": round(float(flagged[clean].mean()), 4),
            **{k: round(float(flagged[kinds == k].mean()), 3) for k in KINDS},
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parent / "results" / "part_relevance_dev.json"
    p.add_argument("--results", type=Path, default=default)
    args = p.parse_args()
    dolly = SHARED.parent / "dolly15k" / "dolly_15k.jsonl"
    report = {}
    for name, (path, n) in POOLS.items():
        report[name] = study(dev_set(path or dolly, n))
        r = report[name]
        print(f"{name}: {r['records']} clean, quantiles {r['clean_quantiles']}")
        print(f"  AUROC {json.dumps({k: round(v, 3) for k, v in r['auroc'].items()})}")
    ok = [
        c
        for c in CUTS
        if all(report[name]["at_cut"][str(c)]["clean"] <= MAX_CLEAN_SHARE for name in POOLS)
    ]
    report["rule"] = f"largest cut flagging <= {MAX_CLEAN_SHARE:.0%} of clean records in both pools"
    report["cut"] = max(ok) if ok else None
    for name in POOLS:
        print(f"{name} at cut {report['cut']}: {report[name]['at_cut'][str(report['cut'])]}")
    print(f"cut: {report['cut']} ({report['rule']})")
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
