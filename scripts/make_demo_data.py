"""Rebuild data/demo/dolly_demo.jsonl: 300 Dolly 15k records, seeded, at most 1,200 characters each.

The length cap keeps `make demo` to a few minutes on two CPU cores.
Usage: python scripts/make_demo_data.py ../shared/data/dolly15k/dolly_15k.jsonl
"""

import json
import random
import sys

SEED = 20261121
N = 300
MAX_CHARS = 1200


def main(src: str, dst: str = "data/demo/dolly_demo.jsonl") -> None:
    with open(src, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    pool = [
        r for r in rows if len(r["instruction"]) + len(r["input"]) + len(r["output"]) <= MAX_CHARS
    ]
    sample = random.Random(SEED).sample(pool, N)
    with open(dst, "w", encoding="utf-8") as f:
        for r in sample:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
