"""tamis train: fine-tune a model on instruction data."""

from __future__ import annotations

import argparse
import sys

from tamis.cli.common import (
    FRESH_HELP,
    add_data_and_out,
    add_quiet,
    add_reading,
    command,
    from_args,
)
from tamis.data.remote import data_arg
from tamis.engines.train_job import DEFAULT_LR, TARGET_MODEL, TrainJob, train_job
from tamis.model.finetune import ALL_LINEAR, METHODS, TrainConfig
from tamis.model.loading import resolve_precision


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to the ``tamis`` parser."""
    p = command(
        subparsers,
        "train",
        help="fine-tune a (larger) model on DATA: full, LoRA or prompt tuning",
        description="Fine-tune a causal LM on instruction data with the loss on the response "
        "tokens only (the same masking as scoring). Writes DIR/model (loadable by transformers "
        "and by tamis), DIR/train_log.jsonl, DIR/eval_log.jsonl (with --eval-data), "
        "DIR/checkpoints, DIR/skipped.jsonl and DIR/manifest.json.",
    )
    add_data_and_out(p)
    p.add_argument(
        "--model", default=TARGET_MODEL, help="the model to fine-tune: a name, folder or .gguf"
    )
    p.add_argument("--method", choices=METHODS, default="lora", help="what is trained")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data")
    p.add_argument(
        "--max-steps",
        type=int,
        default=0,
        metavar="N",
        help="stop after N optimizer steps, the schedule fitted to them (0: every epoch)",
    )
    p.add_argument(
        "--eval-data",
        type=data_arg,
        default=None,
        metavar="FILE",
        help="held-out records: their response loss before training, every --eval-steps and at "
        "the end (DIR/eval_log.jsonl, the summary and the report)",
    )
    p.add_argument("--eval-steps", type=int, default=0, metavar="N", help="0: at each epoch's end")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (default: full 2e-5, lora 2e-4, prompt-tuning 3e-2)",
    )
    p.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step")
    p.add_argument("--warmup-ratio", type=float, default=0.03, help="share of steps warming up")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping")
    p.add_argument("--seed", type=int, default=0, help="data order and initialisation")
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank")
    p.add_argument("--lora-alpha", type=int, default=32, help="LoRA scale numerator")
    p.add_argument("--lora-dropout", type=float, default=0.0, help="LoRA dropout")
    p.add_argument(
        "--lora-targets",
        default=ALL_LINEAR,
        metavar="NAMES",
        help="modules given LoRA adapters: comma-separated names (q_proj,v_proj) or all-linear "
        "(every linear layer but the output head)",
    )
    p.add_argument("--virtual-tokens", type=int, default=20, help="prompt tuning: prompt length")
    p.add_argument(
        "--save-steps", type=int, default=0, help="checkpoint every N steps (0: every epoch)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--fresh", action="store_true", help=FRESH_HELP)
    add_reading(p.add_argument_group("how the model reads DATA (the same in every command)"))
    add_quiet(p)
    p.set_defaults(func=_cmd_train)
    return p


def _cmd_train(args: argparse.Namespace) -> int:
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.method]
    cfg = from_args(
        TrainConfig, args, learning_rate=lr, num_virtual_tokens=args.virtual_tokens,
        precision=resolve_precision(args.precision, args.device),
    )  # fmt: skip
    job = from_args(TrainJob, args, train=cfg)
    manifest = train_job(args.data, args.out, job, progress=not args.quiet)
    if not args.quiet:
        print(summary(manifest), file=sys.stderr)
    from tamis.report.build import write_report_after_job

    write_report_after_job(args.out, args.quiet)  # last: the job's outputs are complete
    return 0


def summary(manifest: dict) -> str:
    """``trained M (lora) on N records, S steps: loss a -> b (...); held-out loss c -> d``."""
    t = manifest["train"]
    k = t["loss_window"]
    means = "first and last step" if k == 1 else f"means of the first and last {k} steps"
    line = (
        f"trained {manifest['model']['name']} ({t['config']['train']['method']}) on "
        f"{t['records_trained']} records, {t['steps']} steps: loss {t['first_loss']:.4f} -> "
        f"{t['final_loss']:.4f} ({means})"
    )
    held = t.get("held_out")
    if held and held["first_loss"] is not None:
        line += (
            f"; held-out loss {held['first_loss']:.4f} -> {held['final_loss']:.4f} "
            f"({held['records']} records, before and after training)"
        )
    return f"{line} -> {manifest['output']}"
