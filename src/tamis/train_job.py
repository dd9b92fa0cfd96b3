"""``tamis train DATA --model NAME -o DIR``: fine-tune a causal LM on (selected) instruction data.

The records are encoded by :func:`tamis.render.encode`, the masking every score uses, so the
loss is on the response tokens only. Training is :func:`tamis.train.train_model` (the Hugging
Face ``Trainer``: AdamW, warm-up + cosine schedule, gradient accumulation and clipping, seed).

The folder gets:

- ``model/``: the trained model, loadable by ``transformers`` and by tamis (``--model DIR/model``).
  Full fine-tuning saves the weights; LoRA saves the adapters merged into the weights (and the
  adapters alone in ``adapter/``); prompt tuning saves the soft prompt as a PEFT adapter whose
  ``base_model_name_or_path`` is the base model's folder (``peft.AutoPeftModelForCausalLM``;
  tamis loads such adapter folders itself, see :func:`tamis.models.load_model`).
- ``train_log.jsonl``: one line per optimizer step (loss, learning rate, grad norm, tokens/s);
- ``checkpoints/``: safetensors checkpoints, per epoch or every ``--save-steps``; ``--resume``
  continues from the newest with the same result as an uninterrupted run;
- ``skipped.jsonl``: records not trained on (too long for ``--max-tokens``, or bad with
  ``--skip-bad``), with their reason; ``manifest.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tamis import __version__
from tamis.errors import TamisError
from tamis.files import write_json, write_jsonl
from tamis.records import FORMATS
from tamis.remote import data_arg
from tamis.render import TEMPLATES, resolve_template
from tamis.train import METHODS, TRAIN_PRECISIONS, TrainConfig

TARGET_MODEL = "gemma3-270m"
# Learning rates usual for each method at this scale (full: Alpaca's 2e-5; LoRA: 2e-4, Hu et al.
# 2021 and the PEFT examples; prompt tuning: 3e-2, PEFT's prompt-tuning example; Lester et al.
# 2021 used 0.3 with Adafactor).
DEFAULT_LR = {"full": 2e-5, "lora": 2e-4, "prompt-tuning": 3e-2}


@dataclass
class TrainJob:
    model: str = TARGET_MODEL
    format: str | None = None
    skip_bad: bool = False
    template: str = "auto"
    max_tokens: int = 1024
    device: str = "cpu"
    resume: bool = False
    fresh: bool = False
    train: TrainConfig = field(default_factory=lambda: TrainConfig(method="lora", epochs=1))


def train_job(data_path: str | Path, out_dir: str | Path, job: TrainJob, progress: bool = True):
    """Fine-tune ``job.model`` on ``data_path`` into ``out_dir``; returns the manifest."""
    from tamis.jobs import input_info, model_info, versions
    from tamis.models import load_model
    from tamis.readers import read_dataset
    from tamis.score import encode_dataset
    from tamis.train import prepare_model, train_model

    start = time.perf_counter()
    out_dir = Path(out_dir)
    cfg = job.train
    cfg.check()
    ckpt_dir = out_dir / "checkpoints"
    if job.fresh:
        for path in (ckpt_dir, out_dir / "model", out_dir / "adapter", out_dir / "train_log.jsonl"):
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    elif not job.resume and any(ckpt_dir.glob("checkpoint-*")):
        raise TamisError(
            f"{ckpt_dir} holds checkpoints of an earlier run; pass --resume to continue it or "
            "--fresh to start over"
        )
    data = read_dataset(data_path, job.format, job.skip_bad)
    lm = load_model(job.model, job.device)
    template = resolve_template(job.template, lm.tokenizer)
    encoded, rows = encode_dataset(data, lm.tokenizer, template, job.max_tokens)
    if not encoded:
        raise TamisError(f"{data_path}: no record fits --max-tokens {job.max_tokens}; raise it")
    skipped = [r for r in rows.values() if r["status"] != "ok"]
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = ("index", "id", "status", "detail")
    write_jsonl(out_dir / "skipped.jsonl", ({k: r[k] for k in fields} for r in skipped))
    base_folder = getattr(lm.model.config, "_name_or_path", "")
    model = prepare_model(lm.model, cfg)
    model.train()
    metrics = train_model(
        model, lm.tokenizer, [encoded[i] for i in sorted(encoded)], cfg, ckpt_dir,
        out_dir / "train_log.jsonl", job.resume, progress,
    )  # fmt: skip
    _save_final(model, lm.tokenizer, cfg.method, out_dir, base_folder)
    log = [json.loads(line) for line in (out_dir / "train_log.jsonl").read_text().splitlines()]
    tokens = sum(row["tokens"] for row in log)
    manifest = {
        "tamis_version": __version__,
        "input": input_info(data_path, data),
        "model": {**model_info(lm), "template": template},
        "train": {
            "config": {**asdict(job), "template": template},
            "records_trained": len(encoded),
            "skipped_by_reason": dict(Counter(r["status"] for r in skipped)),
            "steps": len(log),
            "tokens": tokens,
            "first_loss": log[0]["loss"] if log else None,
            "final_loss": log[-1]["loss"] if log else None,
            "trainer_metrics": metrics,
            "wall_s": time.perf_counter() - start,
        },
        "output": str(out_dir / "model"),
        "versions": versions(("peft", "accelerate")),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def _save_final(model, tokenizer, method: str, out_dir: Path, base_folder: str) -> None:
    final = out_dir / "model"
    if final.exists():
        shutil.rmtree(final)
    if method == "lora":
        model.save_pretrained(out_dir / "adapter", safe_serialization=True)
        model = model.merge_and_unload()
    if method == "prompt-tuning":
        model.peft_config["default"].base_model_name_or_path = base_folder
    model.save_pretrained(final, safe_serialization=True)
    tokenizer.save_pretrained(final)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to the ``tamis`` parser."""
    from tamis.cli import HelpFormatter

    p = subparsers.add_parser(
        "train",
        help="fine-tune a (larger) model on DATA: full, LoRA or prompt tuning",
        description="Fine-tune a causal LM on instruction data with the loss on the response "
        "tokens only (the same masking as scoring). Writes DIR/model (loadable by transformers "
        "and by tamis), DIR/train_log.jsonl, DIR/checkpoints, DIR/skipped.jsonl and "
        "DIR/manifest.json.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "data", metavar="DATA", type=data_arg, help="instruction data, as for tamis score"
    )
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output folder")
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
    p.add_argument("--format", choices=FORMATS, default=None, help="as for tamis score")
    p.add_argument("--template", choices=TEMPLATES, default="auto", help="as for tamis score")
    p.add_argument("--skip-bad", action="store_true", help="set bad records aside (skipped.jsonl)")
    p.add_argument(
        "--max-tokens", type=int, default=1024, help="context limit; longer responses skipped"
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda")
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
    cfg = TrainConfig(
        method=args.method,
        epochs=args.epochs,
        learning_rate=args.lr if args.lr is not None else DEFAULT_LR[args.method],
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        num_virtual_tokens=args.virtual_tokens,
        save_steps=args.save_steps,
        precision=args.precision,
    )
    job = TrainJob(
        model=args.model,
        format=args.format,
        skip_bad=args.skip_bad,
        template=args.template,
        max_tokens=args.max_tokens,
        device=args.device,
        resume=args.resume,
        fresh=args.fresh,
        train=cfg,
    )
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
