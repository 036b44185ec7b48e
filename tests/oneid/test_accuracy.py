"""Pairwise precision and recall of One ID on hand-counted examples: the integration test's
precision bound (no strangers merged) rests on these counts."""

from __future__ import annotations

from lakehouse.oneid.accuracy import PairScores, pair_scores

MAP = "identifier_type string, identifier_value string, one_id string"
TRUTH = "person_id string, identifier_type string, value string"


def test_a_merge_of_two_people_costs_precision_an_unmapped_value_costs_recall(spark):
    """p1 owns a and b, p2 owns c and d. The map puts a, b and c in one_id X and does not hold
    d (suppressed). True pairs: ab, cd (2). Predicted: ab, ac, bc (3). Correct: ab (1)."""
    identity_map = spark.createDataFrame(
        [("phone", "a", "X"), ("phone", "b", "X"), ("email", "c", "X")], MAP
    )
    truth = spark.createDataFrame(
        [
            ("p1", "phone", "a"),
            ("p1", "phone", "b"),
            ("p2", "email", "c"),
            ("p2", "email", "d"),
            ("p2", "email", "d"),  # the truth listing a value twice counts it once
        ],
        TRUTH,
    )
    scores = pair_scores(identity_map, truth)
    assert scores == PairScores(
        true_pairs=2, predicted_pairs=3, correct_pairs=1, identifiers=4, mapped=3
    )
    assert (scores.precision, scores.recall) == (1 / 3, 1 / 2)


def test_a_value_of_two_owners_is_a_predicted_pair_no_one_owns(spark):
    """A family tablet's openid e, owned by p3 and p4 in the truth and mapped to Y: its two
    copies fall in one cluster, a predicted pair that is not correct. A value of the same
    text under another type is another identifier."""
    identity_map = spark.createDataFrame([("openid", "e", "Y"), ("phone", "e", "Z")], MAP)
    truth = spark.createDataFrame(
        [("p3", "openid", "e"), ("p4", "openid", "e"), ("p4", "phone", "e")], TRUTH
    )
    scores = pair_scores(identity_map, truth)
    assert scores == PairScores(
        true_pairs=1, predicted_pairs=1, correct_pairs=0, identifiers=3, mapped=3
    )
    assert (scores.precision, scores.recall) == (0.0, 0.0)


def test_nothing_to_pair_scores_one(spark):
    identity_map = spark.createDataFrame([], MAP)
    truth = spark.createDataFrame([("p1", "phone", "a")], TRUTH)
    scores = pair_scores(identity_map, truth)
    assert (scores.true_pairs, scores.predicted_pairs, scores.mapped) == (0, 0, 0)
    assert (scores.precision, scores.recall) == (1.0, 1.0)
