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
    max_tokens: int = 1024
    resume: bool = False
    fresh: bool = False
    train: TrainConfig = field(default_factory=lambda: TrainConfig(method="lora", epochs=1))


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
        "model": model_info(lm, template),
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
