"""tamis select: the selection options (shared with run) and the command."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tamis.base.errors import TamisError
from tamis.cli.details import selection_details
from tamis.data.outputs import OUTPUT_FORMATS
from tamis.scorers import DIRECTIONS
from tamis.select.methods import DEFAULT_BY, DEFAULT_MAX_SIMILARITY, METHODS, RECIPE, parse_tokens
from tamis.select.options import parse_filter, parse_keep
from tamis.select.selection import Selection


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
        default=None,
        help="score column to rank and threshold on (e.g. ppl, ifd, lp), or 'random' for a "
        "seeded random order (--seed). Default: random, the default recipe: "
        + RECIPE.replace("%", "%%"),  # argparse formats help with %
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
    p.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        default="jsonl",
        help="jsonl: selected.jsonl and rejected.jsonl; parquet: selected.parquet (the input's "
        "columns, and a Parquet input's types) and rejected.parquet (the same columns plus "
        "tamis_reason, tamis_detail, ...), for pandas.read_parquet or datasets in one line",
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
        by=args.by or DEFAULT_BY,
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


def _cmd_select(args: argparse.Namespace) -> int:
    from tamis.engines.jobs import select_job
    from tamis.report.build import write_report_after_job

    manifest = select_job(args.dir, _selection(args), args.output_format)
    if not args.quiet:
        _print_counts(manifest, args.dir)
    if args.verbose:
        selection_details(manifest, args.dir)
    write_report_after_job(args.dir, args.quiet)  # last: the selection's outputs are complete
    return 0


def _print_counts(manifest: dict, out: Path) -> None:
    ext = manifest["selection"].get("output_format", "jsonl")
    c = manifest["counts"]
    reasons = json.dumps(c["rejected_by_reason"])
    tokens = (
        f" ({c['selected_tokens']:,} of {c['input_tokens']:,} training tokens)"
        if "selected_tokens" in c
        else ""
    )
    print(
        f"kept {c['selected']} of {c['input']}{tokens}{_asked(manifest)} -> "
        f"{out / f'selected.{ext}'}; rejected "
        f"{c['rejected']} {reasons} -> {out / f'rejected.{ext}'}",
        file=sys.stderr,
    )
    print(junk_line(manifest), file=sys.stderr)


def _asked(manifest: dict) -> str:
    """What the budget asked for, when the count kept does not say it by itself."""
    sel, c = manifest["selection"], manifest["counts"]
    if sel.get("keep") is None:
        return "" if sel.get("keep_tokens") is not None else " (no --keep: all that passed)"
    asked = c.get("asked")
    if asked is None or sel.get("keep_tokens") is not None:
        return ""
    if asked == 0:
        return f" (--keep {sel['keep']:g} of {c['scored']} scored records rounds down to 0)"
    if c["selected"] < asked:
        return f" (asked for {asked}: only {c['selected']} left after the filters)"
    return ""


def junk_line(manifest: dict) -> str:
    """What the junk filter did in one line: the records each signal removed, or that it was off."""
    limit = manifest["selection"].get("drop_junk_above")
    if limit is None:
        return "junk filter: off (no junk column in these scores, or --drop-junk-above none)"
    by_signal = manifest["counts"].get("junk_by_signal", {})
    total = sum(by_signal.values())
    parts = ", ".join(f"{signal} {n}" for signal, n in by_signal.items())
    return f"junk filter (junk > {limit:g}): dropped {total}" + (f" ({parts})" if parts else "")
