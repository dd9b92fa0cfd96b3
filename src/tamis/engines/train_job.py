"""``tamis train DATA --model NAME -o DIR``: fine-tune a causal LM on (selected) instruction data.

The records are encoded by :func:`tamis.model.render.encode`, the masking every score uses, so the
loss is on the response tokens only. Training is :func:`tamis.model.finetune.train_model` (the
Hugging Face ``Trainer``: AdamW, warm-up + cosine schedule, gradient accumulation and clipping,
seed).

The folder gets:

- ``model/``: the trained model, loadable by ``transformers`` and by tamis (``--model DIR/model``).
  Full fine-tuning saves the weights; LoRA saves the adapters merged into the weights (and the
  adapters alone in ``adapter/``); prompt tuning saves the soft prompt as a PEFT adapter whose
  ``base_model_name_or_path`` is the base model's folder (``peft.AutoPeftModelForCausalLM``;
  tamis loads such adapter folders itself, see :func:`tamis.model.loading.load_model`).
- ``train_log.jsonl``: one line per optimizer step (loss, learning rate, grad norm, tokens/s);
- ``eval_log.jsonl`` (with ``--eval-data``): the response loss of the held-out records before
  training, every ``--eval-steps`` steps (default: each epoch's end) and at the end;
- ``checkpoints/``: safetensors checkpoints, per epoch or every ``--save-steps``; ``--resume``
  continues from the newest with the same result as an uninterrupted run;
- ``skipped.jsonl``: records not trained on (too long for ``--max-tokens``, or bad with
  ``--skip-bad``), with their reason; ``manifest.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tamis.base.errors import TamisError
from tamis.base.files import write_json, write_jsonl
from tamis.base.version import __version__
from tamis.engines.options import ModelOptions
from tamis.model.finetune import TrainConfig
from tamis.model.render import resolve_template

TARGET_MODEL = "gemma3-270m"
# Learning rates usual for each method at this scale (full: Alpaca's 2e-5; LoRA: 2e-4, Hu et al.
# 2021 and the PEFT examples; prompt tuning: 3e-2, PEFT's prompt-tuning example; Lester et al.
# 2021 used 0.3 with Adafactor).
DEFAULT_LR = {"full": 2e-5, "lora": 2e-4, "prompt-tuning": 3e-2}


@dataclass
class TrainJob(ModelOptions):
    """``tamis train``: the shared options of :mod:`tamis.engines.options`, and these."""

    model: str = TARGET_MODEL
    resume: bool = False
    fresh: bool = False
    eval_data: str | None = None  # held-out records: their response loss during training
    eval_steps: int = 0  # evaluate every N steps (0: at each epoch's end)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(method="lora", epochs=1))


# The first and last losses in the summary are means over this share of the steps (at least one
# step, at most SMOOTH_MAX): one batch's loss says little, and the first step's is the untrained
# model's on whatever batch came first.
SMOOTH_SHARE, SMOOTH_MAX = 0.1, 50


def train_job(data_path: str | Path, out_dir: str | Path, job: TrainJob, progress: bool = True):
    """Fine-tune ``job.model`` on ``data_path`` into ``out_dir``; returns the manifest."""
    from tamis.data.readers import read_dataset
    from tamis.engines.manifest import input_info, model_info, versions
    from tamis.model.finetune import prepare_model, train_model
    from tamis.model.loading import load_model
    from tamis.scorers.score import encode_dataset

    start = time.perf_counter()
    out_dir = Path(out_dir)
    cfg = job.train
    cfg.check()
    ckpt_dir = out_dir / "checkpoints"
    if job.eval_steps < 0:
        raise TamisError(f"--eval-steps {job.eval_steps}: must be 0 (each epoch's end) or more")
    outputs = ("model", "adapter", "manifest.json", "train_log.jsonl", "eval_log.jsonl")
    if job.fresh:
        for path in (ckpt_dir, *(out_dir / name for name in outputs)):
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    elif not job.resume and (out_dir / "manifest.json").is_file():
        raise TamisError(
            f"{out_dir} holds a finished training run (manifest.json, model/); pass --fresh to "
            "train again from the start into it, or give another -o"
        )
    elif not job.resume and any(ckpt_dir.glob("checkpoint-*")):
        raise TamisError(
            f"{ckpt_dir} holds checkpoints of an earlier run; pass --resume to continue it or "
            "--fresh to start over"
        )
    data = read_dataset(data_path, job.format, job.skip_bad, fields=job.fields)
    held = None
    if job.eval_data:
        held = read_dataset(job.eval_data, job.format, job.skip_bad, fields=job.fields)
    lm = load_model(job.model, job.device)
    template = resolve_template(job.template, lm.tokenizer)
    encoded, rows = encode_dataset(data, lm.tokenizer, template, job.max_tokens)
    if not encoded:
        raise TamisError(f"{data_path}: no record fits --max-tokens {job.max_tokens}; raise it")
    held_out, held_rows = {}, {}
    if held is not None:
        held_out, held_rows = encode_dataset(held, lm.tokenizer, template, job.max_tokens)
        if not held_out:
            raise TamisError(f"{job.eval_data}: no record fits --max-tokens {job.max_tokens}")
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
        [held_out[i] for i in sorted(held_out)], job.eval_steps, out_dir / "eval_log.jsonl",
    )  # fmt: skip
    _save_final(model, lm.tokenizer, cfg, out_dir, base_folder)
    log = read_log(out_dir / "train_log.jsonl")
    tokens = sum(row["tokens"] for row in log)
    first, last, window = smoothed(log)
    manifest = {
        "tamis_version": __version__,
        "input": input_info(data_path, data),
        "model": model_info(lm, template),
        "train": {
            "config": {**asdict(job), "template": template},
            "records_trained": len(encoded),
            "skipped_by_reason": dict(Counter(r["status"] for r in skipped)),
            "steps": len(log),
            "tokens": tokens,
            "first_loss": first,  # mean of the first `loss_window` steps
            "final_loss": last,  # mean of the last `loss_window` steps
            "loss_window": window,
            "held_out": _held_out_info(job, held, held_rows, out_dir / "eval_log.jsonl"),
            "saved_as": "bfloat16" if cfg.precision == "bfloat16" else "float32",
            "trainer_metrics": metrics,
            "wall_s": time.perf_counter() - start,
        },
        "output": str(out_dir / "model"),
        "versions": versions(("peft", "accelerate")),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def smoothed(log: list[dict]) -> tuple[float | None, float | None, int]:
    """The mean loss of the first and of the last steps of ``log``, and how many steps each mean
    takes (:data:`SMOOTH_SHARE` of them, at least 1, at most :data:`SMOOTH_MAX`)."""
    if not log:
        return None, None, 0
    k = min(SMOOTH_MAX, max(1, round(SMOOTH_SHARE * len(log))))
    losses = [row["loss"] for row in log]
    return sum(losses[:k]) / k, sum(losses[-k:]) / k, k


def _held_out_info(job: TrainJob, held, rows: dict, log_path: Path) -> dict | None:
    if held is None:
        return None
    from tamis.engines.manifest import input_info

    log = read_log(log_path)
    return {
        "input": input_info(job.eval_data, held),
        "records": sum(r["status"] == "ok" for r in rows.values()),
        "not_scored": dict(Counter(r["status"] for r in rows.values() if r["status"] != "ok")),
        "eval_steps": job.eval_steps,
        "first_loss": log[0]["loss"] if log else None,  # before training (step 0)
        "final_loss": log[-1]["loss"] if log else None,
        "best": min(log, key=lambda row: row["loss"]) if log else None,
        "log": str(log_path),
    }


def _save_final(model, tokenizer, cfg: TrainConfig, out_dir: Path, base_folder: str) -> None:
    """The trained model under ``out_dir/model``, in the precision it was trained in: mixed
    precision (bfloat16) computed in bfloat16, so its weights are saved so (half the size)."""
    from tamis.model.finetune import quiet_saves

    with quiet_saves():  # a bar for writing one file tells the user nothing
        _save(model, tokenizer, cfg, out_dir, base_folder)


def _save(model, tokenizer, cfg: TrainConfig, out_dir: Path, base_folder: str) -> None:
    import torch

    final = out_dir / "model"
    if final.exists():
        shutil.rmtree(final)
    if cfg.method == "lora":
        model.save_pretrained(out_dir / "adapter", safe_serialization=True)
        model = model.merge_and_unload()
    if cfg.method == "prompt-tuning":
        model.peft_config["default"].base_model_name_or_path = base_folder
    if cfg.precision == "bfloat16" and cfg.method != "prompt-tuning":
        model = model.to(torch.bfloat16)
    model.save_pretrained(final, safe_serialization=True)
    tokenizer.save_pretrained(final)
