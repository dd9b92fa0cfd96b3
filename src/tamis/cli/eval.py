"""tamis eval: a model on held-out instruction data."""

from __future__ import annotations

import argparse
import sys

from tamis.cli.common import add_data_and_out, add_quiet, add_reading, command
from tamis.engines.eval_job import eval_job
from tamis.engines.train_job import TARGET_MODEL


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to the ``tamis`` parser."""
    p = command(
        subparsers,
        "eval",
        help="held-out loss, ROUGE-L / exact match, and judged preference of a model",
        description="Evaluate --model on the held-out records of DATA: response loss and "
        "perplexity, greedy answers scored by ROUGE-L and exact match against the references, "
        "and optionally the preference of a judge model between its answers and another "
        "model's. Writes DIR/eval.json and DIR/eval_records.jsonl.",
    )
    add_data_and_out(p, "held-out instruction data: a path or URL, as for tamis score")
    p.add_argument(
        "--model",
        default=TARGET_MODEL,
        help="the model to evaluate: a name, a folder (e.g. DIR/model of tamis train) or .gguf",
    )
    p.add_argument("--no-generate", dest="generate", action="store_false", help="loss only")
    p.add_argument("--max-new-tokens", type=int, default=128, help="tokens per generated answer")
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
    add_reading(p.add_argument_group("how the model reads DATA (the same in every command)"))
    add_quiet(p)
    p.set_defaults(func=_cmd_eval)
    return p


def _cmd_eval(args: argparse.Namespace) -> int:
    opts = {
        k: getattr(args, k)
        for k in (
            "generate", "max_new_tokens", "generate_limit", "short_words", "against", "judge",
            "format", "fields", "template", "skip_bad", "max_tokens", "batch_size", "device",
            "precision", "quiet",
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
    from tamis.report.build import write_report_after_job

    write_report_after_job(args.out, args.quiet)  # last: the job's outputs are complete
    return 0
