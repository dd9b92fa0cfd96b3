"""Training throughput of tamis train's three methods: full fine-tuning, LoRA and prompt tuning.

Usage: python benchmarks/train_throughput.py [--model smollm2-135m] [--records 56] [--batch 8]
           [--methods full,lora,prompt-tuning] [--precisions float32,bfloat16] [--loss-batches 6]

Trains one epoch on a seeded sample of Alpaca 52k records (Alpaca template, length-grouped
batches) with each method and precision and reads the per-step log that
``tamis.model.finetune.train_model`` writes: tokens per second per optimizer step (real tokens,
padding not counted). The first step is left out of the median (allocation, warm-up). Peak resident
memory is read from the OS per run (each runs in its own process).

Then, for full fine-tuning, the loss alone (forward and backward of ``--loss-batches`` batches of
the same records, no optimizer step), four ways on the same batches: the model's own loss (output
head at every position) and tamis' (head at response positions only,
``tamis.model.runner.response_loss``), each in float32 and in bfloat16 autocast. Medians per batch,
and the largest relative difference of each loss from the model's own float32 loss.

Writes benchmarks/results/train_throughput.json (train_throughput_MODEL.json for another model).
"""

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ALPACA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca52k" / "alpaca_52k.jsonl"
RESULTS = Path(__file__).parent / "results" / "train_throughput.json"
LR = {"full": 2e-5, "lora": 2e-4, "prompt-tuning": 3e-2}


def sample_encoded(lm, records: int, max_tokens: int = 512) -> list:
    """The seeded sample of Alpaca records (the set benchmarks/alpaca_sample.py writes), encoded
    with the Alpaca template."""
    import random

    from tamis.data.readers import read_dataset
    from tamis.model.render import encode

    with ALPACA.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    sample = random.Random(52002).sample(rows, records)
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "data.jsonl"
        data_path.write_text("".join(json.dumps(r) + "\n" for r in sample), encoding="utf-8")
        data = read_dataset(data_path, skip_bad=True)
    return [encode(r, lm.tokenizer, "alpaca", max_tokens) for r in data.records]


def one(model_name: str, method: str, precision: str, records: int, batch: int) -> dict:
    """Train one epoch with ``method`` in this process; returns the measurements."""
    import torch

    from tamis.model.finetune import TrainConfig, prepare_model, train_model
    from tamis.model.loading import load_model

    lm = load_model(model_name)
    encoded = sample_encoded(lm, records)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            method=method,
            epochs=1,
            learning_rate=LR[method],
            batch_size=batch,
            warmup_ratio=0.0,
            precision=precision,
        )
        model = prepare_model(lm.model, cfg)
        model.train()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        log = Path(tmp) / "log.jsonl"
        train_model(model, lm.tokenizer, encoded, cfg, Path(tmp) / "ck", log, False, False)
        steps = [json.loads(line) for line in log.read_text().splitlines()]
    speeds = [s["tokens_per_s"] for s in steps[1:]]
    return {
        "model": model_name,
        "method": method,
        "precision": precision,
        "trainable_parameters": trainable,
        "steps": len(steps),
        "tokens": sum(s["tokens"] for s in steps),
        "median_tokens_per_s": statistics.median(speeds),
        "min_tokens_per_s": min(speeds),
        "max_tokens_per_s": max(speeds),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
    }


def loss_only(model_name: str, records: int, batch: int, batches: int) -> dict:
    """Forward and backward of the loss, four ways, on the same full fine-tuning batches."""
    import time

    import torch

    from tamis.model.finetune import Collator
    from tamis.model.loading import load_model
    from tamis.model.runner import response_loss

    lm = load_model(model_name)
    encoded = sorted(sample_encoded(lm, records), key=lambda e: len(e.input_ids))
    pad = lm.tokenizer.pad_token_id
    collate = Collator(pad if pad is not None else lm.tokenizer.eos_token_id)
    step = max(1, len(encoded) // batches)
    starts = [i * step for i in range(batches) if i * step + batch <= len(encoded)]
    data = [
        collate(
            [{"input_ids": list(e.input_ids), "labels": e.labels} for e in encoded[i : i + batch]]
        )
        for i in starts
    ]
    model = lm.model
    model.train()

    def own(b):
        return model(**b).loss

    def ours(b):
        total, count = response_loss(model, b["input_ids"], b["labels"], b["attention_mask"])
        return total / count

    ways = {
        "own_float32": (own, False),
        "response_float32": (ours, False),
        "own_bfloat16": (own, True),
        "response_bfloat16": (ours, True),
    }
    out, losses = {}, {}
    for name, (fn, bf16) in ways.items():
        times, values = [], []
        for b in [data[0], *data]:  # the first batch once more, as warm-up, not counted
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                loss = fn(b)
            loss.backward()
            times.append(time.perf_counter() - t0)
            values.append(float(loss))
        losses[name] = values[1:]
        tokens = [int(b["attention_mask"].sum()) for b in data]
        out[name] = {
            "median_s_per_batch": statistics.median(times[1:]),
            "tokens_per_s": sum(tokens) / sum(times[1:]),
        }
    ref = losses["own_float32"]
    for name in ways:
        diffs = [abs(a - r) / r for a, r in zip(losses[name], ref, strict=True)]
        out[name]["max_rel_diff_to_own_float32"] = max(diffs)
        out[name]["speedup_vs_own_float32"] = (
            out["own_float32"]["median_s_per_batch"] / out[name]["median_s_per_batch"]
        )
    return {"model": model_name, "batches": len(data), "batch": batch, "ways": out}


def child(args, *extra: str) -> dict:
    cmd = [sys.executable, __file__, "--model", args.model, "--records", str(args.records)]
    cmd += ["--batch", str(args.batch), "--loss-batches", str(args.loss_batches), *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--records", type=int, default=56)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--methods", default="full,lora,prompt-tuning")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--loss-batches", type=int, default=6, help="0: skip the loss-only part")
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)  # one child process
    parser.add_argument("--precision", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--loss-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(one(args.model, args.method, args.precision, args.records, args.batch)))
        return
    if args.loss_only:
        print(json.dumps(loss_only(args.model, args.records, args.batch, args.loss_batches)))
        return
    results = []
    for method in args.methods.split(","):
        for precision in args.precisions.split(","):
            results.append(child(args, "--method", method, "--precision", precision))
            r = results[-1]
            print(
                f"{r['method']:<14} {r['precision']:<9} {r['median_tokens_per_s']:>8.1f} tok/s "
                f"(median of {r['steps'] - 1} steps; {r['min_tokens_per_s']:.0f}-"
                f"{r['max_tokens_per_s']:.0f}), {r['trainable_parameters']:>11,} trainable, "
                f"peak {r['peak_rss_gib']:.2f} GiB",
                flush=True,
            )
    loss = child(args, "--loss-only") if args.loss_batches else None
    if loss:
        for name, w in loss["ways"].items():
            print(
                f"loss only, {name:<18} {w['median_s_per_batch']:6.2f} s/batch, "
                f"{w['tokens_per_s']:7.1f} tok/s, {w['speedup_vs_own_float32']:.2f}x, "
                f"max rel diff {w['max_rel_diff_to_own_float32']:.1e}",
                flush=True,
            )
    report = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "records": args.records,
        "batch": args.batch,
        "results": results,
        "loss_only": loss,
    }
    path = RESULTS
    if args.model != "smollm2-135m":
        path = RESULTS.with_name(f"train_throughput_{Path(args.model).stem}.json")
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
