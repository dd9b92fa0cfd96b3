"""Per-cluster selection: exact quotas, ranking within clusters, and the real embedder."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tamis.base.errors import TamisError
from tamis.model.embed import embed_texts, kmeans_clusters
from tamis.select.selection import Selection, cluster_quotas, select


def test_quotas_by_hand():
    assert cluster_quotas({0: 5, 1: 3, 2: 2}, 5) == {0: 3, 1: 1, 2: 1}  # 2.5, 1.5, 1.0
    assert cluster_quotas({0: 1, 1: 1, 2: 1}, 2) == {0: 1, 1: 1, 2: 0}  # ties: lower id first
    assert cluster_quotas({7: 4}, 10) == {7: 4}  # never more than there are


@given(st.dictionaries(st.integers(0, 30), st.integers(0, 50), min_size=1), st.integers(0, 400))
def test_quotas_add_up_exactly_and_stay_proportional(sizes, k):
    quotas = cluster_quotas(sizes, k)
    total = sum(sizes.values())
    assert sum(quotas.values()) == min(k, total)
    for c, n in sizes.items():
        assert 0 <= quotas[c] <= n
        assert abs(quotas[c] - min(k, total) * n / max(total, 1)) < 1 + 1e-9


def rows(values, clusters):
    return [
        {
            "index": i,
            "id": f"r{i}",
            "status": "ok",
            "detail": "",
            "truncated": False,
            "lp": v,
            "cluster": c,
        }
        for i, (v, c) in enumerate(zip(values, clusters, strict=True))
    ]


def test_per_cluster_keeps_the_best_of_each_cluster():
    # cluster 0 holds all the globally lowest LP values; per-cluster still keeps some of cluster 1
    r = rows([0.1, 0.2, 0.3, 0.4, 0.8, 0.9, 0.95, 0.99], [0, 0, 0, 0, 1, 1, 1, 1])
    glob = select(r, Selection(by="lp", keep=4))
    per = select(r, Selection(by="lp", keep=4, per_cluster=True))
    assert [d.kept for d in glob] == [True] * 4 + [False] * 4
    assert [d.kept for d in per] == [True, True, False, False, True, True, False, False]
    assert "in cluster 1: kept the lowest 2" in per[6].detail


def test_per_cluster_needs_the_cluster_column():
    r = [{k: v for k, v in row.items() if k != "cluster"} for row in rows([0.1], [0])]
    with pytest.raises(TamisError, match="--per-cluster needs the cluster column"):
        select(r, Selection(by="lp", per_cluster=True))


def test_kmeans_is_deterministic_and_order_free():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (10, 4)), rng.normal(5, 0.1, (10, 4))])
    labels = kmeans_clusters(points.astype(np.float32), 2)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]
    perm = rng.permutation(20)
    again = kmeans_clusters(points[perm].astype(np.float32), 2)
    np.testing.assert_array_equal(again, labels[perm])
    with pytest.raises(TamisError, match="--clusters 30"):
        kmeans_clusters(points.astype(np.float32), 30)


def test_real_embedder_groups_prompts_by_topic():
    texts = [
        "Write a poem about the sea.",
        "Compose a short poem about autumn leaves.",
        "Write a haiku about the moon.",
        "Convert 5 kilometres to miles.",
        "What is 17 multiplied by 3?",
        "Compute the square root of 144.",
    ]
    vectors = embed_texts(texts)
    assert vectors.shape == (6, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    labels = kmeans_clusters(vectors, 2)
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]


def test_cli_per_cluster_run(tmp_path, write_jsonl):
    import json

    import pyarrow.parquet as pq

    from tamis.cli import main

    prompts = ["Write a poem about {}.", "Convert {} kilometres to miles."]
    topics = ["rain", "snow", "the sun", "a river", "mountains", "the night"]
    data = [
        {
            "id": f"{k}{i}",
            "instruction": p.format(t if k == "p" else i + 2),
            "output": f"Answer {i}.",
        }
        for k, p in zip("pc", prompts, strict=True)
        for i, t in enumerate(topics)
    ]
    path = write_jsonl(data)
    out = tmp_path / "out"
    args = ["run", str(path), "-o", str(out), "--scorer", "ppl,cluster", "--clusters", "2"]
    assert main([*args, "--per-cluster", "--keep", "4", "-q"]) == 0
    table = pq.read_table(out / "scores.parquet")
    clusters = dict(
        zip(table.column("id").to_pylist(), table.column("cluster").to_pylist(), strict=True)
    )
    poems = {clusters[f"p{i}"] for i in range(6)}
    conversions = {clusters[f"c{i}"] for i in range(6)}
    assert len(poems) == 1 and len(conversions) == 1 and poems != conversions
    kept = [json.loads(line)["id"] for line in (out / "selected.jsonl").open()]
    assert len(kept) == 4 and sum(k.startswith("p") for k in kept) == 2
