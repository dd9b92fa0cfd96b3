"""Shared fixtures. The real bundled model is loaded once per session (no mocks).

The converted-model cache goes to ``.venv/tamis-test-cache`` unless ``TAMIS_CACHE`` is set, so a
test run neither depends on nor writes to the user's own cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo" / "dolly_demo.jsonl"
os.environ.setdefault("TAMIS_CACHE", str(ROOT / ".venv" / "tamis-test-cache"))


@pytest.fixture(scope="session")
def lm():
    from tamis.model.loading import load_model

    return load_model("smollm2-135m")


@pytest.fixture()
def write_jsonl(tmp_path):
    """Write a list of objects as JSON Lines and return the path."""
    import json

    def write(rows, name="data.jsonl"):
        path = tmp_path / name
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path

    return write


def rows_from(values, column="ppl", **extra):
    """Score rows as ``scores.parquet`` holds them: one ``ok`` row per value of ``column``."""
    return [
        {
            "index": i,
            "id": f"r{i:03d}",
            "status": "ok",
            "detail": "",
            "truncated": False,
            column: v,
            **extra,
        }
        for i, v in enumerate(values)
    ]
