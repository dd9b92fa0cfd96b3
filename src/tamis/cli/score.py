"""tamis score and tamis run (score, then select): their options and commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tamis.cli.common import (
    CACHE_HELP,
    FRESH_HELP,
    add_data_and_out,
    add_ray_args,
    add_reading,
    from_args,
    ray_options,
)
from tamis.cli.details import add_verbosity, score_details, selection_details
from tamis.cli.select import _print_counts, _selection
from tamis.model.finetune import LP_METHODS, TRAIN_PRECISIONS, TrainConfig
from tamis.model.loading import DEFAULT_MODEL
from tamis.scorers import DEFAULT_SCORERS, SCORERS
from tamis.scorers.ensemble import METHODS as COMBINE_METHODS
from tamis.select.selection import check_columns


def _score_args(p: argparse.ArgumentParser) -> None:
    add_data_and_out(
        p,
        "instruction data: .jsonl, .json (a list), .parquet or .csv; a local path, or a URL "
        "(s3://bucket/key, gs://, hdfs://, file://, or any fsspec URL such as memory://)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=None,
        help="scorer model: a registered name (smollm2-135m, the default; gemma3-270m), a local "
        "Hugging Face folder, or a .gguf file; repeat it for an ensemble (see --combine)",
    )
    p.add_argument(
        "--combine",
        choices=COMBINE_METHODS,
        default="rank-mean",
        help="with several --model: how each score is combined into one column (per-model "
        "columns SCORE__MODEL and SCORE_disagreement are written too)",
    )
    p.add_argument(
        "--scorer",
        action="append",
        default=None,
        metavar="NAME",
        help=f"score(s) to compute, repeatable or comma-separated: model scores "
        f"{', '.join(DEFAULT_SCORERS)} (the default: all of these); text heuristics "
        f"{', '.join(n for n in SCORERS if n not in DEFAULT_SCORERS)} ('heuristics' for all); "
        "'lp' for learning percentage (fine-tunes a copy of the model, see --lp-*); 'rating' for "
        "the model's 1-5 judgement of each record (expected rating from the digit probabilities)",
    )
    add_reading(p.add_argument_group("how the model reads DATA (the same in every command)"))
    p.add_argument(
        "--cache",
        default=None,
        metavar="PATH",
        help=CACHE_HELP,
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse every score already in the cache; this is always done, the flag "
        "only states it (see --fresh)",
    )
    p.add_argument("--fresh", action="store_true", help=FRESH_HELP)
    add_verbosity(p)
    p.add_argument(
        "--clusters",
        type=int,
        default=None,
        metavar="K",
        help="k-means clusters for --scorer cluster, and of loss trajectories for --method s2l "
        "(default: round(sqrt(records / 2)), 1-100)",
    )
    add_ray_args(p)
    lp = p.add_argument_group("learning percentage (--scorer lp)")
    lp.add_argument("--lp-epochs", type=int, default=3, help="fine-tuning epochs n (P0..Pn)")
    lp.add_argument("--lp-method", choices=LP_METHODS, default="full", help="full or lora (peft)")
    lp.add_argument("--lp-lr", type=float, default=2e-5, help="learning rate")
    lp.add_argument("--lp-batch-size", type=int, default=8, help="training batch size")
    lp.add_argument(
        "--lp-precision",
        choices=TRAIN_PRECISIONS,
        default="float32",
        help="training precision; bfloat16 is mixed precision (float32 weights), about 1.4-2.1x "
        "faster with avx512_bf16 or AMX. P0..Pn are always scored in float32",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of LP training (data order, init), of --by random and of --method s2l's draws",
    )


def _score_config(args: argparse.Namespace):
    from tamis.engines.jobs import ScoreConfig

    names = DEFAULT_SCORERS
    if args.scorer:
        names = tuple(n.strip() for item in args.scorer for n in item.split(",") if n.strip())
    lp = TrainConfig(
        method=args.lp_method,
        epochs=args.lp_epochs,
        learning_rate=args.lp_lr,
        batch_size=args.lp_batch_size,
        seed=args.seed,
        precision=args.lp_precision,
    )
    return from_args(
        ScoreConfig,
        args,
        model=(args.model or [DEFAULT_MODEL])[0],
        scorers=names,
        train=lp,
        ensemble=tuple(args.model or ()),
        ray=ray_options(args),
    )


def _cmd_score(args: argparse.Namespace) -> int:
    from tamis.engines.jobs import score_job

    manifest = score_job(args.data, args.out, _score_config(args), progress=not args.quiet)
    if not args.quiet:
        _print_score_summary(manifest, args.out)
    if args.verbose:
        score_details(manifest, args.out)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from tamis.engines.jobs import score_job, select_job

    # Check the selection against the scores to come before the long scoring step.
    sel = _selection(args)
    cfg = _score_config(args)
    check_columns(sel, cfg.columns())
    score_job(args.data, args.out, cfg, progress=not args.quiet)
    manifest = select_job(args.out, sel, args.output_format)
    if not args.quiet:
        _print_score_summary(manifest, args.out)
        _print_counts(manifest, args.out)
    if args.verbose:
        score_details(manifest, args.out)
        selection_details(manifest, args.out)
    from tamis.report.build import write_report_after_job

    write_report_after_job(args.out, args.quiet)  # last: the run's outputs are complete
    return 0


def _print_score_summary(manifest: dict, out: Path) -> None:
    """One line: what was scored with what, and the work it took (each pass counted)."""
    s = manifest["score"]
    tps = s.get("tokens_per_s")
    speed = f", {tps:.0f} tokens/s" if tps else ""
    work = []
    if s["sequences"]:
        work.append(f"{s['computed']} sequences computed, {s['from_cache']} from cache{speed}")
    if "lp" in s:
        lp = s["lp"]
        work.append(
            f"learning percentage: {lp['epochs_trained']} of {lp['epochs']} epochs trained now, "
            f"{lp['computed']} P0..P{lp['epochs']} sequences computed, {lp['from_cache']} cached"
        )
    models = " + ".join(f"{m['name']} ({template_words(m)})" for m in manifest["models"])
    what = f"with {models}: {'; '.join(work)}" if work else "with the text scorers only (no model)"
    print(
        f"scored {manifest['input']['records']} records {what} -> {out / 'scores.parquet'}",
        file=sys.stderr,
    )


def template_words(model: dict) -> str:
    """``template chat, with its default system prompt``: how a model read the records."""
    words = f"template {model.get('template')}"
    return words + (", with its default system prompt" if model.get("system_prompt") else "")
