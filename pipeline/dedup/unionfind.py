"""Clusters from candidate pairs, and the one document each cluster keeps.

Connected components (scipy's union-find over a sparse graph) turn pairs into clusters. Each
cluster keeps one document by a rule that gives the same answer on every run and in any order of
inputs: the highest quality score (a missing score counts as lowest), then the smallest id. Only
documents still in `docs` can be kept; members removed by earlier runs stay removed, and still
link the cluster together, which is how a new build is deduplicated against earlier ones.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def cluster_labels(pairs: np.ndarray, n_docs: int) -> np.ndarray:
    """Component label of each of n_docs documents, given (m, 2) pairs of doc numbers."""
    if len(pairs) == 0:
        return np.arange(n_docs, dtype=np.int64)
    # imported here: a dataset with no candidate pairs (most small builds) never pays for scipy
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix(
        (np.ones(len(pairs), np.bool_), (pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64))),
        shape=(n_docs, n_docs),
    ).tocsr()
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def clustered_docs(labels: np.ndarray) -> pl.DataFrame:
    """(doc, cluster) of the documents in clusters of two or more."""
    sizes = np.bincount(labels)
    docs = np.flatnonzero(sizes[labels] > 1)
    return pl.DataFrame({"doc": docs.astype(np.uint32), "cluster": labels[docs]})


def choose_keepers(members: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the keeper rule to cluster members.

    `members` has doc, cluster, id, quality_score and present (still in docs). Returns
    (kept: id, dup_cluster) with one row per cluster that has a present member, and
    (removed: id, detail) for every other present member, detail being the kept document's id.
    """
    ranked = members.filter(pl.col("present")).sort(
        ["cluster", "quality_score", "id"], descending=[False, True, False], nulls_last=True
    )
    keeper = ranked.group_by("cluster", maintain_order=True).agg(pl.col("id").first().alias("keeper"))
    ranked = ranked.join(keeper, on="cluster")
    kept = ranked.filter(pl.col("id") == pl.col("keeper")).select("id", pl.col("keeper").alias("dup_cluster"))
    removed = ranked.filter(pl.col("id") != pl.col("keeper")).select("id", pl.col("keeper").alias("detail"))
    return kept, removed
