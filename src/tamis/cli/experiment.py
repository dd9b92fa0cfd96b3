"""tamis experiment: selection arms against full data and random subsets, from a config."""

from __future__ import annotations

from pathlib import Path

from tamis.cli.common import add_out, add_quiet, command
from tamis.engines.experiment import run_experiment
from tamis.engines.experiment_results import table


def add_parser(subparsers) -> None:
    """Add the ``experiment`` subcommand to the ``tamis`` parser."""
    import argparse

    p = command(
        subparsers,
        "experiment",
        help="train and evaluate the target on full data, random and selected subsets",
        description="Run the arms of CONFIG.yaml (see configs/ and the guide): full data, random "
        "subsets, and the top budget by each scorer (optionally the lowest) or the selections "
        "named in 'arms:', at an equal budget of records or training tokens; each trained with "
        "the same settings for every seed and evaluated on the same held-out test set. Resumes "
        "arm by arm. An evaluated run's model is deleted unless the config says keep_models: "
        "true. Writes results.json, results.md, loss_curves.png, metrics.png and "
        "report.html.",
    )
    p.add_argument("config", metavar="CONFIG", type=Path, help="experiment configuration (YAML)")
    p.add_argument(
        "--prepare",
        action="store_true",
        help="only write the pool, the test set and the small model's scores (data/, scores/) "
        "and stop: the arms train later from this folder, e.g. on a GPU machine "
        "(scripts/device_pack.py)",
    )
    add_out(p)
    add_quiet(p)

    def run(args: argparse.Namespace) -> int:
        import sys

        from tamis.report.build import write_report_after_job

        results = run_experiment(args.config, args.out, not args.quiet, args.prepare)
        if results is None:
            if not args.quiet:
                print(f"{args.out}: data/ and scores/ written; run again without --prepare "
                      "to train and evaluate the arms", file=sys.stderr)  # fmt: skip
            return 0
        write_report_after_job(args.out, args.quiet)  # last: results and plots are complete
        if not args.quiet:
            print(table(results), file=sys.stderr)
        return 0

    p.set_defaults(func=run)
