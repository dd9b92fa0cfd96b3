"""How well does each tamis score find corrupted records? Noise injected with known labels.

A clean sample (default: the seeded Alpaca 52k sample of benchmarks/alpaca_sample.py, N=1000) has
a share ``--rate`` of its responses corrupted by tamis.data.noise (swap, truncate, shuffle, number,
empty; seed ``--seed``). The corrupted file is scored through the library (ppl, ifd, ce and the
heuristics by default); score files made elsewhere on the same corrupted file (``tamis score``
on OUT/noisy.jsonl, e.g. lp, an ensemble, a judge's rating) join by ``id`` with ``--scores``.

Every column is oriented by its better direction (tamis.scorers.direction_of) so that higher =
more suspicious, then:
- AUROC at telling corrupted from clean records, overall and per kind (that kind vs clean), over
  the records the column scored (0.5 = random; below 0.5 the column rates corrupted records better
  than clean ones);
- precision and recall when flagging the K most suspicious records, K = the number corrupted.
  Ties at the cut are shared out in proportion (the expected value of a random tie-break), and a
  corrupted record the column did not score counts as missed.
Records a column could not score (status != ok, or absent from a --scores file) are counted per
column and per kind, never dropped silently. A seeded random column is the baseline.

Usage: python benchmarks/noise.py [DATA] [--n N] [--rate 0.2] [--seed 0] [--out out/noise]
       [--scores PATH ...] [--results benchmarks/results/noise.json]   (see --help)
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

# Run as a script, so this folder is on sys.path: the sample is drawn exactly as there.
from alpaca_sample import SEED as SAMPLE_SEED
from alpaca_sample import SHARED

from tamis.base.errors import TamisError
from tamis.data.noise import KINDS, check_kinds, corrupt, write_corrupted

ALPACA = SHARED / "alpaca_52k.jsonl"
RESULTS = Path(__file__).resolve().parent / "results" / "noise.json"
DEFAULT_SCORERS = ("ppl", "ifd", "ce", "junk", "heuristics")
BASE_COLUMNS = {"index", "id", "status", "detail", "truncated"}


def load_clean(path: Path | None, n: int | None) -> list[dict]:
    """The clean records: all of ``path`` (JSON Lines or a JSON list), or a sample of ``n`` drawn
    as benchmarks/alpaca_sample.py draws it (seed 52002, input order kept)."""
    if path is None:
        path, n = ALPACA, n or 1000
    if not path.is_file():
        raise TamisError(f"{path}: no such file; check the path")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if n is None or n >= len(rows):
        return rows
    # Same draw as alpaca_sample.py: random.sample picks positions from the length alone.
    picks = sorted(random.Random(SAMPLE_SEED).sample(range(len(rows)), n))
    return [rows[i] for i in picks]


def score_noisy(noisy: Path, args, lm=None) -> tuple[list[dict], list[str], dict]:
    """Score ``noisy`` with the library as ``tamis score`` does (the junk score included when
    asked for); rows in input order (``index`` = position). ``lm``: a loaded model to reuse."""
    from tamis.data.outputs import write_scores
    from tamis.data.readers import read_dataset
    from tamis.model.cache import ScoreCache
    from tamis.model.loading import load_model
    from tamis.scorers import JUNK, get_scorers
    from tamis.scorers.junk import add_junk
    from tamis.scorers.score import score_dataset

    scorers = get_scorers(args.scorer)
    data = read_dataset(noisy, skip_bad=True)  # rejected records keep a row with their reason
    lm = lm or load_model(args.model, args.device)
    cache_path = args.cache or args.out / "cache" / "nll.sqlite"
    with ScoreCache(cache_path) as cache:
        result = score_dataset(
            data, lm, scorers, cache, args.template, args.max_tokens, args.batch_size
        )
    if JUNK in args.scorer:
        add_junk(result)
    write_scores(noisy.parent / "scores.parquet", result.rows, result.columns)
    info = {"model": lm.name, "model_sha256": lm.sha256, "template": result.template}
    return result.rows, list(result.columns), {**info, "score_stats": result.stats}


def add_score_file(rows: list[dict], columns: list[str], path: Path, noisy: Path) -> list[str]:
    """Join the columns of a ``scores.parquet`` (or its folder) into ``rows`` by ``id``; a name
    already taken gets ``@folder``. Returns the new column names."""
    from tamis.base.files import file_sha256
    from tamis.data.outputs import read_scores

    path = path / "scores.parquet" if path.is_dir() else path
    if not path.is_file():
        raise TamisError(f"{path}: no such score file; pass a scores.parquet or its folder")
    manifest = path.parent / "manifest.json"
    if manifest.is_file():
        scored = json.loads(manifest.read_text()).get("input", {})
        if scored.get("sha256") not in (None, file_sha256(noisy)):
            raise TamisError(
                f"{path} was scored on {scored.get('path')}, not on {noisy}; score the "
                f"corrupted file (tamis score {noisy} ...) and pass that folder"
            )
    theirs, their_columns = read_scores(path)
    by_id = {r["id"]: r for r in theirs}
    if not any(r["id"] in by_id for r in rows):
        raise TamisError(f"{path}: no id matches a record of {noisy}; score that file instead")
    added = []
    for column in their_columns:
        name = column if column not in columns else f"{column}@{path.parent.name}"
        for row in rows:
            other = by_id.get(row["id"])
            ok = other is not None and other["status"] == "ok"
            row[name] = other[column] if ok else None
        added.append(name)
    return added


def auroc(suspicion: np.ndarray, positive: np.ndarray) -> float | None:
    """P(a random positive is more suspicious than a random negative), ties one half; None
    without both classes. The Mann-Whitney statistic; equals sklearn's roc_auc_score."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(suspicion)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def flag_weights(suspicion: np.ndarray, k: int) -> np.ndarray:
    """Each record's chance of being among the ``k`` most suspicious, ties at the cut broken at
    random: 1 above the cut, 0 below, the free places shared equally by the tied records."""
    k = min(k, len(suspicion))
    if k == 0:
        return np.zeros(len(suspicion))
    cut = np.sort(suspicion)[::-1][k - 1]
    above, tied = suspicion > cut, suspicion == cut
    return above + tied * ((k - above.sum()) / tied.sum())


def evaluate_column(values, better: str, kinds: np.ndarray, kind_names, n_flag: int) -> dict:
    """Every number of one column; ``kinds`` holds each record's kind ("" = clean)."""
    values = np.array([np.nan if v is None else v for v in values], dtype=float)
    scored = ~np.isnan(values)
    suspicion = (values if better == "lower" else -values)[scored]
    kind = kinds[scored]
    bad = kind != ""
    weights = flag_weights(suspicion, n_flag)
    hits = float((weights * bad).sum())
    n_bad = int((kinds != "").sum())
    result = {
        "better": better,
        "scored": int(scored.sum()),
        "unscored": int((~scored).sum()),
        "unscored_by_kind": {
            k or "clean": int((~scored & (kinds == k)).sum()) for k in ["", *kind_names]
        },
        "auroc": auroc(suspicion, bad),
        "auroc_by_kind": {},
        "flagged": int(min(n_flag, scored.sum())),
        "precision": hits / min(n_flag, scored.sum()) if scored.any() and n_flag else None,
        "recall": hits / n_bad if n_bad else None,
        "recall_by_kind": {},
    }
    for name in kind_names:
        pair = (kind == name) | ~bad
        result["auroc_by_kind"][name] = auroc(suspicion[pair], kind[pair] == name)
        n_kind = int((kinds == name).sum())
        result["recall_by_kind"][name] = (
            float((weights * (kind == name)).sum()) / n_kind if n_kind else None
        )
    return result


def evaluate(rows, columns, labels, seed: int) -> tuple[dict[str, dict], dict[str, str]]:
    """``({column: numbers}, {column: why skipped})`` for every column and a random baseline."""
    from tamis.scorers import direction_of

    kinds = np.array([label["kind"] or "" for label in labels])
    kind_names = [k for k in KINDS if (kinds == k).any()]
    n_flag = int((kinds != "").sum())
    results, skipped = {}, {}
    for column in columns:
        better = direction_of(column.split("@", 1)[0])
        if better is None:
            skipped[column] = "no better direction known (tamis.scorers.direction_of)"
            continue
        values = [row.get(column) for row in rows]
        results[column] = evaluate_column(values, better, kinds, kind_names, n_flag)
    baseline = np.random.default_rng(seed).random(len(rows))
    results["random"] = evaluate_column(list(baseline), "lower", kinds, kind_names, n_flag)
    return results, skipped


def markdown(results: dict[str, dict], kind_names: list[str]) -> str:
    def num(x):
        return "–" if x is None else f"{x:.3f}"

    head = ["score", "better", "scored", "AUROC", *kind_names, "precision", "recall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, r["better"], str(r["scored"]), num(r["auroc"])]
        cells += [num(r["auroc_by_kind"].get(k)) for k in kind_names]
        cells += [num(r["precision"]), num(r["recall"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Writes OUT/noisy.jsonl, OUT/labels.jsonl, OUT/scores.parquet and the results JSON.",
    )
    p.add_argument(
        "data",
        nargs="?",
        type=Path,
        help="clean records, .jsonl or .json (default: the Alpaca 52k sample, see --n)",
    )
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="sample size, drawn as alpaca_sample.py draws it (default: 1000 of Alpaca 52k; "
        "every record of DATA)",
    )
    p.add_argument("--rate", type=float, default=0.2, help="share of records to corrupt (0.2)")
    p.add_argument("--seed", type=int, default=0, help="corruption seed (0)")
    p.add_argument(
        "--seeds",
        default=None,
        help="several corruption seeds, comma-separated (e.g. 0,1,2): the multi-seed study of "
        "benchmarks/noise_study.py (hard set, junk filter, kept half, clean data); "
        "OUT/seedS/ and OUT/clean/ per seed",
    )
    p.add_argument("--kinds", default=",".join(KINDS), help="corruptions, comma-separated (all)")
    p.add_argument("--out", type=Path, default=Path("out/noise"), help="output folder (out/noise)")
    p.add_argument(
        "--scorer",
        action="append",
        default=None,
        help=f"scorer or group to compute, repeatable (default: {' '.join(DEFAULT_SCORERS)})",
    )
    p.add_argument("--model", default="smollm2-135m", help="scorer model (smollm2-135m)")
    p.add_argument("--template", default="alpaca", help="alpaca, chat or auto (alpaca)")
    p.add_argument("--max-tokens", type=int, default=2048, help="context limit per record (2048)")
    p.add_argument("--batch-size", type=int, default=8, help="records per forward pass (8)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    p.add_argument("--cache", type=Path, default=None, help="NLL cache (OUT/cache/nll.sqlite)")
    p.add_argument(
        "--scores",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="a scores.parquet (or its folder) from tamis score/clear on OUT/noisy.jsonl, "
        "joined by id; repeatable",
    )
    p.add_argument(
        "--results", type=Path, default=RESULTS, help="results JSON (benchmarks/results/noise.json)"
    )
    args = p.parse_args(argv)
    args.scorer = args.scorer or list(DEFAULT_SCORERS)
    if args.seeds is not None:
        try:
            args.seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
        except ValueError:
            raise TamisError(f"--seeds '{args.seeds}': give integers, e.g. 0,1,2") from None
        if not args.seeds or args.scores:
            raise TamisError("--seeds needs at least one seed and takes no --scores")
    args.kinds = check_kinds([k.strip() for k in args.kinds.split(",") if k.strip()])
    if args.n is not None and args.n < 1:
        raise TamisError(f"--n must be at least 1, got {args.n}")
    return args


def run(argv: list[str] | None = None) -> dict:
    start = time.perf_counter()
    args = parse_args(argv)
    clean = load_clean(args.data, args.n)
    if args.seeds is not None:
        return run_study(args, clean, argv, start)
    objects, labels = corrupt(clean, args.rate, args.seed, args.kinds)
    noisy, _ = write_corrupted(args.out, objects, labels)
    rows, columns, info = score_noisy(noisy, args)
    for path in args.scores:
        columns += add_score_file(rows, columns, path, noisy)
    results, skipped = evaluate(rows, columns, labels, args.seed)
    counts = Counter(label["kind"] or "clean" for label in labels)
    kind_names = [k for k in KINDS if counts[k]]
    table = markdown(results, kind_names)
    report = {
        **report_head(args, clean, argv),
        "seed": args.seed,
        "counts": {"clean": counts["clean"], **{k: counts[k] for k in kind_names}},
        "corrupted": sum(counts[k] for k in kind_names),
        "status_counts": dict(Counter(r["status"] for r in rows)),
        "out": str(args.out),
        "scores_files": [str(p) for p in args.scores],
        **info,
        "results": results,
        "skipped_columns": skipped,
        "table": table,
        "wall_s": time.perf_counter() - start,
    }
    print(table)
    print(
        f"\n{len(clean)} records, {report['corrupted']} corrupted ({report['counts']}); "
        f"status: {report['status_counts']}"
    )
    for column, why in skipped.items():
        print(f"skipped {column}: {why}")
    return write_report(args, report)


def report_head(args, clean: list[dict], argv) -> dict:
    """The fields every results file opens with: command, data, sample, rate and kinds."""
    return {
        "command": shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])]),
        "data": str(args.data or ALPACA),
        "sample_size": len(clean),
        "rate": args.rate,
        "kinds": list(args.kinds),
    }


def write_report(args, report: dict) -> dict:
    """Write ``report`` to ``--results`` and say where."""
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.results}")
    return report


def run_study(args, clean: list[dict], argv, start: float) -> dict:
    from noise_study import markdown as study_markdown
    from noise_study import run_seeds

    study = run_seeds(args, clean, args.seeds)
    table = study_markdown(study, list(args.kinds))
    report = {
        **report_head(args, clean, argv),
        "scorers": args.scorer,
        **study,
        "table": table,
        "wall_s": time.perf_counter() - start,
    }
    print(table)
    print(f"hard set (ppl prefers the corruption): {study['hard_kinds']}")
    print(f"junk at its cut: {json.dumps(study['junk_at_cut'])}")
    print(f"kept half: {json.dumps(study['kept_half'])}")
    c = study["clean_only"]
    print(f"clean sample alone: junk drops {c['dropped']} of {c['records']} {c['by_signal']}")
    return write_report(args, report)


def main(argv: list[str] | None = None) -> int:
    try:
        run(argv)
    except TamisError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
