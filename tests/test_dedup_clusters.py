"""Connected components over integer edges (curate/dedup/clusters.py), against a plain
union-find, and independent of edge order and direction."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.dedup.clusters import clusters, connected_components, star_edges


def reference_labels(n: int, edges: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    # Label = smallest member of the component.
    smallest: dict[int, int] = {}
    for x in range(n):
        smallest.setdefault(find(x), x)
    return [smallest[find(x)] for x in range(n)]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=120))
    )
)
def test_components_match_union_find(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, edges = case
    u = np.array([a for a, _ in edges], dtype=np.int64)
    v = np.array([b for _, b in edges], dtype=np.int64)
    assert connected_components(n, u, v).tolist() == reference_labels(n, edges)


def test_labels_do_not_depend_on_edge_order_or_direction() -> None:
    rng = np.random.default_rng(0)
    u = rng.integers(0, 5_000, 8_000)
    v = rng.integers(0, 5_000, 8_000)
    base = connected_components(5_000, u, v)
    order = rng.permutation(len(u))
    np.testing.assert_array_equal(connected_components(5_000, v[order], u[order]), base)


def test_long_chain_is_one_component() -> None:
    # A path 0-1-2-...-n, listed backwards: the worst order for naive label propagation.
    n = 200_000
    u = np.arange(n - 1, 0, -1)
    labels = connected_components(n, u, u - 1)
    assert (labels == 0).all()


def test_clusters_renumber_sparse_nodes() -> None:
    big = 10**12  # index nodes live above the documents; no array of that size is made
    nodes, labels = clusters(np.array([5, big + 3, 7]), np.array([big + 3, 9, 8]))
    assert dict(zip(nodes.tolist(), labels.tolist())) == {5: 5, 9: 5, big + 3: 5, 7: 7, 8: 7}


def test_star_edges_link_each_group_to_its_smallest_member() -> None:
    frame = pl.DataFrame({"doc": [4, 1, 7, 3, 9, 2], "band": [10, 20, 10, 30, 10, 20]})
    u, v = star_edges(frame, "band")
    assert sorted(zip(u.tolist(), v.tolist())) == [(1, 2), (4, 7), (4, 9)]
    assert star_edges(frame.filter(pl.col("band") == 30), "band")[0].size == 0


def test_star_edges_on_two_key_columns() -> None:
    frame = pl.DataFrame({"doc": [0, 1, 2, 3], "hi": [1, 1, 1, 2], "lo": [5, 5, 6, 5]})
    u, v = star_edges(frame, ["hi", "lo"])
    assert list(zip(u.tolist(), v.tolist())) == [(0, 1)]
