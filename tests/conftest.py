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
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers (pytest-xdist), one per core: each worker, and each command it
    # starts, computes on one thread, so two processes never fight over the two cores. Set before
    # any test module imports torch.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"


# How `make test` spreads the suite over its two workers (pytest-xdist). A module is a unit of
# work, so its module-scoped fixtures (a Ray cluster, a trained experiment) run once. Modules go
# longest first, so that no long one is left running alone at the end. Only the order changes:
# every test still runs, alone or beside any other.
LONGEST_FIRST = (
    "test_ray.py", "test_kill_resume.py", "test_cli.py", "test_train.py", "test_clear.py",
    "test_api.py", "test_scoring.py", "test_experiment.py", "test_lp.py", "test_report.py",
    "test_junk.py", "test_models.py",
)  # fmt: skip


def _module(nodeid: str) -> str:
    return Path(nodeid.split("::", 1)[0]).name


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item.nodeid), len(rank)))  # stable


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _module(nodeid)

    config.option.loadscopereorder = False  # keep the order above, not the count of tests
    return ByModule(config, log)


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
