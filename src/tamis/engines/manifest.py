"""What every job writes about its run (the input, the model, the versions) and the score cache
it opens."""

from __future__ import annotations

import platform
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tamis.data.readers import Dataset, read_again
from tamis.data.sources import source_sha256


def open_cache(out_dir: Path, cache: str | None, fresh: bool = False):
    """The job's score cache: ``cache`` when given, else ``OUT/cache/nll.sqlite``; ``fresh``
    deletes it first."""
    from tamis.model.cache import ScoreCache

    path = Path(cache) if cache else Path(out_dir) / "cache" / "nll.sqlite"
    if fresh and path.exists():
        path.unlink()
    return ScoreCache(path)


def input_info(data_path: str | Path, data: Dataset) -> dict[str, Any]:
    """The manifest's ``input``: what ``tamis select`` re-reads and checks. A URL is kept as
    given, with the sha256 of the bytes that were read (``data.sha256``)."""
    from tamis.data.remote import is_url

    # the field mapping (--field, --id-field), when there is one: select reads the input with it
    mapping = {"fields": [list(pair) for pair in data.fields]} if data.fields else {}
    if is_url(data_path):
        return {
            "path": data_path,
            "sha256": data.sha256,
            "format": data.format,
            "records": data.n_input,
            **mapping,
        }
    path = Path(data_path)
    return {
        "path": str(path.resolve()),
        "sha256": source_sha256(path),
        "format": data.format,
        "records": data.n_input,
        **mapping,
    }


def model_info(lm, template: str | None = None) -> dict[str, Any]:
    """A manifest's description of a loaded model; with the ``template`` it read the records
    with, and for ``chat`` the system prompt its chat template adds by itself (None: none)."""
    from tamis.model.render import default_system_prompt

    info = {
        "name": lm.name,
        "source": str(lm.source),
        "sha256": lm.sha256,
        "device": lm.device,
        "precision": lm.precision,
    }
    if template is not None:
        info["template"] = template
        info["system_prompt"] = default_system_prompt(lm.tokenizer) if template == "chat" else None
    return info


def score_section(cfg, result, columns: list[str]) -> dict[str, Any]:
    """The manifest's ``score``: configuration (``config.skip_bad`` is what ``tamis select``
    reads), columns, status counts and the scoring statistics."""
    return {
        "config": {**asdict(cfg), "template": result.template},
        "columns": columns,
        "status_counts": dict(Counter(r["status"] for r in result.rows)),
        "truncated": sum(bool(r["truncated"]) for r in result.rows),
        **result.stats,
    }


def reread_input(manifest: dict) -> Dataset:
    return read_again(manifest["input"], manifest["score"]["config"]["skip_bad"])


def raw_by_index(data: Dataset) -> dict[int, tuple[str, Any]]:
    raws = {r.index: (r.where, r.raw) for r in data.records}
    raws.update({b.index: (b.where, b.raw) for b in data.bad})
    return raws


CORE_PACKAGES = ("torch", "transformers", "numpy", "pyarrow", "gguf", "safetensors")


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Python's and the installed packages' versions for a manifest: the core ones and ``extra``."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in (*CORE_PACKAGES, *extra):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
