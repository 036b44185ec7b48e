"""connected_components against a plain-Python union-find on the same edges.

The partition into connected components is unique, so matching union-find is matching
GraphFrames; labels must also be each component's smallest id. Spark rounds are the slow part,
so the structural cases are disjoint pieces of ONE graph computed once (components never interact);
each case still asserts every row of its own vertices.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import pytest

from lakehouse.oneid.components import Components, connected_components

Edge = tuple[int, int]
EDGE_DDL = "src long, dst long"


def union_find(edges: Iterable[Edge], vertices: Iterable[int] = ()) -> dict[int, int]:
    """Every vertex -> the smallest id of its component."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for v in vertices:
        root(v)
    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {v: root(v) for v in parent}


def rows_of(result: Components) -> dict[int, int]:
    rows = result.assignments.collect()
    got = {r["id"]: r["component"] for r in rows}
    assert len(got) == len(rows), "one row per vertex"
    return got


def ids(rng: random.Random, n: int, low: int, high: int) -> list[int]:
    return rng.sample(range(low, high), n)


def random_graph(seed: int, n: int, m: int, low: int) -> tuple[list[Edge], list[int]]:
    rng = random.Random(seed)
    vs = ids(rng, n, low, low + 10**9)
    return [(rng.choice(vs), rng.choice(vs)) for _ in range(m)], vs


def chain(seed: int, n: int, low: int) -> list[Edge]:
    rng = random.Random(seed)
    vs = ids(rng, n, low, low + 10**9)  # sampled, so the path visits ids in random order
    return [(a, b) if rng.random() < 0.5 else (b, a) for a, b in itertools.pairwise(vs)]


def star(centre: int, leaves: list[int], rng: random.Random) -> list[Edge]:
    return [(centre, leaf) if rng.random() < 0.5 else (leaf, centre) for leaf in leaves]


def build_cases() -> dict[str, tuple[list[Edge], list[int]]]:
    """name -> (edges, vertices given only through the vertex table); disjoint id ranges."""
    rng = random.Random(7)
    cases: dict[str, tuple[list[Edge], list[int]]] = {}
    # Below, around and above the giant-component threshold (m ~ n/2).
    cases["random_sparse"] = random_graph(1, 300, 120, 10**10)
    cases["random_medium"] = random_graph(2, 300, 160, 2 * 10**10)
    cases["random_dense"] = random_graph(3, 200, 900, -3 * 10**10)
    cases["chain"] = (chain(4, 300, 4 * 10**10), [])
    centre_and_leaves = ids(rng, 1001, 5 * 10**10, 5 * 10**10 + 10**6)
    leaves = sorted(centre_and_leaves[1:])
    centre = leaves.pop(500)  # the centre is not the smallest id: the star must be re-hung
    cases["big_star"] = (star(centre, [*leaves, centre_and_leaves[0]], rng), [])
    a_leaves = ids(rng, 51, 6 * 10**10, 6 * 10**10 + 10**6)
    b_leaves = ids(rng, 51, 6 * 10**10 + 10**6, 6 * 10**10 + 2 * 10**6)
    path = [a_leaves[0], *ids(rng, 10, 6 * 10**10 + 3 * 10**6, 6 * 10**10 + 4 * 10**6)]
    path.append(b_leaves[0])
    joined = star(a_leaves[0], a_leaves[1:], rng) + star(b_leaves[0], b_leaves[1:], rng)
    joined += list(itertools.pairwise(path))
    cases["two_stars_and_a_path"] = (joined, [])
    cases["singletons"] = ([], ids(rng, 100, 7 * 10**10, 7 * 10**10 + 10**6))
    loops = [(8 * 10**10, 8 * 10**10), (8 * 10**10 + 1, 8 * 10**10 + 1)]  # loop-only vertices
    loops += [(8 * 10**10 + 5, 8 * 10**10 + 6), (8 * 10**10 + 6, 8 * 10**10 + 6)]
    cases["self_loops"] = (loops, [8 * 10**10 + 1])
    base, _ = random_graph(9, 60, 50, 9 * 10**10)
    repeated = [e for a, b in base for e in ((a, b), (b, a), (a, b))]
    rng.shuffle(repeated)
    cases["duplicate_and_reversed"] = (repeated, [])
    neg = [(-5, -1), (-1, 3), (3, -(2**62)), (-(2**63), -(2**63) + 1), (-7, -8), (-8, -9)]
    cases["negative_ids"] = (neg, [-(2**63) + 5])
    return cases


CASES = build_cases()


@pytest.fixture(scope="module")
def zoo(spark) -> tuple[Components, dict[int, int]]:
    edges = [e for es, _ in CASES.values() for e in es]
    vertices = [v for _, vs in CASES.values() for v in vs]
    result = connected_components(
        spark.createDataFrame(edges, EDGE_DDL),
        spark.createDataFrame([(v,) for v in vertices], "id long"),
    )
    return result, rows_of(result)


def test_whole_graph_matches_union_find(zoo):
    result, got = zoo
    edges = [e for es, _ in CASES.values() for e in es]
    vertices = [v for _, vs in CASES.values() for v in vs]
    assert sorted(got.items()) == sorted(union_find(edges, vertices).items())
    assert result.assignments.schema.simpleString() == "struct<id:bigint,component:bigint>"
    assert 1 <= result.rounds <= 20  # O(log n) rounds: 300-chain and 1000-star included


@pytest.mark.parametrize("name", list(CASES))
def test_case_matches_union_find(zoo, name):
    _, got = zoo
    edges, vertices = CASES[name]
    expected = union_find(edges, vertices)
    assert sorted((v, got[v]) for v in expected) == sorted(expected.items())
    members: dict[int, list[int]] = {}
    for v in expected:
        members.setdefault(got[v], []).append(v)
    assert all(label == min(vs) for label, vs in members.items())


def test_case_shapes(zoo):
    """The cases are what they claim to be (guards the test data, not the code)."""
    _, got = zoo
    chain_ids = {v for e in CASES["chain"][0] for v in e}
    assert len(chain_ids) == 300 and len({got[v] for v in chain_ids}) == 1
    star_ids = {v for e in CASES["big_star"][0] for v in e}
    assert len(star_ids) == 1001 and {got[v] for v in star_ids} == {min(star_ids)}
    assert {got[v] for v in CASES["singletons"][1]} == set(CASES["singletons"][1])
    assert got[8 * 10**10] == 8 * 10**10 and got[8 * 10**10 + 6] == 8 * 10**10 + 5
    assert got[3] == -(2**62) and got[-(2**63) + 1] == -(2**63)


def test_empty_edges_keeps_vertices(spark):
    empty = spark.createDataFrame([], EDGE_DDL)
    result = connected_components(empty, spark.createDataFrame([(3,), (-1,), (3,)], "id long"))
    assert sorted(rows_of(result).items()) == [(-1, -1), (3, 3)]
    assert connected_components(empty).assignments.collect() == []


def test_custom_columns_int_ids_and_checkpoint_every_round(spark):
    edges, _ = random_graph(11, 60, 55, 0)
    edges = [(a % 2**31, b % 2**31) for a, b in edges]
    df = spark.createDataFrame(edges, "a int, b int")
    persistent = spark.sparkContext._jsc.getPersistentRDDs().size()
    result = connected_components(df, src="a", dst="b", checkpoint_every=1)
    assert sorted(rows_of(result).items()) == sorted(union_find(edges).items())
    # Only the result's own checkpoint is left: every round's data was released.
    assert spark.sparkContext._jsc.getPersistentRDDs().size() <= persistent + 1


def test_null_endpoint_is_an_error(spark):
    df = spark.createDataFrame([(1, 2), (2, None), (None, 4)], EDGE_DDL)
    with pytest.raises(ValueError, match=r"edges has 2 row\(s\) with a null src or dst"):
        connected_components(df)


def test_null_vertex_is_an_error(spark):
    edges = spark.createDataFrame([(1, 2)], EDGE_DDL)
    with pytest.raises(ValueError, match="vertices has 1 row"):
        connected_components(edges, spark.createDataFrame([(1,), (None,)], "id long"))


def test_too_few_rounds_is_an_error_not_a_wrong_answer(spark):
    df = spark.createDataFrame(chain(12, 300, 0), EDGE_DDL)
    with pytest.raises(RuntimeError, match="did not converge within max_rounds=2"):
        connected_components(df, max_rounds=2)


def test_bad_arguments(spark):
    df = spark.createDataFrame([(1, 2)], EDGE_DDL)
    with pytest.raises(ValueError, match="max_rounds"):
        connected_components(df, max_rounds=0)
    with pytest.raises(ValueError, match="checkpoint_every"):
        connected_components(df, checkpoint_every=0)
    with pytest.raises(ValueError, match="no column 'from'"):
        connected_components(df, src="from")
    with pytest.raises(TypeError, match="integral"):
        connected_components(spark.createDataFrame([("a", "b")], "src string, dst string"))
