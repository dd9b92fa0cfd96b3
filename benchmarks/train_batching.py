"""Padding and step time of training batches: uniform random batches against length-grouped ones.

Usage: python benchmarks/train_batching.py [DATA] [STEPS]
    (defaults: out/alpaca2k.jsonl from benchmarks/alpaca_sample.py, 12 steps per arm)

For the whole file it counts the token slots a batch of 8 fills (real tokens plus padding) under
each sampler, as the Trainer would draw them for one epoch with seed 0. Then it times STEPS full
fine-tuning steps of SmolLM2-135M with each sampler's first batches, and prints the medians.
Writes benchmarks/results/train_batching.json.
"""

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from tamis.data.readers import read_dataset
from tamis.model.finetune import Collator
from tamis.model.loading import load_model
from tamis.model.render import encode

BATCH = 8


def batches(lengths: list[int], grouped: bool, seed: int = 0) -> list[list[int]]:
    from transformers.trainer_pt_utils import LengthGroupedSampler

    g = torch.Generator().manual_seed(seed)
    if grouped:
        order = list(LengthGroupedSampler(BATCH, lengths=lengths, generator=g))
    else:
        order = torch.randperm(len(lengths), generator=g).tolist()
    return [order[i : i + BATCH] for i in range(0, len(order), BATCH)]


def main(path: str = "out/alpaca2k.jsonl", steps: int = 12) -> None:
    torch.manual_seed(0)
    lm = load_model("smollm2-135m")
    data = read_dataset(Path(path), skip_bad=True)
    encoded = [encode(r, lm.tokenizer, "alpaca", 1024) for r in data.records]
    lengths = [len(e.input_ids) for e in encoded]
    collate = Collator(lm.tokenizer.pad_token_id or lm.tokenizer.eos_token_id)
    model = lm.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    result = {
        "data": path,
        "records": len(encoded),
        "real_tokens": sum(lengths),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
    }
    for name, grouped in (("random", False), ("group_by_length", True)):
        plan = batches(lengths, grouped)
        slots = sum(BATCH * max(lengths[i] for i in b) if len(b) == BATCH else 0 for b in plan)
        full = sum(sum(lengths[i] for i in b) for b in plan if len(b) == BATCH)
        times = []
        for b in plan[:steps]:
            batch = collate(
                [{"input_ids": list(encoded[i].input_ids), "labels": encoded[i].labels} for i in b]
            )
            start = time.perf_counter()
            loss = model(**batch).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - start)
        slot_tokens = sum(BATCH * max(lengths[i] for i in b) for b in plan[:steps])
        result[name] = {
            "padding_fraction_epoch": round(1 - full / slots, 4),
            "median_step_s": round(statistics.median(times), 3),
            "timed_steps": len(times),
            "slot_tokens_per_s": round(slot_tokens / sum(times), 1),
            "epoch_estimate_min": round(slots / (slot_tokens / sum(times)) / 60, 1),
        }
        print(name, result[name], flush=True)
    out = Path(__file__).parent / "results" / "train_batching.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2], *(int(a) for a in sys.argv[2:3]))
