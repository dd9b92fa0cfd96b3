"""What issue 19's bar asks of a pick at the selection experiment's scale, read from its results.

The bar: a pick beats random at equal training tokens by more than twice random's standard
deviation over seeds. The experiment's own arms say what that is worth in data: ``random`` and
``full`` train the same target, with the same settings, on a quarter of the pool's tokens and on
all of them. If the held-out loss falls by a fixed amount per doubling of the tokens (a straight
line in log tokens through those two points: an interpolation, the two points are all there is),
then a pick that beats random by the bar is worth ``2 ** (bar / slope)`` times random's tokens.

On a noisy pool the same line bounds what the junk filter can give: if a corrupted record taught
nothing (and harmed nothing), dropping every one of them would turn random's clean share ``c``
(by records, not tokens) into 1, worth ``-slope * log2(c)`` nats. The measured gain of the
default recipe (junk filter, then random) against that bound gives what a corrupted record is
worth to the target, as a share of a clean one, under the same line: ``w`` with
``log2((c' + (1 - c') w) / (c + (1 - c) w)) * slope`` = the gain, ``c'`` the clean share the
filter leaves. The gains are a few thousandths, inside their seeds' spread: ``w`` is what they
are consistent with, not a measurement of it.

Usage: python benchmarks/selection_power.py [RESULTS.json ...] [--slope-from RESULTS.json]
       (default: the committed selection experiments in benchmarks/results/)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from tamis.engines.experiment_results import tokens_worth, versus_random

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT = ("selection_alpaca", "selection_alpaca_hard", "selection_dolly")


def arm_runs(results: dict, arm: str) -> dict[int, dict]:
    return {r["seed"]: r for r in results["runs"] if r["arm"] == arm and r.get("loss") is not None}


def corrupted_worth(slope: float, clean: float, kept: float, gain: float) -> float | None:
    """The ``w`` in [0, 1] that explains ``gain`` (bisection; None when none does)."""

    def predicted(w: float) -> float:
        return slope * math.log2((kept + (1 - kept) * w) / (clean + (1 - clean) * w))

    lo, hi = 0.0, 1.0
    if not predicted(hi) <= gain <= predicted(lo):
        return None
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if predicted(mid) > gain else (lo, mid)
    return (lo + hi) / 2


def study(results: dict, slope_from: dict | None = None) -> dict:
    """The bar in tokens (tamis.engines.experiment_results.versus_random) and, on a noisy pool,
    what the junk filter can give. ``slope_from``: the results whose random and full arms give
    the line (default: ``results``' own)."""
    v = versus_random(results["runs"])
    if v is None:
        raise SystemExit("random needs two seeds or more for its spread")
    line = versus_random((slope_from or results)["runs"]) or {}
    if "nats_per_doubling" not in line:
        raise SystemExit("no seed has both random and full: give --slope-from RESULTS.json")
    slope = line["nats_per_doubling"]
    random_ = arm_runs(results, "random")
    seeds = sorted(random_)
    out = {
        "seeds": seeds,
        "random_loss": round(statistics.mean(random_[s]["loss"] for s in seeds), 4),
        "random_sd": round(v["bar"] / 2, 4),
        "nats_per_doubling": round(slope, 4),
        **({"slope_from_other_results": True} if slope_from else {}),
        "bar": round(v["bar"], 4),
        "bar_in_tokens": None if (x := tokens_worth(v["bar"], slope)) is None else round(x, 2),
    }
    default = arm_runs(results, "junk-random")
    if random_[seeds[0]].get("noisy_records") is not None and default:
        paired = [s for s in seeds if s in default]
        gain = -v["arms"]["junk-random"]["mean"]
        clean = 1 - statistics.mean(
            random_[s]["noisy_records"] / random_[s]["records"] for s in paired
        )
        kept = 1 - statistics.mean(
            default[s]["noisy_records"] / default[s]["records"] for s in paired
        )
        out.update(
            random_clean_share=round(clean, 3),
            default_clean_share=round(kept, 3),
            perfect_filter_bound=round(-slope * math.log2(clean), 4),
            default_bound=round(slope * math.log2(kept / clean), 4),
            default_gain=round(gain, 4),
            corrupted_worth=(
                None if (w := corrupted_worth(slope, clean, kept, gain)) is None else round(w, 2)
            ),
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="*", type=Path)
    p.add_argument(
        "--slope-from",
        type=Path,
        help="results whose random and full arms give the line (for runs without full)",
    )
    args = p.parse_args()
    paths = args.results or [RESULTS / f"{name}.json" for name in DEFAULT]
    other = json.loads(args.slope_from.read_text(encoding="utf-8")) if args.slope_from else None
    for path in paths:
        got = study(json.loads(path.read_text(encoding="utf-8")), other)
        print(f"{path.name}: {json.dumps(got)}")


if __name__ == "__main__":
    main()
