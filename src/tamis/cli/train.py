"""tamis train: fine-tune a model on instruction data."""

from __future__ import annotations

import argparse
import sys

from tamis.cli.common import add_data_and_out, add_device, add_format, command, from_args
from tamis.engines.train_job import DEFAULT_LR, TARGET_MODEL, TrainJob, train_job
from tamis.model.finetune import METHODS, TRAIN_PRECISIONS, TrainConfig
from tamis.model.render import TEMPLATES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to the ``tamis`` parser."""
    p = command(
        subparsers,
        "train",
        help="fine-tune a (larger) model on DATA: full, LoRA or prompt tuning",
        description="Fine-tune a causal LM on instruction data with the loss on the response "
        "tokens only (the same masking as scoring). Writes DIR/model (loadable by transformers "
        "and by tamis), DIR/train_log.jsonl, DIR/checkpoints, DIR/skipped.jsonl and "
        "DIR/manifest.json.",
    )
    add_data_and_out(p)
    p.add_argument(
        "--model", default=TARGET_MODEL, help="the model to fine-tune: a name, folder or .gguf"
    )
    p.add_argument("--method", choices=METHODS, default="lora", help="what is trained")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (default: full 2e-5, lora 2e-4, prompt-tuning 3e-2)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="records per forward pass")
    p.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step")
    p.add_argument("--warmup-ratio", type=float, default=0.03, help="share of steps warming up")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping")
    p.add_argument("--seed", type=int, default=0, help="data order and initialisation")
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank")
    p.add_argument("--lora-alpha", type=int, default=32, help="LoRA scale numerator")
    p.add_argument("--virtual-tokens", type=int, default=20, help="prompt tuning: prompt length")
    p.add_argument(
        "--save-steps", type=int, default=0, help="checkpoint every N steps (0: every epoch)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--fresh", action="store_true", help="delete earlier checkpoints and start over")
    add_format(p)
    p.add_argument("--template", choices=TEMPLATES, default="auto", help="as for tamis score")
    p.add_argument("--skip-bad", action="store_true", help="set bad records aside (skipped.jsonl)")
    p.add_argument(
        "--max-tokens", type=int, default=1024, help="context limit; longer responses skipped"
    )
    add_device(p)
    p.add_argument(
        "--precision",
        choices=TRAIN_PRECISIONS,
        default="float32",
        help="bfloat16: mixed precision, the forward pass in bfloat16 with float32 weights and "
        "optimizer states; 1.4-2.1x faster on a CPU with avx512_bf16 or AMX, and the usual "
        "choice on a GPU",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_train)
    return p


def _cmd_train(args: argparse.Namespace) -> int:
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.method]
    cfg = from_args(TrainConfig, args, learning_rate=lr, num_virtual_tokens=args.virtual_tokens)
    job = from_args(TrainJob, args, train=cfg)
    manifest = train_job(args.data, args.out, job, progress=not args.quiet)
    if not args.quiet:
        t = manifest["train"]
        print(
            f"trained {manifest['model']['name']} ({args.method}) on {t['records_trained']} "
            f"records, {t['steps']} steps, loss {t['first_loss']:.4f} -> {t['final_loss']:.4f} "
            f"-> {manifest['output']}",
            file=sys.stderr,
        )
    return 0
