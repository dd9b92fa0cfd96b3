"""Peak memory and time of the training loss on the longest batch, with and without chunking.

Usage: python benchmarks/train_memory.py [--model gemma3-270m] [--records 2000] [--batch 8]
           [--chunks off,268435456] [--precisions bfloat16,float32] [--repeats 3]

``tamis.model.runner.response_loss`` sends a batch's response rows through the output head in chunks
of ``LOSS_CHUNK_ELEMENTS`` logits, recomputed in the backward pass, when a batch has more rows than
that. This measures what that buys and costs, on full fine-tuning's loss (forward and backward, no
optimizer step) of two batches of the seeded Alpaca sample the results use (seed 52002, Alpaca
template): the ``--batch`` longest records (the first batch a length-grouped epoch trains on) and
a batch of median length. Each chunk setting and precision runs in its own process; peak resident
memory is read from the OS (``ru_maxrss``), with its growth over the peak before each batch.
Time: median of ``--repeats`` passes after one warm-up pass.

Writes benchmarks/results/train_memory_MODEL.json.
"""

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ALPACA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca52k" / "alpaca_52k.jsonl"
RESULTS = Path(__file__).parent / "results"


def batches(lm, records: int, batch: int) -> dict[str, list]:
    """The longest and a median-length batch of the seeded sample, encoded."""
    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import sample_encoded

    # max_tokens as tamis score's default; the median batch first, as the peak only grows.
    encoded = sorted(sample_encoded(lm, records, 2048), key=lambda e: -len(e.input_ids))
    mid = len(encoded) // 2
    return {"median": encoded[mid : mid + batch], "longest": encoded[:batch]}


def one(model_name: str, chunk: int, precision: str, records: int, batch: int, repeats: int):
    import torch

    from tamis.model import runner
    from tamis.model.finetune import Collator
    from tamis.model.loading import load_model

    lm = load_model(model_name)
    if chunk:
        runner.LOSS_CHUNK_ELEMENTS = chunk
    pad = lm.tokenizer.pad_token_id
    collate = Collator(pad if pad is not None else lm.tokenizer.eos_token_id)
    model = lm.model
    model.train()
    out = {"chunk_rows": runner.loss_chunk_rows(model)}
    for name, items in batches(lm, records, batch).items():
        b = collate([{"input_ids": list(e.input_ids), "labels": e.labels} for e in items])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        times = []
        for _ in range(repeats + 1):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bfloat16"):
                total, count = runner.response_loss(
                    model, b["input_ids"], b["labels"], b["attention_mask"]
                )
            (total / count).backward()
            times.append(time.perf_counter() - t0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        out[name] = {
            "tokens": int(b["attention_mask"].sum()),
            "response_rows": count,
            "median_s": statistics.median(times[1:]),
            "loss": float(total / count),
            "peak_rss_gib": peak,
            "peak_growth_gib": peak - before,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--chunks", default="off,268435456", help="LOSS_CHUNK_ELEMENTS values")
    parser.add_argument("--precisions", default="bfloat16,float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=None, help=argparse.SUPPRESS)  # one child
    parser.add_argument("--precision", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.precision:
        r = one(args.model, args.chunk, args.precision, args.records, args.batch, args.repeats)
        print(json.dumps(r))
        return
    results = []
    for precision in args.precisions.split(","):
        for chunk in args.chunks.split(","):
            elements = 2**62 if chunk == "off" else int(chunk)
            cmd = [sys.executable, __file__, "--model", args.model, "--records", str(args.records)]
            cmd += ["--batch", str(args.batch), "--repeats", str(args.repeats)]
            cmd += ["--chunk", str(elements), "--precision", precision]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            r = {"precision": precision, "chunk": chunk, **json.loads(done.stdout.splitlines()[-1])}
            results.append(r)
            for name in ("median", "longest"):
                m = r[name]
                print(
                    f"{precision:<9} chunk {chunk:<10} ({r['chunk_rows']:>7} rows) {name:<8} "
                    f"{m['response_rows']:>5} rows {m['tokens']:>5} tokens: "
                    f"{m['median_s']:6.2f} s, "
                    f"peak {m['peak_rss_gib']:.2f} GiB ({m['peak_growth_gib']:+.2f}), "
                    f"loss {m['loss']:.5f}",
                    flush=True,
                )
    report = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "model": args.model,
        "records": args.records,
        "batch": args.batch,
        "results": results,
    }
    path = RESULTS / f"train_memory_{Path(args.model).stem}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
