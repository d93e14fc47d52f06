"""Candidate pairs -> clusters -> one survivor per cluster, over integer arrays.

Nodes are integers; a cluster's label is its smallest node, whatever the order of the
edges, so the result does not depend on how many workers produced them (or in which
order). Memory: two int64 arrays of edges plus one int64 per node that has an edge, i.e.
proportional to the documents that have a duplicate, not to the corpus.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def star_edges(frame: pl.DataFrame, key: str | list[str], node: str = "doc") -> tuple[np.ndarray, np.ndarray]:
    """Edges (first node, other node) within each group of rows sharing `key`: a group of
    k nodes gives k - 1 edges (a star), not k(k-1)/2 pairs, and the same components."""
    keys = [key] if isinstance(key, str) else key
    shared = frame.filter(pl.struct(keys).is_duplicated() if len(keys) > 1 else pl.col(keys[0]).is_duplicated())
    if shared.is_empty():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    # group_by + join: ~2x faster than a window `min().over(keys)` at 10^6 rows.
    roots = shared.group_by(keys).agg(pl.col(node).min().alias("_root"))
    edges = shared.join(roots, on=keys).filter(pl.col(node) != pl.col("_root"))
    return edges.get_column("_root").to_numpy().astype(np.int64), edges.get_column(node).to_numpy().astype(np.int64)


def connected_components(num_nodes: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Label of each node 0..num_nodes-1: the smallest node of its component.

    Hook-and-compress (Shiloach-Vishkin style) in numpy: every round points the larger root
    of each edge at the smaller one, then pointer-jumps until every node points at a root.
    Rounds are O(log n) in practice; each is a few vectorised passes over the edges."""
    parent = np.arange(num_nodes, dtype=np.int64)
    if len(u) == 0:
        return parent
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    while True:
        ru, rv = parent[u], parent[v]
        differ = ru != rv
        if not differ.any():
            return parent
        lo = np.minimum(ru[differ], rv[differ])
        hi = np.maximum(ru[differ], rv[differ])
        np.minimum.at(parent, hi, lo)
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def compact(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber the nodes that appear in edges as 0..k-1, keeping their order (so the
    smallest-node label stays the smallest original node). Returns (nodes, u', v')."""
    nodes = np.unique(np.concatenate([u, v]))
    return nodes, np.searchsorted(nodes, u), np.searchsorted(nodes, v)


def clusters(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(node, label) for every node in an edge; label = smallest original node of its cluster."""
    if len(u) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    nodes, cu, cv = compact(u, v)
    labels = connected_components(len(nodes), cu, cv)
    return nodes, nodes[labels]
