"""How well does each tamis score find good Alpaca records? Compared with labels made elsewhere.

For every score column of a tamis output folder scored on Alpaca records (ids = Alpaca indices):
- AUROC against `alpagasus_claude_acc_ge4.5` (Claude rated accuracy >= 4.5/5, AlpaGasus), with the
  score oriented so that its *better* direction predicts the label (0.5 = random);
- the share of `cherry_ifd_top5pct` records (IFD top 5% by a LLaMA-7B model, Cherry LLM) found in
  the score's best 5% (random: 5%), and in its worst 5%.
`ifd_le1` is IFD with Cherry's rule applied: records with IFD > 1 rank last.
A seeded random score is reported alongside as the baseline; 95% intervals come from 1,000
bootstrap resamples (seed 0).

Usage: python benchmarks/scorer_quality.py OUT_DIR [OUT_DIR ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca52k" / "labels.jsonl"
NOT_SCORES = {"index", "id", "status", "detail", "truncated"}


def auroc(score: np.ndarray, label: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count one half)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    pos = label.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_share(score: np.ndarray, label: np.ndarray, frac: float = 0.05) -> float:
    """Share of the positives that fall in the best ``frac`` of the score (higher = better)."""
    k = max(1, int(round(frac * len(score))))
    top = np.argsort(-score, kind="stable")[:k]
    return float(label[top].sum() / label.sum())


def bootstrap(fn, score, label, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(score), len(score))
        if 0 < label[i].sum() < len(i):
            vals.append(fn(score[i], label[i]))
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def evaluate(
    out_dir: Path, labels: dict[str, dict], exclude: frozenset = frozenset()
) -> list[dict]:
    from tamis.scorers import direction_of

    table = pq.read_table(out_dir / "scores.parquet").to_pylist()
    rows = [
        r for r in table if r["status"] == "ok" and r["id"] in labels and r["id"] not in exclude
    ]
    claude = np.array([labels[r["id"]]["alpagasus_claude_acc_ge4.5"] for r in rows], dtype=float)
    cherry = np.array([labels[r["id"]]["cherry_ifd_top5pct"] for r in rows], dtype=float)
    columns = [c for c in table[0] if c not in NOT_SCORES]
    scores = {c: np.array([r[c] for r in rows], dtype=float) for c in columns}
    if "ifd" in scores:  # Cherry's rule: IFD above 1 (prompt does not help) ranks last
        scores["ifd_le1"] = np.where(scores["ifd"] <= 1, scores["ifd"], -np.inf)
    scores["random"] = np.random.default_rng(0).random(len(rows))
    results = []
    for name, values in scores.items():
        better = direction_of(name) or "higher"
        oriented = -values if better == "lower" else values
        results.append(
            {
                "folder": str(out_dir),
                "score": name,
                "n": len(rows),
                "better": better,
                "auroc_claude": auroc(oriented, claude),
                "auroc_claude_ci95": bootstrap(auroc, oriented, claude),
                "cherry_in_best5": best_share(oriented, cherry),
                "cherry_in_worst5": best_share(-oriented, cherry),
                "positives": {"claude": int(claude.sum()), "cherry": int(cherry.sum())},
            }
        )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--clean-only",
        type=Path,
        default=None,
        metavar="LABELS",
        help="labels.jsonl of benchmarks/noise.py: leave out the records it corrupted (their "
        "responses are no longer the ones the AlpaGasus labels judged)",
    )
    args = parser.parse_args(argv)
    with LABELS.open() as f:
        labels = {str(row["id"]): row for row in map(json.loads, f)}
    exclude = frozenset()
    if args.clean_only:
        with args.clean_only.open() as f:
            exclude = frozenset(str(r["id"]) for r in map(json.loads, f) if r["kind"] is not None)
    results = [r for folder in args.folders for r in evaluate(folder, labels, exclude)]
    print(
        f"{'folder':<28} {'score':<16} {'n':>5} {'AUROC claude':>13} {'95% CI':>15} "
        f"{'cherry best5%':>14} {'worst5%':>8}"
    )
    for r in results:
        lo, hi = r["auroc_claude_ci95"]
        ci = f"[{lo:.3f}, {hi:.3f}]"
        print(
            f"{Path(r['folder']).name:<28} {r['score']:<16} {r['n']:>5} {r['auroc_claude']:>13.3f} "
            f"{ci:>15} {r['cherry_in_best5']:>14.1%} {r['cherry_in_worst5']:>8.1%}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
