"""Batches for training and for the held-out loss: the padding collator, a seeded length-grouped
order that a resumed run repeats exactly, and the response loss of held-out records."""

from __future__ import annotations

from typing import Any

from tamis.model.render import IGNORE, Encoded


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


def held_out_loss(
    model, tokenizer, encoded: list[Encoded], batch_size: int, bfloat16: bool
) -> tuple[float, int]:
    """The response loss of ``encoded`` (mean NLL per response token, as ``tamis eval``'s
    ``loss``) and its token count; ``bfloat16``: autocast as mixed-precision training does. The
    model is left in training mode."""
    import torch

    from tamis.model.runner import response_loss

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate, device = Collator(pad), next(model.parameters()).device
    ordered = sorted(encoded, key=lambda e: len(e.input_ids))  # less padding
    total, count = 0.0, 0
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=bfloat16):
            for start in range(0, len(ordered), batch_size):
                part = ordered[start : start + batch_size]
                rows = [{"input_ids": list(e.input_ids), "labels": e.labels} for e in part]
                b = {k: v.to(device) for k, v in collate(rows).items()}
                t, c = response_loss(model, b["input_ids"], b["labels"], b["attention_mask"])
                total, count = total + float(t), count + int(c)
    finally:
        model.train()
    return total / max(count, 1), count


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
