"""Training throughput of tamis train's three methods: full fine-tuning, LoRA and prompt tuning.

Usage: python benchmarks/train_throughput.py [--model smollm2-135m] [--records 56] [--batch 8]

Trains one epoch on a seeded sample of Alpaca 52k records (Alpaca template, length-grouped
batches) with each method and reads the per-step log that ``tamis.train.train_model`` writes:
tokens per second per optimizer step (real tokens, padding not counted). The first step is left
out of the median (allocation, warm-up). Peak resident memory is read from the OS per method
(each method runs in its own process). Writes benchmarks/results/train_throughput.json.
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


def one(model_name: str, method: str, records: int, batch: int) -> dict:
    """Train one epoch with ``method`` in this process; returns the measurements."""
    import random

    import torch

    from tamis.models import load_model
    from tamis.readers import read_dataset
    from tamis.render import encode
    from tamis.train import TrainConfig, prepare_model, train_model

    with ALPACA.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    sample = random.Random(52002).sample(rows, records)
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "data.jsonl"
        data_path.write_text("".join(json.dumps(r) + "\n" for r in sample), encoding="utf-8")
        data = read_dataset(data_path, skip_bad=True)
        lm = load_model(model_name)
        encoded = [encode(r, lm.tokenizer, "alpaca", 512) for r in data.records]
        cfg = TrainConfig(
            method=method, epochs=1, learning_rate=LR[method], batch_size=batch, warmup_ratio=0.0
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
        "trainable_parameters": trainable,
        "steps": len(steps),
        "tokens": sum(s["tokens"] for s in steps),
        "median_tokens_per_s": statistics.median(speeds),
        "min_tokens_per_s": min(speeds),
        "max_tokens_per_s": max(speeds),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--records", type=int, default=56)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.method:
        print(json.dumps(one(args.model, args.method, args.records, args.batch)))
        return
    results = []
    for method in ("full", "lora", "prompt-tuning"):
        cmd = [sys.executable, __file__, "--model", args.model, "--method", method]
        cmd += ["--records", str(args.records), "--batch", str(args.batch)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        r = results[-1]
        print(
            f"{r['method']:<14} {r['median_tokens_per_s']:>8.1f} tok/s (median of "
            f"{r['steps'] - 1} steps; {r['min_tokens_per_s']:.0f}-{r['max_tokens_per_s']:.0f}), "
            f"{r['trainable_parameters']:>11,} trainable, peak {r['peak_rss_gib']:.2f} GiB",
            flush=True,
        )
    report = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "records": args.records,
        "batch": args.batch,
        "results": results,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
