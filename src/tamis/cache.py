"""The score cache: per-token NLLs per encoded sequence, in SQLite, safe against kills.

A key is sha256 over the runner version, the model's weight hash, and the exact token ids with
the prompt length: it changes whenever the record's content, the template, the tokenizer, the
context limit (through truncation) or the model changes. Scores are recomputed from the NLLs on
every run, so changing a scorer never invalidates the cache.

Writes are committed every ``flush_every`` records or ``flush_seconds`` seconds; SQLite's WAL
journal makes each commit atomic, so a killed run loses at most the uncommitted batch and a
re-run recomputes only that.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import numpy as np

from tamis.render import Encoded

# Bump when the runner's numbers change (masking, head, dtype): old entries then stop matching.
RUNNER_VERSION = "1"


def cache_key(model_sha256: str, encoded: Encoded) -> str:
    h = hashlib.sha256(f"{RUNNER_VERSION}|{model_sha256}|{encoded.n_prompt}|".encode())
    h.update(np.asarray(encoded.input_ids, dtype=np.int64).tobytes())
    return h.hexdigest()


class ScoreCache:
    """``get``/``put`` per-token NLL arrays by key; call ``flush`` (or ``close``) to commit."""

    def __init__(self, path: str | Path, flush_every: int = 256, flush_seconds: float = 5.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS nll (key TEXT PRIMARY KEY, nll BLOB NOT NULL, "
            "sha TEXT NOT NULL)"
        )
        self._pending = 0
        self._last = time.monotonic()
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds

    def get(self, key: str) -> np.ndarray | None:
        row = self._db.execute("SELECT nll, sha FROM nll WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        blob, sha = row
        if hashlib.sha256(blob).hexdigest()[:16] != sha:  # a damaged entry: recompute it
            self._db.execute("DELETE FROM nll WHERE key = ?", (key,))
            return None
        return np.frombuffer(blob, dtype=np.float32).copy()

    def put(self, key: str, nll: np.ndarray) -> None:
        blob = np.asarray(nll, dtype=np.float32).tobytes()
        self._db.execute(
            "INSERT OR REPLACE INTO nll (key, nll, sha) VALUES (?, ?, ?)",
            (key, blob, hashlib.sha256(blob).hexdigest()[:16]),
        )
        self._pending += 1
        if self._pending >= self.flush_every or time.monotonic() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self._db.commit()
        self._pending = 0
        self._last = time.monotonic()

    def close(self) -> None:
        self.flush()
        self._db.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
