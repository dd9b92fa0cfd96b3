"""What a training run leaves on disk: its checkpoints (to resume from), the step log (one JSON
line per optimizer step, with a progress bar) and the held-out log (one line per evaluation)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tamis.base.errors import TamisError

# What a finished save leaves in a checkpoint folder; a save cut short lacks some of them.
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors")
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def truncate_log(path: Path, last_step: int) -> None:
    """Keep the log lines up to ``last_step`` (a resumed run redoes the steps after it)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= last_step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def newest_checkpoint(out_dir: Path) -> Path | None:
    """The newest *complete* checkpoint in ``out_dir``. A process killed while saving leaves a
    folder without its state or weights: such folders are removed (their step is redone)."""
    if not out_dir.is_dir():
        return None
    folders = [p for p in out_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for folder in sorted(folders, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        weights = any((folder / w).is_file() for w in WEIGHT_FILES)
        if weights and all((folder / f).is_file() for f in CHECKPOINT_FILES):
            return folder
        shutil.rmtree(folder)
    return None


def checkpoint_step(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / "trainer_state.json").read_text())["global_step"])


def last_checkpoint(out_dir: Path) -> tuple[Path | None, int]:
    """The newest complete checkpoint and the epoch it ends (0 when there is none)."""
    last = newest_checkpoint(out_dir)
    if last is None:
        return None, 0
    state = json.loads((last / "trainer_state.json").read_text())
    return last, int(round(state["epoch"]))


def load_weights(model, checkpoint: Path) -> None:
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


def step_log(path: Path, progress: bool):
    """A Trainer callback: one JSON line per optimizer step, and a progress bar showing the loss
    and tokens per second (real tokens, padding not counted). Set ``.trainer`` before training."""
    import time

    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        trainer = None
        bar = None
        last = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = tqdm(
                total=state.max_steps, initial=state.global_step, desc="training", unit="step",
                disable=not progress, dynamic_ncols=True,
            )  # fmt: skip
            self.last = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            now = time.perf_counter()
            tokens = self.trainer.take_tokens()
            row = {
                "step": state.global_step,
                "epoch": round(state.epoch or 0.0, 6),
                "loss": logs["loss"],
                "learning_rate": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "tokens": tokens,
                "tokens_per_s": tokens / (now - self.last) if now > self.last else None,
            }
            self.last = now
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            self.bar.update(state.global_step - self.bar.n)
            self.bar.set_postfix_str(
                f"loss {row['loss']:.4f}, {row['tokens_per_s'] or 0:.0f} tok/s", refresh=False
            )

        def on_train_end(self, args, state, control, **kwargs):
            self.bar.close()

    return StepLog()


def held_out_log(path: Path, evaluate, every: int):
    """A Trainer callback: ``evaluate(model) -> (loss, tokens)`` on the held-out records before
    the first step, every ``every`` steps (0: at each epoch's end) and after the last, one JSON
    line each in ``path``: ``{step, epoch, loss, tokens}``. A resumed run evaluates its starting
    step again only when that evaluation was due and is missing."""
    from transformers import TrainerCallback

    def logged() -> set[int]:
        if not path.is_file():
            return set()
        return {json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()}

    class HeldOutLog(TrainerCallback):
        def run(self, state, model) -> None:
            if state.global_step in logged():
                return
            loss, tokens = evaluate(model)
            row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 6)}
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({**row, "loss": loss, "tokens": tokens}) + "\n")

        def due(self, state) -> bool:
            step, epoch = state.global_step, state.epoch or 0.0
            at_epoch_end = abs(epoch - round(epoch)) < 1e-6
            return (
                step == 0
                or step == state.max_steps
                or (step % every == 0 if every else at_epoch_end)
            )

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if self.due(state):
                self.run(state, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if every and state.global_step % every == 0:
                self.run(state, model)

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if not every:
                self.run(state, model)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            self.run(state, model)

    return HeldOutLog()
