"""Does int8 pay? Speed and score agreement of dynamic int8 quantization against float32.

Usage: python benchmarks/quantization.py [--model smollm2-135m] [--records 200] [--repeats 3]

PyTorch's dynamic quantization (``torch.ao.quantization.quantize_dynamic``) stores the weights of
the chosen linear layers as int8 and quantizes their inputs per batch; on a CPU with AVX-512 VNNI
the int8 matrix multiplies run faster than float32 ones. It is measured here on a seeded Alpaca
sample (Alpaca template) in variants that quantize fewer layers, each against float32:

- ``all``: every linear layer, output head included (per-tensor weights);
- ``no-head``: all but the output head (per-channel weights);
- ``no-head-no-down``: also keeping the MLP down-projection, whose inputs carry outlier values;
- ``attention``: only the attention projections (q, k, v, o).

For each: median wall time of ``ppl`` + ``ifd`` scoring over ``--repeats`` (fresh cache each
time), the speed-up over float32, and the Spearman correlation of ``ppl`` and ``ifd`` with
float32's. tamis ships a faster path only at Spearman >= 0.99. Writes
benchmarks/results/quantization.json.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scoring import TEMPLATE, write_sample  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "quantization.json"
# variant -> (name fragments of linear layers left in float32, per-channel weight scales)
VARIANTS = {
    "all": ((), False),
    "no-head": (("lm_head",), True),
    "no-head-no-down": (("lm_head", "down_proj"), True),
    "attention": (("lm_head", "down_proj", "gate_proj", "up_proj"), True),
}


def quantized(model_name: str, keep: tuple[str, ...], per_channel: bool):
    """The model with its linear layers, except those named in ``keep``, quantized to int8."""
    import torch

    from tamis.model.loading import load_model

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        from torch.ao.quantization import (
            default_dynamic_qconfig,
            per_channel_dynamic_qconfig,
            quantize_dynamic,
        )

        qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        lm = load_model(model_name)
        spec = {
            name: qconfig
            for name, module in lm.model.named_modules()
            if isinstance(module, torch.nn.Linear) and not any(k in name for k in keep)
        }
        quantize_dynamic(lm.model, spec, dtype=torch.qint8, inplace=True)
    return lm, len(spec)


def timed_scores(lm, data, repeats: int) -> tuple[list[float], list[dict]]:
    """Wall times of ``repeats`` fresh scoring runs, and the last run's rows."""
    from tamis.model.cache import ScoreCache
    from tamis.scorers import get_scorers
    from tamis.scorers.score import score_dataset

    walls, rows = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp, ScoreCache(Path(tmp) / "c.sqlite") as cache:
            t0 = time.perf_counter()
            result = score_dataset(
                data, lm, get_scorers(["ppl", "ifd"]), cache, TEMPLATE, progress=False
            )
            walls.append(time.perf_counter() - t0)
        rows = [r for r in result.rows if r["status"] == "ok"]
    return walls, rows


def main() -> None:
    from scipy.stats import spearmanr

    from tamis.data.readers import read_dataset
    from tamis.model.loading import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = read_dataset(write_sample(args.records, Path(tmp) / "s.jsonl"), skip_bad=True)
    walls, base = timed_scores(load_model(args.model), data, args.repeats)
    report = {"command": " ".join(sys.argv), "records": len(base)}
    report["float32"] = {"median_wall_s": statistics.median(walls), "wall_s": walls}
    print(f"float32: {statistics.median(walls):.1f} s", flush=True)
    for name, (keep, per_channel) in VARIANTS.items():
        lm, n_layers = quantized(args.model, keep, per_channel)
        walls, rows = timed_scores(lm, data, args.repeats)
        r = {
            "quantized_layers": n_layers,
            "per_channel": per_channel,
            "median_wall_s": statistics.median(walls),
            "wall_s": walls,
            "speedup": report["float32"]["median_wall_s"] / statistics.median(walls),
        }
        for col in ("ppl", "ifd"):
            rho = spearmanr([b[col] for b in base], [x[col] for x in rows])[0]
            r[f"spearman_{col}"] = float(rho)
        r["ships"] = min(r["spearman_ppl"], r["spearman_ifd"]) >= 0.99
        report[name] = r
        print(
            f"{name:<16} {n_layers:>3} layers  {r['speedup']:.2f}x  spearman ppl "
            f"{r['spearman_ppl']:.4f} ifd {r['spearman_ifd']:.4f}",
            flush=True,
        )
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
