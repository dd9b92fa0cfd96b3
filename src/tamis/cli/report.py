"""tamis report: the HTML report of an output folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tamis.cli.common import command
from tamis.report.build import write_report


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to the ``tamis`` parser."""
    p = command(
        subparsers,
        "report",
        help="write DIR/report.html: one self-contained page about a curation or experiment",
        description="Write one HTML page, readable offline, about a tamis output folder: for "
        "run, select, score and clear folders a summary, a histogram of every score with the "
        "selection cut, scatter plots, sortable and searchable tables of the top and bottom "
        "records by every score, every dropped record, a per-category breakdown and (clear) "
        "the corrections; for train folders the loss curves (training and held-out) and every "
        "step; for eval folders the metrics and every record's answer; for experiment folders "
        "the results table and loss curves. run, select, clear, train, eval and experiment "
        "write it themselves.",
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="a tamis output folder")
    p.add_argument(
        "-o", "--out", type=Path, default=None, metavar="FILE", help="default: DIR/report.html"
    )
    p.add_argument(
        "--scatter",
        action="append",
        default=None,
        type=_pair,
        metavar="X,Y",
        help="plot score Y against score X (e.g. ifd,ppl); repeatable (default: the selection "
        "score against each other score)",
    )
    p.set_defaults(func=_cmd_report)
    return p


def _pair(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"'{text}': give two score names, e.g. ifd,ppl")
    return parts[0], parts[1]


def _cmd_report(args: argparse.Namespace) -> int:
    path = write_report(args.dir, args.out, args.scatter or ())
    print(f"report -> {path}", file=sys.stderr)
    return 0
