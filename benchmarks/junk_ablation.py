"""Junk with some signals left out, on the folders of a ``benchmarks/noise.py --seeds`` study: how
much of its AUROC comes from each signal, and whether the pattern rules (``markup``,
``template_leak``, ``boilerplate``) carry it. Reads OUT/seedS/scores.parquet and labels.jsonl;
no model.

Usage: python benchmarks/junk_ablation.py OUT [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from noise import auroc

from tamis.data.outputs import read_scores
from tamis.scorers.junk import FLAGS, junk_scores

ARMS = {
    "all signals": (),
    "without markup, template_leak, boilerplate": ("markup", "template_leak", "boilerplate"),
    "model signals only": tuple(f.name for f in FLAGS),
    "without unlikely_part": ("unlikely_part",),
    "without unlikely_words": ("unlikely_words",),
    "without misspelt, dangling": ("misspelt", "dangling"),
    "without appended": ("appended",),
    "without looping": ("looping",),
    "without appended, looping (fifth version)": ("appended", "looping"),
}


def scores_without(rows: list[dict], drop: tuple[str, ...]) -> np.ndarray:
    """``junk`` recomputed with the signals in ``drop`` left out."""
    verdicts = junk_scores(rows, leave_out=frozenset(drop))
    return np.array([np.nan if v.junk is None else v.junk for v in verdicts])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    result: dict = {}
    for name, drop in ARMS.items():
        overall, by_kind = [], {}
        for seed in seeds:
            folder = args.out / f"seed{seed}"
            rows, _ = read_scores(folder / "scores.parquet")
            with (folder / "labels.jsonl").open() as f:
                kinds = np.array([json.loads(line)["kind"] or "" for line in f])
            s = scores_without(rows, drop)
            ok = ~np.isnan(s)
            overall.append(auroc(s[ok], kinds[ok] != ""))
            for k in sorted(set(kinds) - {""}):
                pair = ok & ((kinds == k) | (kinds == ""))
                by_kind.setdefault(k, []).append(auroc(s[pair], kinds[pair] == k))
        result[name] = {
            "auroc": float(np.mean(overall)),
            "auroc_by_kind": {k: float(np.mean(v)) for k, v in by_kind.items()},
        }
        print(
            f"{name}: AUROC {result[name]['auroc']:.3f}  "
            + ", ".join(f"{k} {v:.3f}" for k, v in result[name]["auroc_by_kind"].items())
        )
    path = Path(__file__).resolve().parent / "results" / f"junk_ablation_{args.out.name}.json"
    path.write_text(
        json.dumps(
            {"command": f"python benchmarks/junk_ablation.py {args.out}", "seeds": seeds, **result},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
