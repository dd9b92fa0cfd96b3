"""The ``tamis`` command: ``score``, ``select`` and ``run`` (score then select).

A user's mistake prints one line, ``tamis: error: ...``, and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tamis import __version__
from tamis.ensemble import METHODS as COMBINE_METHODS
from tamis.errors import TamisError
from tamis.models import DEFAULT_MODEL, PRECISIONS
from tamis.ray_engine import add_ray_args, ray_options
from tamis.records import FORMATS
from tamis.remote import data_arg
from tamis.render import TEMPLATES
from tamis.scorers import DEFAULT_SCORERS, DIRECTIONS, SCORERS
from tamis.select import Selection, check_columns, parse_filter, parse_keep
from tamis.selectors import DEFAULT_MAX_SIMILARITY, METHODS, parse_tokens
from tamis.train import LP_METHODS, TRAIN_PRECISIONS, TrainConfig

EPILOG = """examples:
  tamis run data.jsonl -o out/ --keep 0.5               drop junk, keep the 50% with the lowest ppl
  tamis run data.jsonl -o out/ --keep 1000 --by ifd      keep the 1000 highest IFD (<= 1)
  tamis score data.parquet -o out/ --scorer ppl --template alpaca
  tamis select out/ --keep 0.2 --by ppl --max 50
"""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default only when it says something (not None, False or already there)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # `is`, not `in`: a default of 0 equals False and must still be shown.
        if action.default is None or action.default is False or "default" in text:
            return text
        if isinstance(action, argparse._StoreFalseAction):  # "--no-x (default: True)" misleads
            return text
        return super()._get_help_string(action)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TamisError as e:
        print(f"tamis: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "tamis: interrupted; re-run the same command to resume from the score cache",
            file=sys.stderr,
        )
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tamis",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
        description="Curate instruction-tuning data with a small language model: score every "
        "record, keep the best, and write the reason for every drop.",
    )
    parser.add_argument("--version", action="version", version=f"tamis {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    score = sub.add_parser(
        "score",
        help="score every record of DATA into DIR/scores.parquet",
        formatter_class=HelpFormatter,
    )
    _score_args(score)
    score.set_defaults(func=_cmd_score)
    sel = sub.add_parser(
        "select",
        help="select from a scored DIR: selected.jsonl, rejected.jsonl",
        formatter_class=HelpFormatter,
    )
    sel.add_argument("dir", metavar="DIR", type=Path, help="output folder of 'tamis score'")
    _select_args(sel)
    sel.add_argument(
        "--clusters",
        type=int,
        default=None,
        metavar="K",
        help="k-means clusters of loss trajectories for --method s2l "
        "(default: round(sqrt(records / 2)))",
    )
    sel.add_argument(
        "--seed", type=int, default=0, help="seed of --by random and of --method s2l's draws"
    )
    sel.add_argument("-q", "--quiet", action="store_true", help="no summary")
    sel.set_defaults(func=_cmd_select)
    run = sub.add_parser(
        "run",
        help="score DATA, then select, all into DIR (the main job)",
        formatter_class=HelpFormatter,
    )
    _score_args(run)
    _select_args(run)
    run.set_defaults(func=_cmd_run)
    from tamis.transfer import add_parser as add_transfer_parser  # light: heavy deps are lazy

    add_transfer_parser(sub)
    from tamis.predict_loss import add_parser as add_predict_loss_parser

    add_predict_loss_parser(sub)
    from tamis.clear_job import add_parser as add_clear_parser

    add_clear_parser(sub)
    from tamis.train_job import add_parser as add_train_parser

    add_train_parser(sub)
    from tamis.eval_job import add_parser as add_eval_parser

    add_eval_parser(sub)
    from tamis.experiment import add_parser as add_experiment_parser

    add_experiment_parser(sub)
    from tamis.report import add_parser as add_report_parser

    add_report_parser(sub)
    return parser


def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data",
        metavar="DATA",
        type=data_arg,
        help="instruction data: .jsonl, .json (a list), .parquet or .csv; a local path, or a URL "
        "(s3://bucket/key, gs://, hdfs://, file://, or any fsspec URL such as memory://)",
    )
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output folder")
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
        "--format",
        choices=FORMATS,
        default=None,
        help="input format (default: detected from the first record)",
    )
    p.add_argument(
        "--template",
        choices=TEMPLATES,
        default="auto",
        help="auto: the model's chat template if it has one, else alpaca (the papers' "
        "Alpaca prompt)",
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
    p.add_argument(
        "--max-tokens",
        type=int,
        default=2048,
        help="context limit per record; longer prompts are cut from the left (flagged "
        "'truncated'), responses that do not fit are dropped as 'too_long'",
    )
    p.add_argument("--batch-size", type=int, default=8, help="records per forward pass")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: float32 on a CPU, bfloat16 on a GPU. bfloat16 on a CPU: about 2.4x faster "
        "with avx512_bf16 or AMX (same ranking, scores within a few %%), much slower without; "
        "scores are cached per precision",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="send malformed records to rejected.jsonl with their reason instead of "
        "stopping at the first one",
    )
    p.add_argument(
        "--cache",
        default=None,
        metavar="PATH",
        help="score cache file (default: DIR/cache/nll.sqlite); share it between runs "
        "to reuse scores",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse every score already in the cache; this is always done, the flag "
        "only states it (see --fresh)",
    )
    p.add_argument("--fresh", action="store_true", help="discard the score cache and score again")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
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
    lp.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of LP training (data order, init), of --by random and of --method s2l's draws",
    )


def _select_args(p: argparse.ArgumentParser) -> None:
    default_dirs = ", ".join(
        f"{c}: {'lowest' if d == 'lower' else 'highest'}" for c, d in DIRECTIONS.items()
    )
    p.add_argument(
        "--keep",
        default=None,
        help="how many to keep: a count (500), or a fraction (0.2, 20%%) of the scored "
        "records, rounded down (default: all that pass the thresholds)",
    )
    p.add_argument(
        "--keep-tokens",
        default=None,
        metavar="N",
        help="a budget in training tokens (prompt + response, as rendered): keep records in "
        "order while they fit, e.g. 200000 or 200k; with --keep, whichever is reached first",
    )
    p.add_argument(
        "--by",
        default="ppl",
        help="score column to rank and threshold on; 'random' for a seeded random order "
        "(--seed), the baseline at the same budget",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="top",
        help="top: the best by --by (--by ifd: Superfiltering); s2l: spread the budget evenly "
        "over clusters of the loss trajectories p0..pN of --scorer lp (Yang et al. 2024); "
        "diverse: the --by order, skipping records too similar to one taken (DEITA)",
    )
    p.add_argument(
        "--max-similarity",
        type=float,
        default=DEFAULT_MAX_SIMILARITY,
        metavar="X",
        help="--method diverse: skip a record whose MiniLM embedding has this cosine "
        "similarity or more with one taken (reason too_similar)",
    )
    order = p.add_mutually_exclusive_group()
    order.add_argument(
        "--keep-lowest",
        dest="direction",
        action="store_const",
        const="lowest",
        help=f"keep the lowest values (defaults per score: {default_dirs})",
    )
    order.add_argument(
        "--keep-highest",
        dest="direction",
        action="store_const",
        const="highest",
        help="keep the highest values",
    )
    p.add_argument("--min", type=float, default=None, help="drop records whose --by score is below")
    p.add_argument("--max", type=float, default=None, help="drop records whose --by score is above")
    from tamis.scorers.heuristics import DEFAULT_FILTERS

    p.add_argument(
        "--filter",
        action="append",
        default=None,
        metavar="EXPR",
        help="drop records failing COLUMN OP NUMBER, e.g. 'repetition<=0.3' (OP: <= >= == != < >); "
        "repeatable; the drop reason is filter_COLUMN. 'default' stands for the recommended "
        f"heuristic filters, {' '.join(DEFAULT_FILTERS)} (score them with --scorer heuristics)",
    )
    p.add_argument(
        "--per-cluster",
        action="store_true",
        help="split the --keep budget over the clusters of --scorer cluster (in proportion to "
        "their sizes) and rank within each, keeping the data's spread of tasks",
    )
    p.add_argument(
        "--drop-ifd-above",
        default=None,
        metavar="X",
        help="drop records with ifd > X; default 1 when --by ifd, else off; 'none' turns it off",
    )
    from tamis.scorers.junk import MEANINGS

    p.add_argument(
        "--drop-junk-above",
        default=None,
        metavar="X",
        help="drop records with junk > X before ranking, reason junk_SIGNAL (the signal that "
        f"fired: {', '.join(MEANINGS)}); default 0 whenever the scores have the "
        "junk column (the default scorers do); a larger X drops less; 'none' turns it off",
    )


def _limit(text: str | None, option: str, example: str) -> float | None:
    """A ``--drop-*-above`` value: None (the default), inf for none/off/inf, else a number."""
    if text is None:
        return None
    if text.strip().lower() in ("none", "off", "inf"):
        return math.inf
    problem = f"{option} '{text}' is not a number; give e.g. {example} or 'none'"
    try:
        value = float(text)
    except ValueError:
        raise TamisError(problem) from None
    if math.isnan(value):
        raise TamisError(problem)
    return value


def _selection(args: argparse.Namespace) -> Selection:
    limit = _limit(args.drop_ifd_above, "--drop-ifd-above", "1")
    junk = _limit(args.drop_junk_above, "--drop-junk-above", "0")
    keep = parse_keep(args.keep) if args.keep is not None else None
    exprs = []
    for f in args.filter or ():
        if f.strip().lower() == "default":
            from tamis.scorers.heuristics import DEFAULT_FILTERS

            exprs.extend(DEFAULT_FILTERS)
        else:
            exprs.append(f)
    filters = tuple(dict.fromkeys(parse_filter(f) for f in exprs))  # each once, first place kept
    return Selection(
        by=args.by,
        keep=keep,
        direction=args.direction,
        min=args.min,
        max=args.max,
        drop_ifd_above=limit,
        filters=filters,
        per_cluster=args.per_cluster,
        drop_junk_above=junk,
        keep_tokens=parse_tokens(args.keep_tokens) if args.keep_tokens is not None else None,
        method=args.method,
        seed=args.seed,
        clusters=args.clusters,
        max_similarity=args.max_similarity,
    )


def _score_config(args: argparse.Namespace):
    from tamis.jobs import ScoreConfig

    names = DEFAULT_SCORERS
    if args.scorer:
        names = tuple(n.strip() for item in args.scorer for n in item.split(",") if n.strip())
    return ScoreConfig(
        model=(args.model or [DEFAULT_MODEL])[0],
        format=args.format,
        skip_bad=args.skip_bad,
        template=args.template,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        scorers=names,
        device=args.device,
        precision=args.precision,
        cache=args.cache,
        fresh=args.fresh,
        train=TrainConfig(
            method=args.lp_method,
            epochs=args.lp_epochs,
            learning_rate=args.lp_lr,
            batch_size=args.lp_batch_size,
            seed=args.seed,
            precision=args.lp_precision,
        ),
        ensemble=tuple(args.model or ()),
        combine=args.combine,
        clusters=args.clusters,
        engine=args.engine,
        ray=ray_options(args),
    )


def _cmd_score(args: argparse.Namespace) -> int:
    from tamis.jobs import score_job

    manifest = score_job(args.data, args.out, _score_config(args), progress=not args.quiet)
    if not args.quiet:
        _print_score_summary(manifest, args.out)
    return 0


def _cmd_select(args: argparse.Namespace) -> int:
    from tamis.jobs import select_job
    from tamis.report import write_report_after_job

    manifest = select_job(args.dir, _selection(args))
    if not args.quiet:
        _print_counts(manifest, args.dir)
    write_report_after_job(args.dir, args.quiet)  # last: the selection's outputs are complete
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from tamis.jobs import score_job, select_job

    # Check the selection against the scores to come before the long scoring step.
    sel = _selection(args)
    cfg = _score_config(args)
    check_columns(sel, cfg.columns())
    score_job(args.data, args.out, cfg, progress=not args.quiet)
    manifest = select_job(args.out, sel)
    if not args.quiet:
        _print_score_summary(manifest, args.out)
        _print_counts(manifest, args.out)
    from tamis.report import write_report_after_job

    write_report_after_job(args.out, args.quiet)  # last: the run's outputs are complete
    return 0


def _print_score_summary(manifest: dict, out: Path) -> None:
    s = manifest["score"]
    tps = s.get("tokens_per_s")
    speed = f", {tps:.0f} tokens/s" if tps else ""
    models = " + ".join(m["name"] for m in manifest["models"])
    print(
        f"scored {manifest['input']['records']} records with {models} "
        f"({s['computed']} sequences computed, {s['from_cache']} from cache{speed}) "
        f"-> {out / 'scores.parquet'}",
        file=sys.stderr,
    )


def _print_counts(manifest: dict, out: Path) -> None:
    c = manifest["counts"]
    reasons = json.dumps(c["rejected_by_reason"])
    tokens = (
        f" ({c['selected_tokens']:,} of {c['input_tokens']:,} training tokens)"
        if "selected_tokens" in c
        else ""
    )
    print(
        f"kept {c['selected']} of {c['input']}{tokens} -> {out / 'selected.jsonl'}; rejected "
        f"{c['rejected']} {reasons} -> {out / 'rejected.jsonl'}",
        file=sys.stderr,
    )
    print(junk_line(manifest), file=sys.stderr)


def junk_line(manifest: dict) -> str:
    """What the junk filter did in one line: the records each signal removed, or that it was off."""
    limit = manifest["selection"].get("drop_junk_above")
    if limit is None:
        return "junk filter: off (no junk column in these scores, or --drop-junk-above none)"
    by_signal = manifest["counts"].get("junk_by_signal", {})
    total = sum(by_signal.values())
    parts = ", ".join(f"{signal} {n}" for signal, n in by_signal.items())
    return f"junk filter (junk > {limit:g}): dropped {total}" + (f" ({parts})" if parts else "")


if __name__ == "__main__":
    sys.exit(main())
