"""Selectors: the order in which :func:`tamis.select.selection.select` takes records, and the
budgets it takes them under. Scorers never drop a record; selectors do. Each method turns the
candidates (the records that passed the junk filter, ``--filter`` and the thresholds) into an order,
and the budget keeps a prefix of it: ``--keep`` records and/or ``--keep-tokens`` tokens.

- ``top`` (the default): the best ``--by`` score first (ties by id). ``--by random`` is a seeded
  random order (:func:`random_key`), the baseline every method must beat at the same budget.
  ``--by ifd`` with its default ``--drop-ifd-above 1`` is Superfiltering (Li et al. 2024,
  "Superfiltering: Weak-to-Strong Data Filtering for Fast Instruction-Tuning"): the highest IFD
  below 1, the records where the prompt helps least but still helps.
- ``s2l`` (Yang et al. 2024, "SmallToLarge: Scalable Data Selection for Fine-tuning Large
  Language Models by Summarizing Training Trajectories of Small Models"): records are clustered
  by their loss trajectory during the small model's fine-tuning (the log of ``p0 .. pN`` from
  ``--scorer lp``: records that the model learns alike), and the budget is spread evenly over
  the clusters, the smallest first, at random within each (:func:`s2l_order`). Cost: the LP run,
  then k-means on N + 1 numbers per record (seconds).
- ``diverse`` (DEITA's Repr Filter, Liu et al. 2024, "What Makes Good Data for Alignment?"): the
  ``--by`` order, but a record whose MiniLM embedding (prompt and response) has a cosine
  similarity of ``--max-similarity`` or more with a record already taken is skipped (reason
  ``too_similar``), so near-paraphrases do not fill the budget. Cost: one MiniLM pass over the
  candidates (about 100 records/s on two cores) and one similarity row per record taken.

Every order is deterministic given ``--seed`` and independent of the input's record order.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from typing import Any

import numpy as np

from tamis.base.errors import TamisError

METHODS = ("top", "s2l", "diverse")
RANDOM = "random"  # the --by value for a seeded random order
# The default recipe: the junk filter, then a seeded random sample at the budget. Chosen by the
# selection experiment of docs/results.md ("Does selection pay?"): Gemma 3 270M, LoRA, trained
# on 25% of the tokens of a 20%-noisy Alpaca pool, 3 paired seeds, held-out loss on clean
# records. After the junk filter, a random pick trained as well as any ranking (1.927 vs random
# 1.929 nats); ranking by a score did worse (lowest perplexity +0.046, Superfiltering's IFD band
# +0.008, S2L +0.007). Low perplexity means easy and alike, not useful.
DEFAULT_BY = RANDOM
RECIPE = (
    "drop junk, then a seeded random sample at the budget (in tamis' "
    "selection experiment, docs/results.md, it trained Gemma 3 270M to the lowest held-out loss "
    "on a 20%-noisy Alpaca pool, tied with random, while ranking by perplexity, IFD or S2L did "
    "worse; on 30%-noisy pools its held-out loss was lower than random's: on 6 of 8 seeds "
    "with 400 records (0.007 nats on average), on 3 of 3 with 1,800 (0.016))"
)
TOKEN_COLUMNS = ("prompt_tokens", "response_tokens")
DEFAULT_MAX_SIMILARITY = 0.9  # DEITA's threshold on cosine similarity
_TRAJECTORY = re.compile(r"^p(\d+)$")


def random_key(seed: int, rid: Any) -> float:
    """A uniform number in [0, 1) from ``(seed, id)``: a random order that does not depend on the
    records' order or on how many there are."""
    digest = hashlib.sha256(f"{seed}\0{rid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def record_tokens(row: dict[str, Any]) -> int:
    """The tokens a record costs in training: ``train_tokens`` where a row has it (the target's
    own count: ``tamis experiment``'s ``budget_counts: target``), else its prompt and its
    response as the scorer rendered them."""
    if row.get("train_tokens") is not None:
        return int(row["train_tokens"])
    return int(row["prompt_tokens"]) + int(row["response_tokens"])


def parse_tokens(text: str) -> int:
    """``"200000"``, ``"200k"``, ``"1.5M"`` -> a positive number of tokens."""
    raw = text.strip()
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(raw[-1:].lower(), 1)
    number = raw[:-1] if scale > 1 else raw
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise TamisError(
            f"--keep-tokens '{text}' is not a whole number of tokens; give e.g. 200000 or 200k"
        )
    return int(value)


def trajectory_columns(columns: list[str]) -> list[str]:
    """``p0 .. pN`` among ``columns``, in epoch order (empty when there are fewer than two)."""
    found = sorted((int(m.group(1)), c) for c in columns if (m := _TRAJECTORY.match(c)))
    return [c for _, c in found] if len(found) >= 2 else []


def s2l_order(
    rows: list[dict[str, Any]], columns: list[str], k: int | None, seed: int
) -> tuple[list[dict[str, Any]], dict[int, tuple[int, int]]]:
    """S2L's balanced sampling as an order: ``rows`` clustered by their log-perplexity trajectory
    (``columns``, k-means with ``k`` clusters, default ``round(sqrt(n / 2))``), then taken round
    by round, one record from each cluster per round, smallest cluster first, each cluster's
    records in :func:`random_key` order. Any prefix of this order is S2L's selection at that
    budget: a cluster smaller than its even share is taken whole, and what it leaves goes evenly
    to the others. Also returns ``{index: (cluster, clusters)}`` for the details."""
    from tamis.model.embed import kmeans_clusters
    from tamis.scorers.cluster import auto_clusters

    if not rows:
        return [], {}
    k = min(k or auto_clusters(len(rows)), len(rows))
    features = np.log(np.array([[float(r[c]) for c in columns] for r in rows], dtype=np.float64))
    labels = kmeans_clusters(features.astype(np.float32), k, seed)
    members: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row, label in zip(rows, labels, strict=True):
        members[int(label)].append(row)
    for group in members.values():
        group.sort(key=lambda r: (random_key(seed, r["id"]), str(r["id"])))
    clusters = sorted(members, key=lambda c: (len(members[c]), c))
    order = []
    for i in range(max(len(g) for g in members.values())):
        order.extend(members[c][i] for c in clusters if i < len(members[c]))
    where = {r["index"]: (int(label), k) for r, label in zip(rows, labels, strict=True)}
    return order, where


class Diversity:
    """DEITA's Repr Filter over unit vectors: a record is too similar when its cosine similarity
    with one already taken reaches ``max_similarity``."""

    def __init__(self, vectors: dict[int, np.ndarray], max_similarity: float):
        self.vectors = vectors
        self.max_similarity = max_similarity
        dim = len(next(iter(vectors.values()))) if vectors else 0
        self.taken = np.empty((len(vectors), dim), dtype=np.float32)
        self.taken_ids: list[Any] = []

    def check(self, row: dict[str, Any]) -> str:
        """``""`` when the record may be taken, else why it is too similar."""
        n = len(self.taken_ids)
        if not n:
            return ""
        sims = self.taken[:n] @ self.vectors[row["index"]]
        j = int(np.argmax(sims))
        if sims[j] < self.max_similarity:
            return ""
        return (
            f"cosine similarity {float(sims[j]):.3f} >= {self.max_similarity:g} with record "
            f"{self.taken_ids[j]}, taken before it"
        )

    def add(self, row: dict[str, Any]) -> None:
        """Remember a record taken."""
        self.taken[len(self.taken_ids)] = self.vectors[row["index"]]
        self.taken_ids.append(row["id"])
