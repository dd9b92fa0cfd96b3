"""The ``tamis`` command: ``score``, ``select`` and ``run`` (score then select).

A user's mistake prints one line, ``tamis: error: ...``, and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tamis.base.errors import TamisError
from tamis.base.version import __version__
from tamis.cli.common import command
from tamis.cli.details import add_verbosity
from tamis.cli.score import _cmd_run, _cmd_score, _score_args
from tamis.cli.select import _cmd_select, _select_args
from tamis.select.methods import RECIPE

EPILOG = """examples:
  tamis run data.jsonl -o out/ --keep 0.5               drop junk, keep a random 50% of the rest
  tamis run data.jsonl -o out/ --keep 0.5 --by ppl      drop junk, keep the 50% with the lowest ppl
  tamis run data.jsonl -o out/ --keep 1000 --by ifd      keep the 1000 highest IFD (<= 1)
  tamis score data.parquet -o out/ --scorer ppl --template alpaca
  tamis select out/ --keep 0.2 --by ppl --max 50
"""


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
    score = command(sub, "score", help="score every record of DATA into DIR/scores.parquet")
    _score_args(score)
    score.set_defaults(func=_cmd_score)
    sel = command(sub, "select", help="select from a scored DIR: selected.jsonl, rejected.jsonl")
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
    add_verbosity(sel)
    sel.set_defaults(func=_cmd_select)
    run = command(
        sub,
        "run",
        help="score DATA, then select, all into DIR (the main job)",
        description=f"Score DATA, then select. Without --by, the default recipe: {RECIPE}.",
    )
    selection = run.add_argument_group("selection: what is kept (as in tamis select)")
    _score_args(run)
    _select_args(selection)  # listed in --help before the reading, Ray and LP groups
    run.set_defaults(func=_cmd_run)
    # the other commands' modules are light: each loads its heavy dependencies when it runs
    from tamis.cli import clear, eval, experiment, predict_loss, report, train, transfer

    for module in (transfer, predict_loss, clear, train, eval, experiment, report):
        module.add_parser(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
