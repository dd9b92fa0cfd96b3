"""Fine-tune a causal LM on encoded records: the project's one training module.

Built on the Hugging Face ``Trainer`` (AdamW, warm-up + cosine schedule, gradient accumulation,
gradient clipping, seeded data order, safetensors checkpoints, exact resume). Batches come from
:func:`tamis.model.render.encode`, the same masking as scoring, so the loss is on response tokens
only.

:func:`train_by_epoch` trains one epoch at a time, checkpointing after each, and hands the model
to a callback between epochs: learning percentage scores every record after every epoch, and a
killed run resumes from the last finished epoch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.model.checkpoints import (
    checkpoint_step,
    last_checkpoint,
    load_weights,
    newest_checkpoint,
    step_log,
    truncate_log,
)
from tamis.model.loading import peft_quietly
from tamis.model.render import IGNORE, Encoded

METHODS = ("full", "lora", "prompt-tuning")
# Learning percentage scores the trained model with the runner, which reads the decoder directly:
# a soft prompt (prompt tuning) lives outside it, so LP takes full or LoRA only.
LP_METHODS = ("full", "lora")
# Mixed precision: float32 weights and optimizer states, the forward pass (and so the backward's
# matrix multiplies) autocast to bfloat16: 1.4-2.1x faster training steps on a CPU with avx512_bf16
# (benchmarks/train_throughput.py).
TRAIN_PRECISIONS = ("float32", "bfloat16")
# Fields added after runs were already keyed by digest(): left out of the digest while they hold
# their default, so earlier checkpoints and cache entries stay valid.
_LATER_FIELDS = {"num_virtual_tokens": 20, "save_steps": 0, "precision": "float32"}


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
    num_virtual_tokens: int = 20  # prompt tuning: length of the trained soft prompt
    save_steps: int = 0  # tamis train: also checkpoint every N optimizer steps (0: per epoch only)
    precision: str = "float32"  # bfloat16: mixed precision (see TRAIN_PRECISIONS)

    def check(self) -> None:
        if self.method not in METHODS:
            raise TamisError(
                f"unknown training method '{self.method}'; choose one of: {', '.join(METHODS)}"
            )
        for name in ("epochs", "batch_size", "grad_accum", "lora_r", "num_virtual_tokens"):
            if getattr(self, name) < 1:
                raise TamisError(
                    f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if not self.learning_rate > 0:
            raise TamisError(f"learning rate must be positive, got {self.learning_rate}")
        if self.precision not in TRAIN_PRECISIONS:
            raise TamisError(
                f"unknown training precision '{self.precision}'; choose one of: "
                f"{', '.join(TRAIN_PRECISIONS)}"
            )
        if self.save_steps < 0:
            raise TamisError(f"save-steps must be 0 (per epoch) or more, got {self.save_steps}")

    def digest(self) -> str:
        """A short hash of every hyper-parameter: names checkpoints and cache entries."""
        fields = {
            k: v
            for k, v in asdict(self).items()
            if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


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
    """The model to train: itself for ``full``; for ``lora``, wrapped with LoRA adapters on every
    linear layer (peft); for ``prompt-tuning``, a trained soft prompt of ``num_virtual_tokens``
    embeddings before every input, initialised from the vocabulary (peft). Only the adapters or
    the soft prompt are trainable then."""
    if cfg.method == "full":
        return model
    from transformers import set_seed

    set_seed(cfg.seed)  # adapter and soft-prompt initialisation are random
    try:
        from peft import LoraConfig, PromptTuningConfig, get_peft_model
    except ImportError:
        raise TamisError(f"--method {cfg.method} needs peft: pip install 'tamis[train]'") from None
    if cfg.method == "prompt-tuning":
        from peft import PromptTuningInit

        # Started from the embeddings of sampled vocabulary tokens, which Lester et al. (2021)
        # found to work better than random vectors.
        soft = PromptTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=cfg.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
        )
        with peft_quietly():
            return get_peft_model(model, soft)
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    with peft_quietly():
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
    last, done = last_checkpoint(out_dir)
    if last is not None:
        load_weights(model, last)
        _eval(model, lambda: after_epoch(done, model))
    for epoch in range(done + 1, cfg.epochs + 1):
        trainer.train(resume_from_checkpoint=str(last) if last else None)
        last, done = last_checkpoint(out_dir)
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


def train_model(
    model,
    tokenizer,
    encoded: list[Encoded],
    cfg: TrainConfig,
    out_dir: Path,
    log_path: Path,
    resume: bool,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` (already :func:`prepare_model`-ed) for ``cfg.epochs`` on ``encoded``.

    Checkpoints (safetensors, with optimizer, scheduler and RNG states) go under ``out_dir`` after
    every epoch, and every ``cfg.save_steps`` steps when set. ``resume`` continues from the newest
    one, with the same data order, so the result equals an uninterrupted run's. Every optimizer
    step appends ``{step, epoch, loss, learning_rate, grad_norm, tokens, tokens_per_s}`` to
    ``log_path`` (JSON Lines); a resumed run first drops the lines after its checkpoint.
    Returns the Trainer's final metrics.
    """
    cfg.check()
    last = newest_checkpoint(out_dir) if resume else None
    start_step = checkpoint_step(last) if last else 0
    truncate_log(log_path, start_step)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = step_log(log_path, progress)
    trainer = _trainer(model, tokenizer, encoded, cfg, out_dir, False, [log], stop_each_epoch=False)
    log.trainer = trainer
    result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    return dict(result.metrics)


def _trainer(
    model,
    tokenizer,
    encoded,
    cfg: TrainConfig,
    out_dir: Path,
    progress: bool,
    callbacks=(),
    stop_each_epoch: bool = True,
):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class StopAtEpochEnd(TrainerCallback):
        # Trainer saves at the end of the epoch (save_strategy="epoch") and then stops, so each
        # train() call runs exactly one epoch and the caller can work between epochs.
        def on_epoch_end(self, args, state, control, **kwargs):
            control.should_training_stop = True
            return control

    class CountingTrainer(Trainer):
        # Counts the real (unpadded) tokens of every batch trained on, for tokens per second.
        tokens = 0
        # compute_loss divides by the label tokens of the whole accumulated batch, as the
        # Trainer's own loss does when it is given num_items_in_batch.
        loss_is_scaled_for_ga = True

        def training_step(self, model, inputs, *args, **kwargs):
            self.tokens += int(inputs["attention_mask"].sum())
            return super().training_step(model, inputs, *args, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # The model's own loss with the output head applied at response positions only
            # (equal to it within float rounding); the Trainer's for anything else it asks.
            if return_outputs:
                return super().compute_loss(model, inputs, True, num_items_in_batch)
            import torch

            from tamis.model.runner import response_loss

            device = inputs["input_ids"].device.type
            with torch.autocast(device, torch.bfloat16, enabled=cfg.precision == "bfloat16"):
                total, count = response_loss(
                    model, inputs["input_ids"], inputs["labels"], inputs["attention_mask"]
                )
            if num_items_in_batch is None:  # the Trainer's mean, then divided by its steps
                accum = getattr(self, "current_gradient_accumulation_steps", cfg.grad_accum)
                num_items_in_batch = count * accum
            return total / max(int(num_items_in_batch), 1)

        def take_tokens(self) -> int:
            n, self.tokens = self.tokens, 0
            return n

        def _get_train_sampler(self, train_dataset=None):
            if not cfg.group_by_length:
                return super()._get_train_sampler(train_dataset)
            lengths = [len(r["input_ids"]) for r in rows]
            return EpochLengthSampler(lengths, cfg.batch_size * cfg.grad_accum, cfg.seed)

    by_steps = cfg.save_steps > 0 and not stop_each_epoch
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
        save_strategy="steps" if by_steps else "epoch",
        save_steps=cfg.save_steps if by_steps else 500,
        save_total_limit=1 if stop_each_epoch else 2,
        logging_steps=1,
        report_to=[],
        use_cpu=not _on_cuda(model),
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not progress,
    )
    rows = [{"input_ids": list(e.input_ids), "labels": e.labels} for e in encoded]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainer = CountingTrainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=Collator(pad),
        callbacks=[StopAtEpochEnd()] if stop_each_epoch else list(callbacks),
    )
    if not stop_each_epoch:
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(ProgressCallback)  # StepLog draws the bar
        trainer.remove_callback(PrinterCallback)
    return trainer


class EpochLengthSampler:
    """Length-grouped order (Hugging Face's megabatches: shuffle, then sort by length within
    groups of 50 batches) drawn from a generator seeded by (seed, epoch).

    The Trainer's own length-grouped sampler draws from the global random state, so a run resumed
    in the middle of an epoch would see another order than the run it continues; this one gives
    every epoch the same order whatever happened before (the Trainer calls ``set_epoch``).
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=g))


def _on_cuda(model) -> bool:
    return next(model.parameters()).device.type == "cuda"
