"""``cluster``: a k-means cluster id per record from its prompt's sentence embedding.

Not a quality score (no better direction): ``--per-cluster`` selection uses it to keep the best
fraction *within each cluster*, as Mekala et al. 2024 do with learning percentage, so a selection
of hard records keeps the data's spread of tasks. Embeddings: all-MiniLM-L6-v2 of the prompt
text (:mod:`tamis.model.embed`); k-means: scikit-learn, seeded, independent of record order.
With ``k`` unset the number of clusters is ``round(sqrt(n / 2))``, between 1 and 100.
"""

from __future__ import annotations

import math

from tamis.data.records import Record
from tamis.scorers.base import TextScorer


def auto_clusters(n: int) -> int:
    """The default number of clusters for ``n`` records: ``round(sqrt(n / 2))`` in [1, 100]."""
    return max(1, min(100, round(math.sqrt(n / 2))))


def cluster_scorer(k: int | None = None, seed: int = 0) -> TextScorer:
    """The ``cluster`` scorer with ``k`` clusters (None: :func:`auto_clusters`)."""

    def compute_all(records: list[Record]) -> dict[str, list[float]]:
        from tamis.model.embed import embed_texts, kmeans_clusters, prompt_text

        if not records:
            return {"cluster": []}
        vectors = embed_texts([prompt_text(r) for r in records])
        labels = kmeans_clusters(vectors, k or auto_clusters(len(records)), seed)
        return {"cluster": [int(x) for x in labels]}

    return TextScorer("cluster", ("cluster",), "none", compute_all)


CLUSTER = cluster_scorer()
