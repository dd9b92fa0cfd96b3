"""tamis clear: CLEAR auto-filter and auto-correct."""

from __future__ import annotations

import argparse
import json
import sys

from tamis.clear.confidence import (
    ClearConfig,
)
from tamis.cli.common import (
    CACHE_HELP,
    FRESH_HELP,
    add_data_and_out,
    add_quiet,
    add_ray_args,
    add_reading,
    command,
    from_args,
    ray_options,
)
from tamis.engines.clear_job import ClearJob, clear_job
from tamis.model.loading import DEFAULT_MODEL
from tamis.select.options import parse_keep


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``clear`` subcommand to the ``tamis`` parser."""
    p = command(
        subparsers,
        "clear",
        help="CLEAR: drop low-confidence records, correct the ones the model can fix",
        description="Estimate the model's confidence that each response is good (consistency "
        "with k sampled responses + self-reflection read from logits), drop the least confident "
        "(low_confidence) and replace a dropped record's response with a generated one only "
        "when the model prefers it in both orders and is more confident in it. Writes "
        "corrected.jsonl (the curated data), corrections.jsonl, selected.jsonl, rejected.jsonl, "
        "scores.parquet, manifest.json and report.html.",
    )
    add_data_and_out(p)
    p.add_argument("--model", default=DEFAULT_MODEL, help="the model that samples and judges")
    p.add_argument(
        "--keep",
        default="0.8",
        help="the most confident records kept as they are: a count or a fraction; the rest are "
        "auto-corrected or dropped",
    )
    p.add_argument("--threshold", type=float, default=None, help="also drop confidence below this")
    c = p.add_argument_group("confidence")
    c.add_argument("--samples", type=int, default=3, help="sampled responses k per record")
    c.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    c.add_argument("--max-new-tokens", type=int, default=128, help="tokens per generated answer")
    c.add_argument("--beta", type=float, default=0.7, help="weight of consistency vs reflection")
    c.add_argument(
        "--semantic-weight", type=float, default=0.5, help="MiniLM cosine vs token F1 weight"
    )
    c.add_argument("--seed", type=int, default=0, help="sampling seed")
    a = p.add_argument_group("auto-correct")
    a.add_argument("--no-correct", action="store_true", help="only filter; change no response")
    a.add_argument("--best-of", type=int, default=1, help="1: greedy candidate; n: best of n")
    a.add_argument("--correct-max-new-tokens", type=int, default=256, help="tokens per candidate")
    a.add_argument(
        "--prefer-threshold",
        type=float,
        default=0.6,
        help="replace only when P(candidate better), mean of both orders, is at least this",
    )
    add_reading(p.add_argument_group("how the model reads DATA (the same in every command)"))
    g = p.add_argument_group("running")
    g.add_argument("--cache", default=None, metavar="PATH", help=CACHE_HELP)
    g.add_argument("--fresh", action="store_true", help=FRESH_HELP)
    add_quiet(g)
    add_ray_args(p)
    p.set_defaults(func=_cmd_clear)
    return p


def _cmd_clear(args: argparse.Namespace) -> int:
    cfg = from_args(ClearConfig, args, correct=not args.no_correct)
    job = from_args(ClearJob, args, keep=parse_keep(args.keep), clear=cfg, ray=ray_options(args))
    from tamis.report.build import write_report_after_job

    manifest = clear_job(args.data, args.out, job, progress=not args.quiet)
    write_report_after_job(args.out, args.quiet)  # last: the job's outputs are complete
    if not args.quiet:
        c, s = manifest["counts"], manifest["clear"]
        print(
            f"kept {c['selected']} of {c['input']}, corrected {c['corrected']} "
            f"(of {c['corrections_tried']} tried) -> {args.out / 'corrected.jsonl'}; rejected "
            f"{c['rejected']} {json.dumps(c['rejected_by_reason'])}; "
            f"{s['records_per_minute']:.1f} records/min",
            file=sys.stderr,
        )
    return 0
