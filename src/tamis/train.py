"""Fine-tune a causal LM on encoded records: the project's one training module.

Built on the Hugging Face ``Trainer`` (AdamW, warm-up + cosine schedule, gradient accumulation,
gradient clipping, seeded data order, safetensors checkpoints, exact resume). Batches come from
:func:`tamis.render.encode`, the same masking as scoring, so the loss is on response tokens only.

:func:`train_by_epoch` trains one epoch at a time, checkpointing after each, and hands the model
to a callback between epochs: learning percentage scores every record after every epoch, and a
killed run resumes from the last finished epoch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tamis.errors import TamisError
from tamis.render import IGNORE, Encoded

METHODS = ("full", "lora")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; defaults follow Mekala et al. 2024 (3 epochs, lr 2e-5, full)."""

    method: str = "full"
    epochs: int = 3
    learning_rate: float = 2e-5
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    # Batches of records of similar length (shuffled megabatches, HF LengthGroupedSampler):
    # far less padding than uniform random batches when lengths vary as they do in Alpaca.
    group_by_length: bool = True

    def check(self) -> None:
        if self.method not in METHODS:
            raise TamisError(
                f"unknown training method '{self.method}'; choose one of: {', '.join(METHODS)}"
            )
        for name in ("epochs", "batch_size", "grad_accum", "lora_r"):
            if getattr(self, name) < 1:
                raise TamisError(
                    f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if not self.learning_rate > 0:
            raise TamisError(f"learning rate must be positive, got {self.learning_rate}")

    def digest(self) -> str:
        """A short hash of every hyper-parameter: names checkpoints and cache entries."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


class Collator:
    """Pads ``input_ids`` (pad id) and ``labels`` (-100) on the right; builds the attention mask."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(i["input_ids"]) for i in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            ids[row, :n] = torch.tensor(item["input_ids"])
            labels[row, :n] = torch.tensor(item["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def prepare_model(model, cfg: TrainConfig):
    """The model to train: itself for ``full``, wrapped with LoRA adapters (peft) for ``lora``."""
    if cfg.method == "full":
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise TamisError("--method lora needs peft: pip install 'tamis[train]'") from None
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def train_by_epoch(
    model,
    tokenizer,
    encoded: list[Encoded],
    cfg: TrainConfig,
    out_dir: Path,
    after_epoch: Callable[[int, Any], None],
    progress: bool = True,
) -> Any:
    """Train ``model`` (already :func:`prepare_model`-ed) for ``cfg.epochs`` epochs on ``encoded``.

    After epoch ``e`` is checkpointed under ``out_dir``, ``after_epoch(e, model)`` runs with the
    model in eval mode. On a re-run the last checkpoint is restored, ``after_epoch`` is called
    again for that epoch (it must be idempotent: scoring uses the cache), and training goes on.
    """
    cfg.check()
    trainer = _trainer(model, tokenizer, encoded, cfg, out_dir, progress)
    last, done = _last_checkpoint(out_dir)
    if last is not None:
        _load_weights(model, last)
        _eval(model, lambda: after_epoch(done, model))
    for epoch in range(done + 1, cfg.epochs + 1):
        trainer.train(resume_from_checkpoint=str(last) if last else None)
        last, done = _last_checkpoint(out_dir)
        if done != epoch:
            raise RuntimeError(
                f"internal error: expected a checkpoint for epoch {epoch}, found {done}"
            )
        _eval(model, lambda e=epoch: after_epoch(e, model))
    return trainer


def _eval(model, fn: Callable[[], None]) -> None:
    model.eval()
    try:
        fn()
    finally:
        model.train()


def _trainer(model, tokenizer, encoded, cfg: TrainConfig, out_dir: Path, progress: bool):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class StopAtEpochEnd(TrainerCallback):
        # Trainer saves at the end of the epoch (save_strategy="epoch") and then stops, so each
        # train() call runs exactly one epoch and the caller can work between epochs.
        def on_epoch_end(self, args, state, control, **kwargs):
            control.should_training_stop = True
            return control

    args = TrainingArguments(
        output_dir=str(out_dir),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of all steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        data_seed=cfg.seed,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        save_strategy="epoch",
        save_total_limit=1,
        logging_steps=1,
        report_to=[],
        use_cpu=not _on_cuda(model),
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not progress,
    )
    rows = [{"input_ids": list(e.input_ids), "labels": e.labels} for e in encoded]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=Collator(pad),
        callbacks=[StopAtEpochEnd()],
    )


def _on_cuda(model) -> bool:
    return next(model.parameters()).device.type == "cuda"


def _last_checkpoint(out_dir: Path) -> tuple[Path | None, int]:
    """The newest complete checkpoint and the epoch it ends (0 when there is none)."""
    from transformers.trainer_utils import get_last_checkpoint

    if not out_dir.is_dir():
        return None, 0
    last = get_last_checkpoint(str(out_dir))
    if last is None:
        return None, 0
    state = json.loads((Path(last) / "trainer_state.json").read_text())
    return Path(last), int(round(state["epoch"]))


def _load_weights(model, checkpoint: Path) -> None:
    from safetensors.torch import load_file

    adapter = checkpoint / "adapter_model.safetensors"
    if adapter.is_file():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(adapter))
        return
    weights = checkpoint / "model.safetensors"
    if not weights.is_file():
        raise TamisError(f"{checkpoint}: no safetensors weights; delete the folder to start over")
    missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
    # Tied output embeddings are saved once; anything else missing means a broken checkpoint.
    if unexpected or any("lm_head" not in k for k in missing):
        raise TamisError(
            f"{checkpoint}: weights do not match the model; delete the folder to start over"
        )


def clear_checkpoints(out_dir: Path) -> None:
    for path in out_dir.glob("checkpoint-*"):
        shutil.rmtree(path)
