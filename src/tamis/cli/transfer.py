"""tamis transfer: how well one model's scores rank records for another."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tamis.base.agreement import DIRECTION_CHOICES
from tamis.base.errors import TamisError
from tamis.base.files import atomic_open, write_json
from tamis.cli.common import command
from tamis.transfer.hardness import (
    DEFAULT_TOP,
    INPUT_HELP,
    WARN_BELOW,
    compare,
    load_column,
    parse_top,
    resolve_direction,
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``transfer`` subcommand to the ``tamis`` parser."""
    p = command(
        subparsers,
        "transfer",
        help="how well two models' scores of the same records agree (hardness transfer)",
        description="Compare one score of the same records from two models (A: the small "
        "scorer model, B: the larger target model): Spearman and Kendall rank correlations, "
        "and the Jaccard overlap of their top-k% sets against the overlap expected by chance.",
    )
    p.add_argument("a", metavar="A", type=Path, help=f"small model's scores: {INPUT_HELP}")
    p.add_argument("b", metavar="B", type=Path, help=f"larger model's scores: {INPUT_HELP}")
    p.add_argument("--score", required=True, metavar="COL", help="score column in A")
    p.add_argument(
        "--score-b",
        default=None,
        metavar="COL",
        help="score column in B; when not given, the --score column",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write DIR/transfer.json (every number, inputs with sha256) and "
        "DIR/transfer.png (scatter plot)",
    )
    p.add_argument(
        "--top",
        default=DEFAULT_TOP,
        metavar="K,K,...",
        help="top-k%% sets to compare, percentages in (0, 100]",
    )
    p.add_argument(
        "--direction",
        choices=DIRECTION_CHOICES,
        default=None,
        help="which end of the scores is 'top' (lower: lowest values, as for ppl); default: "
        "the score's better direction when tamis knows the column, else higher",
    )
    p.add_argument(
        "--warn-below",
        type=float,
        default=WARN_BELOW,
        metavar="RHO",
        help="warn when Spearman is below this: under 0.3 (a weak correlation) the two top "
        "10%% sets share only about a fifth of their records",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """The ``transfer`` command: print the table, warn on low agreement, write -o outputs."""
    from tamis.transfer.report import format_table, plot, report, warning

    percents = parse_top(args.top)
    if not -1 <= args.warn_below <= 1:
        raise TamisError(
            f"--warn-below {args.warn_below} is not a correlation; give a value in [-1, 1], "
            f"e.g. {WARN_BELOW}"
        )
    column_b = args.score_b or args.score
    direction, source = resolve_direction(args.direction, args.score, column_b)
    a = load_column(args.a, args.score, "A", "check --score")
    b = load_column(args.b, column_b, "B", "check --score-b (default: --score)")
    result, joined = compare(a, b, percents, direction)
    print(format_table(a, b, result, source))
    message = warning(result, args.warn_below)
    if message:
        print(message, file=sys.stderr)
    if args.out is not None:
        write_json(args.out / "transfer.json", report(a, b, result, source, args.warn_below))
        with atomic_open(args.out / "transfer.png", "wb") as f:
            plot(f, a, b, joined, result)
        print(f"wrote {args.out / 'transfer.json'}, {args.out / 'transfer.png'}", file=sys.stderr)
    return 0
