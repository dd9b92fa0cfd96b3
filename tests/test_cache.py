"""The score cache: round trips, damaged entries and files, and several writers at once."""

import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from tamis.base.errors import TamisError
from tamis.model.cache import ScoreCache, cache_key
from tamis.model.render import Encoded


def test_round_trip_and_pending_entries_are_visible(tmp_path):
    with ScoreCache(tmp_path / "c.sqlite", flush_every=10, flush_seconds=1e9) as cache:
        cache.put("a", np.array([1.5, 2.5], dtype=np.float32))
        np.testing.assert_array_equal(cache.get("a"), [1.5, 2.5])  # before any flush
        assert cache.get("b") is None
    with ScoreCache(tmp_path / "c.sqlite") as cache:
        np.testing.assert_array_equal(cache.get("a"), [1.5, 2.5])  # flushed on close


def test_key_depends_on_model_tokens_and_prompt_length():
    e = Encoded((1, 2, 3), 1)
    keys = {
        cache_key("m1", e),
        cache_key("m2", e),
        cache_key("m1", Encoded((1, 2, 4), 1)),
        cache_key("m1", Encoded((1, 2, 3), 2)),
    }
    assert len(keys) == 4 and cache_key("m1", e) == cache_key("m1", Encoded((1, 2, 3), 1))


def test_damaged_entry_is_recomputed_not_trusted(tmp_path):
    path = tmp_path / "c.sqlite"
    with ScoreCache(path) as cache:
        cache.put("a", np.array([1.0, 2.0], dtype=np.float32))
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE nll SET nll = ? WHERE key = 'a'", (np.array([9.0, 2.0], np.float32).tobytes(),)
        )
    with ScoreCache(path) as cache:
        assert cache.get("a") is None
        cache.put("a", np.array([1.0, 2.0], dtype=np.float32))
    with ScoreCache(path) as cache:
        np.testing.assert_array_equal(cache.get("a"), [1.0, 2.0])


def test_a_file_that_is_not_a_cache_is_a_clear_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TamisError, match="damaged or unreadable.*--fresh"):
        ScoreCache(path).get("a")


def _writer(path, name, n):
    with ScoreCache(path, flush_every=7, flush_seconds=0.01) as cache:
        for i in range(n):
            cache.put(f"{name}{i}", np.full(50, i, dtype=np.float32))


def test_two_processes_can_share_one_cache(tmp_path):
    path = tmp_path / "shared.sqlite"
    ScoreCache(path).close()
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, n, 300)) for n in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with ScoreCache(path) as cache:
        for name in "ab":
            for i in (0, 150, 299):
                np.testing.assert_array_equal(cache.get(f"{name}{i}"), np.full(50, i))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM nll").fetchone()[0] == 600
