"""Write a fixed, seeded sample of Alpaca 52k records for the transfer and scorer-quality studies.

Usage: python benchmarks/alpaca_sample.py [N] [OUT]   (defaults: 2000, out/alpaca2k.jsonl)
Records keep their original `id` (index in alpaca_data.json), so scores join with
../shared/data/alpaca52k/labels.jsonl and small2large_dev.csv.
"""

import json
import random
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca52k"
SEED = 52002


def main(n: int = 2000, out: str = "out/alpaca2k.jsonl") -> None:
    with (SHARED / "alpaca_52k.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    sample = sorted(random.Random(SEED).sample(rows, n), key=lambda r: r["id"])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for r in sample:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(sample)} records to {out}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, *sys.argv[2:3])
