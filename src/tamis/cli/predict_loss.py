"""tamis predict-loss: a small model predicting a large model's loss."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from tamis.cli.common import CACHE_HELP, add_data_and_out, add_quiet, add_reading, command
from tamis.engines.predict_loss import LARGE_MODEL, PRED, PredictLossConfig, predict_loss_job
from tamis.model.loading import DEFAULT_MODEL
from tamis.predict.regression import REGRESSORS


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``predict-loss`` subcommand to the ``tamis`` parser."""
    p = command(
        subparsers,
        "predict-loss",
        help="predict a large model's loss on every record from a small model and a sample",
        description="Score every record with the small model, a seeded random sample with the "
        "large one, and fit a cheap regressor (small-model scores + MiniLM prompt embedding) "
        "that predicts the large model's ce for every record. Reports held-out Pearson and "
        "Spearman (5-fold CV) against the small model's ce alone, and the compute saved. "
        "Then: tamis select DIR --by large_ce_pred --keep ...",
    )
    add_data_and_out(p)
    p.add_argument("--small", default=DEFAULT_MODEL, help="the small scorer model (every record)")
    p.add_argument("--large", default=LARGE_MODEL, help="the large model (the sample only)")
    p.add_argument("--sample", type=int, default=200, help="records the large model scores")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample, the folds and gbm")
    p.add_argument(
        "--regressor",
        choices=REGRESSORS,
        default="ridge",
        help="ridge: standardised features, alpha by RidgeCV; gbm: HistGradientBoosting",
    )
    add_reading(p.add_argument_group("how the models read DATA (the same in every command)"))
    p.add_argument("--cache", default=None, metavar="PATH", help=CACHE_HELP)
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """The ``predict-loss`` command."""
    names = [f.name for f in fields(PredictLossConfig) if f.name != "folds"]
    cfg = PredictLossConfig(**{name: getattr(args, name) for name in names})
    manifest = predict_loss_job(args.data, args.out, cfg, progress=not args.quiet)
    if not args.quiet:
        print(summary(manifest, args.out), file=sys.stderr)
    return 0


def summary(manifest: dict, out: Path) -> str:
    """A few lines: what was scored, the held-out correlations, the compute saved."""
    r = manifest["predict_loss"]
    m, c = r["metrics"], r["compute"]

    def corr(d: dict) -> str:
        return f"Pearson {_fmt(d['pearson'])}, Spearman {_fmt(d['spearman'])}"

    small, large = manifest["model"]["name"], manifest["large_model"]["name"]
    size, asked = r["sample"]["size"], r["sample"].get("asked", r["sample"]["size"])
    note = f" (asked for {asked}: all that both models can score)" if size < asked else ""
    lines = [
        f"scored {r['scorable']} records with {small}, {size} with {large}{note}",
        f"held out ({m['folds']}-fold CV on the sample), predicting {large}'s ce:",
        f"  {r['fitted']['regressor']} (scores + prompt embedding): {corr(m['regressor'])}",
    ]
    if "regressor_scores_only" in m:
        lines.append(f"  same, scores only (no embedding): {corr(m['regressor_scores_only'])}")
    lines.append(f"  small model's ce alone: {corr(m['baseline_small_ce'])}")
    frac = c["large_token_fraction"]
    saved = (
        f"compute: the large model read {c['large_sample_tokens']:,} of {c['large_all_tokens']:,} "
        f"tokens ({100 * frac:.1f}%)"
        if frac is not None
        else "compute: no tokens"
    )
    if c["large_pass"] is not None:
        saved += (
            f"; its pass took {c['large_pass']['forward_s']:.1f} s ({c['large_pass']['measured']}),"
            f" all records would take about {c['large_all_forward_s_estimate']:.0f} s"
        )
    else:
        saved += "; no time measured (all from the cache)"
    lines += [saved, f"-> {out / 'scores.parquet'}; then: tamis select {out} --by {PRED} --keep N"]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
