"""tamis eval: a model on held-out instruction data."""

from __future__ import annotations

import argparse
import sys

from tamis.cli.common import add_device, add_format, add_out, command
from tamis.data.remote import data_arg
from tamis.engines.eval_job import eval_job
from tamis.model.render import TEMPLATES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to the ``tamis`` parser."""
    p = command(
        subparsers,
        "eval",
        help="held-out loss, ROUGE-L / exact match, and judged preference of a model",
        description="Evaluate MODEL on held-out records: response loss and perplexity, greedy "
        "answers scored by ROUGE-L and exact match against the references, and optionally "
        "the preference of a judge model between MODEL's and another model's answers. Writes "
        "DIR/eval.json and DIR/eval_records.jsonl.",
    )
    p.add_argument("model", metavar="MODEL", help="a model name, folder (e.g. DIR/model) or .gguf")
    p.add_argument(
        "--data", required=True, type=data_arg, help="held-out instruction data: a path or URL"
    )
    add_out(p)
    p.add_argument("--no-generate", dest="generate", action="store_false", help="loss only")
    p.add_argument("--max-new-tokens", type=int, default=128, help="tokens per greedy answer")
    p.add_argument(
        "--generate-limit",
        type=int,
        default=None,
        metavar="N",
        help="greedy answers for the first N scored records only (loss is always on all)",
    )
    p.add_argument(
        "--short-words", type=int, default=5, help="exact match on references of at most N words"
    )
    p.add_argument("--against", default=None, metavar="MODEL_B", help="compare with this model")
    p.add_argument("--judge", default=None, metavar="JUDGE", help="the model that compares")
    add_format(p)
    p.add_argument(
        "--template", choices=TEMPLATES, default="auto", help="as in training (tamis train)"
    )
    p.add_argument("--skip-bad", action="store_true", help="leave out bad records")
    p.add_argument("--max-tokens", type=int, default=1024, help="context limit")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per batch")
    add_device(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_eval)
    return p


def _cmd_eval(args: argparse.Namespace) -> int:
    opts = {
        k: getattr(args, k)
        for k in (
            "generate", "max_new_tokens", "generate_limit", "short_words", "against", "judge",
            "format", "template", "skip_bad", "max_tokens", "batch_size", "device", "quiet",
        )
    }  # fmt: skip
    r = eval_job(args.model, args.data, args.out, opts)
    if not args.quiet:
        parts = [f"loss {r['loss']:.4f}", f"perplexity {r['perplexity']:.3f}"]
        if "rouge_l" in r:
            parts.append(f"ROUGE-L {r['rouge_l']:.4f}")
            if r["exact_match"] is not None:
                parts.append(f"exact match {r['exact_match']:.3f} (n={r['exact_match_records']})")
            parts.append(f"junk-flagged answers {r['junk_flagged']:.3f}")
        if "preference" in r:
            parts.append(f"preferred over {r['against']} {r['preference']:.3f}")
        print(f"{r['records']} records: " + ", ".join(parts) + f" -> {args.out}", file=sys.stderr)
    return 0
