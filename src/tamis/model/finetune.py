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
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.model.batches import Collator, EpochLengthSampler, held_out_loss
from tamis.model.checkpoints import (
    checkpoint_step,
    held_out_log,
    last_checkpoint,
    load_weights,
    newest_checkpoint,
    step_log,
    truncate_log,
)
from tamis.model.loading import peft_quietly
from tamis.model.render import Encoded

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
_LATER_FIELDS = {
    "num_virtual_tokens": 20,
    "save_steps": 0,
    "precision": "float32",
    "max_steps": 0,
    "lora_targets": "all-linear",
}
# LoRA on every linear layer of the decoder (peft's "all-linear": the output head excepted).
ALL_LINEAR = "all-linear"


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
    max_steps: int = 0  # tamis train: stop after this many optimizer steps (0: run every epoch)
    # LoRA: the module names given adapters, comma-separated (e.g. "q_proj,v_proj"), or all-linear
    lora_targets: str = ALL_LINEAR

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
        if self.max_steps < 0:
            raise TamisError(f"max-steps must be 0 (every epoch) or more, got {self.max_steps}")
        if not 0 <= self.lora_dropout < 1:
            raise TamisError(f"lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if not [t for t in self.lora_targets.split(",") if t.strip()]:
            raise TamisError(
                "lora-targets is empty; give module names (q_proj,v_proj) or all-linear"
            )

    def digest(self) -> str:
        """A short hash of every hyper-parameter: names checkpoints and cache entries."""
        fields = {
            k: v
            for k, v in asdict(self).items()
            if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


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
    targets = [t.strip() for t in cfg.lora_targets.split(",") if t.strip()]
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=ALL_LINEAR if targets == [ALL_LINEAR] else targets,
        task_type="CAUSAL_LM",
    )
    try:
        with peft_quietly():
            return get_peft_model(model, lora)
    except ValueError as e:  # peft: "Target modules {...} not found in the base model"
        raise TamisError(
            f"--lora-targets {cfg.lora_targets}: {e}. This model's linear layers are named: "
            f"{', '.join(linear_names(model))} (or give all-linear)"
        ) from None


def linear_names(model) -> list[str]:
    """The distinct last names of the model's linear layers (what ``--lora-targets`` takes)."""
    import torch

    names = {
        n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
    }
    return sorted(names)


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
        with quiet_saves():
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
    held_out: list[Encoded] | None = None,
    eval_steps: int = 0,
    eval_log_path: Path | None = None,
) -> dict[str, Any]:
    """Train ``model`` (already :func:`prepare_model`-ed) for ``cfg.epochs`` on ``encoded``
    (or ``cfg.max_steps`` steps when set).

    Checkpoints (safetensors, with optimizer, scheduler and RNG states) go under ``out_dir`` after
    every epoch, and every ``cfg.save_steps`` steps when set. ``resume`` continues from the newest
    one, with the same data order, so the result equals an uninterrupted run's. Every optimizer
    step appends ``{step, epoch, loss, learning_rate, grad_norm, tokens, tokens_per_s}`` to
    ``log_path`` (JSON Lines); a resumed run first drops the lines after its checkpoint.
    With ``held_out`` records, their response loss (:func:`held_out_loss`) goes to
    ``eval_log_path`` before training, every ``eval_steps`` steps (0: at each epoch's end) and at
    the end. Returns the Trainer's final metrics.
    """
    cfg.check()
    last = newest_checkpoint(out_dir) if resume else None
    start_step = checkpoint_step(last) if last else 0
    truncate_log(log_path, start_step)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = step_log(log_path, progress)
    callbacks = [log]
    if held_out:
        truncate_log(eval_log_path, start_step)
        bf16 = cfg.precision == "bfloat16"
        score = lambda m: held_out_loss(m, tokenizer, held_out, cfg.batch_size, bf16)  # noqa: E731
        callbacks.append(held_out_log(eval_log_path, score, eval_steps))
    trainer = _trainer(model, tokenizer, encoded, cfg, out_dir, False, callbacks, False)
    log.trainer = trainer
    with quiet_saves():
        result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    return dict(result.metrics)


@contextmanager
def quiet_saves():
    """No "Writing model shards" bar from transformers at every checkpoint (the training bar is
    tamis' own, drawn with tqdm directly)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


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

        def _issue_warnings_after_load(self, load_result) -> None:
            # A checkpoint stores tied output embeddings once, as the input embeddings, so a
            # missing lm_head.weight is expected (load_weights checks the same); say nothing.
            if any("lm_head" not in k for k in load_result.missing_keys) or (
                load_result.unexpected_keys
            ):
                super()._issue_warnings_after_load(load_result)

        def _get_train_sampler(self, train_dataset=None):
            if not cfg.group_by_length:
                return super()._get_train_sampler(train_dataset)
            lengths = [len(r["input_ids"]) for r in rows]
            return EpochLengthSampler(lengths, cfg.batch_size * cfg.grad_accum, cfg.seed)

    by_steps = cfg.save_steps > 0 and not stop_each_epoch
    args = TrainingArguments(
        output_dir=str(out_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps and not stop_each_epoch else -1,
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
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    # Neither prints the Trainer's raw dictionary of each step's logs on the console: StepLog
    # draws tamis train's bar; learning percentage keeps the Trainer's bar without the printing.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if stop_each_epoch and progress:
        trainer.add_callback(_quiet_progress())
    return trainer


def _quiet_progress():
    from transformers.trainer_callback import ProgressCallback

    class QuietProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass  # the bar, without a raw dictionary printed under it at every step

    return QuietProgress


def _on_cuda(model) -> bool:
    return next(model.parameters()).device.type == "cuda"
