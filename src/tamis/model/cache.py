"""The score cache: per-token NLLs per encoded sequence, in SQLite, safe against kills.

A key is sha256 over the runner version, the model's weight hash, and the exact token ids with
the prompt length: it changes whenever the record's content, the template, the tokenizer, the
context limit (through truncation) or the model changes. Scores are recomputed from the NLLs on
every run, so changing a scorer never invalidates the cache.

New entries are held in memory and written in one short transaction every ``flush_every``
entries or ``flush_seconds`` seconds; SQLite's WAL journal makes each commit atomic, so a killed
run loses at most the unflushed entries and a re-run recomputes only those. The write lock is
held only while flushing, never during forward passes, so several runs can share one cache file
(``--cache``): a writer waits up to ``LOCK_TIMEOUT_S`` for another's flush.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import numpy as np

from tamis.base.errors import TamisError
from tamis.model.render import Encoded

# Bump when the runner's numbers change (masking, head, dtype): old entries then stop matching.
RUNNER_VERSION = "1"
LOCK_TIMEOUT_S = 120.0


def cache_key(model_sha256: str, encoded: Encoded) -> str:
    h = hashlib.sha256(f"{RUNNER_VERSION}|{model_sha256}|{encoded.n_prompt}|".encode())
    h.update(np.asarray(encoded.input_ids, dtype=np.int64).tobytes())
    return h.hexdigest()


class ScoreCache:
    """``get``/``put`` per-token NLL arrays by key; call ``flush`` (or ``close``) to commit.

    Other steps keep their arrays here too under their own keys (generated token ids as int64,
    judges' next-token probabilities): the caller passes the same ``dtype`` to ``get`` and
    ``put``.
    """

    def __init__(self, path: str | Path, flush_every: int = 256, flush_seconds: float = 5.0):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TamisError(
                f"{self.path.parent}: cannot create the score cache here ({e.strerror}); "
                "choose another -o folder or --cache path"
            ) from None
        try:
            self._db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS nll (key TEXT PRIMARY KEY, nll BLOB NOT NULL, "
                "sha TEXT NOT NULL)"
            )
            self._db.commit()
        except sqlite3.DatabaseError as e:
            raise self._error(e) from None
        self._pending: dict[str, tuple[bytes, str]] = {}
        self._last = time.monotonic()
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds

    def get(self, key: str, dtype=np.float32) -> np.ndarray | None:
        if key in self._pending:
            return np.frombuffer(self._pending[key][0], dtype=dtype).copy()
        try:
            row = self._db.execute("SELECT nll, sha FROM nll WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as e:
            raise self._error(e) from None
        if row is None:
            return None
        blob, sha = row
        if hashlib.sha256(blob).hexdigest()[:16] != sha:
            return None  # a damaged entry: recomputed, and replaced at the next flush
        return np.frombuffer(blob, dtype=dtype).copy()

    def put(self, key: str, nll: np.ndarray, dtype=np.float32) -> None:
        blob = np.asarray(nll, dtype=dtype).tobytes()
        self._pending[key] = (blob, hashlib.sha256(blob).hexdigest()[:16])
        if (
            len(self._pending) >= self.flush_every
            or time.monotonic() - self._last >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Write the held entries in one transaction (the only time the write lock is taken)."""
        if self._pending:
            rows = [(k, blob, sha) for k, (blob, sha) in self._pending.items()]
            try:
                with self._db:  # commits, or rolls back on error
                    self._db.executemany(
                        "INSERT OR REPLACE INTO nll (key, nll, sha) VALUES (?, ?, ?)", rows
                    )
            except sqlite3.DatabaseError as e:
                raise self._error(e) from None
            self._pending.clear()
        self._last = time.monotonic()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    def _error(self, e: sqlite3.DatabaseError) -> TamisError:
        if "full" in str(e) or "I/O error" in str(e):  # no space left, or a file size limit
            return TamisError(
                f"{self.path}: cannot write the score cache ({e}); the disk may be full: free "
                "some space and re-run: the scores committed so far are kept"
            )
        if "locked" in str(e):
            return TamisError(
                f"{self.path}: the score cache stayed locked for {LOCK_TIMEOUT_S:.0f} s by another "
                "process; wait for it to finish or give this run its own --cache"
            )
        return TamisError(
            f"{self.path}: the score cache is damaged or unreadable ({e}); delete it (scores are "
            "recomputed) or use --fresh"
        )

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
