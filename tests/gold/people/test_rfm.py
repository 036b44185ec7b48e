"""RFM scores (exact cut points, ties in one bin) and the 8-class segment (recency direction)."""

from __future__ import annotations

from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.gold.people.rfm import cut_points, rfm_scores

SCHEMA = "one_id string, rfm_recency_days int, rfm_frequency int, rfm_monetary decimal(18,2)"
OUT = f"{SCHEMA}, r_score int, f_score int, m_score int, rfm_segment string"


def _metrics(spark, rows):
    return spark.createDataFrame([(o, r, f, Decimal(str(m))) for o, r, f, m in rows], SCHEMA)


def _scores(spark, rows, bins=5):
    scored, model = rfm_scores(_metrics(spark, rows), bins)
    return {r.one_id: r for r in scored.collect()}, model


def test_cut_points_are_nearest_rank_quantiles_and_keep_ties_together(spark):
    # 10 frequencies; positions ceil(k*10/5) = 2, 4, 6, 8 → values 1, 2, 5, 8
    freqs = [1, 1, 1, 2, 3, 5, 8, 8, 9, 10]
    rows = [(f"P{i}", 10, f, 100) for i, f in enumerate(freqs)]
    assert cut_points(_metrics(spark, rows), "rfm_frequency", 5) == [1, 2, 5, 8]
    scores, model = _scores(spark, rows)
    by_value = {}
    for i, f in enumerate(freqs):
        by_value.setdefault(f, set()).add(scores[f"P{i}"].f_score)
    # equal values share one score; a value equal to a cut point is in the lower bin
    assert all(len(s) == 1 for s in by_value.values())
    assert {f: s.pop() for f, s in by_value.items()} == {1: 1, 2: 2, 3: 3, 5: 3, 8: 4, 9: 5, 10: 5}
    assert model.as_details()["cut_points"]["frequency"] == ["1", "2", "5", "8"]


def test_scores_are_deterministic_whatever_the_row_order(spark):
    rows = [(f"P{i}", i % 4, 1 + i % 3, 10 * (i % 5)) for i in range(20)]
    first, _ = _scores(spark, rows)
    second, _ = _scores(spark, list(reversed(rows)))
    assert first == second


def test_recency_fewer_days_scores_higher(spark):
    rows = [("A", 1, 1, 1), ("B", 10, 1, 1), ("C", 100, 1, 1), ("D", 200, 1, 1), ("E", 300, 1, 1)]
    scores, _ = _scores(spark, rows)
    assert [scores[k].r_score for k in "ABCDE"] == [5, 4, 3, 2, 1]


def test_eight_segments_recent_means_fewer_days_than_the_mean(spark):
    # means: R = 50, F = 3, M = 500 (over the 8 buyers)
    rows = [
        ("V", 10, 5, 900),  # recent, F high, M high
        ("K", 90, 5, 900),  # not recent, F high, M high
        ("D", 10, 1, 900),  # recent, F low, M high
        ("W", 90, 1, 900),  # not recent, F low, M high
        ("v", 10, 5, 100),
        ("k", 90, 5, 100),
        ("d", 10, 1, 100),
        ("w", 90, 1, 100),
    ]
    scores, model = _scores(spark, rows)
    assert {k: r.rfm_segment for k, r in scores.items()} == {
        "V": "重要价值客户",
        "K": "重要保持客户",
        "D": "重要发展客户",
        "W": "重要挽留客户",
        "v": "一般价值客户",
        "k": "一般保持客户",
        "d": "一般发展客户",
        "w": "一般挽留客户",
    }
    assert model.as_details()["means"] == {
        "recency_days": "50",
        "frequency": "3",
        "monetary": "500.00",
    }


def test_a_value_equal_to_the_mean_is_low_and_not_recent(spark):
    # means: R = 20, F = 2, M = 200; B sits exactly on every mean
    rows = [("A", 10, 1, 100), ("B", 20, 2, 200), ("C", 30, 3, 300)]
    scores, _ = _scores(spark, rows)
    assert scores["B"].rfm_segment == "一般挽留客户"
    assert scores["A"].rfm_segment == "一般发展客户"
    assert scores["C"].rfm_segment == "重要保持客户"


def test_all_buyers_equal(spark):
    scored, model = rfm_scores(_metrics(spark, [("A", 5, 2, 50), ("B", 5, 2, 50)]), 5)
    expected = spark.createDataFrame(
        [
            ("A", 5, 2, Decimal("50.00"), 5, 1, 1, "一般挽留客户"),
            ("B", 5, 2, Decimal("50.00"), 5, 1, 1, "一般挽留客户"),
        ],
        OUT,
    )
    assert_df_equality(scored, expected, ignore_row_order=True, ignore_nullable=True)
    assert model.buyers == 2


def test_single_buyer(spark):
    scores, model = _scores(spark, [("A", 3, 1, 10)])
    assert (scores["A"].r_score, scores["A"].f_score, scores["A"].m_score) == (5, 1, 1)
    assert model.buyers == 1


def test_no_buyers(spark):
    scored, model = rfm_scores(_metrics(spark, []), 5)
    assert scored.count() == 0
    assert scored.columns == OUT.replace(" string", "").replace(" int", "").replace(
        " decimal(18,2)", ""
    ).split(", ")
    assert model.buyers == 0 and model.as_details()["cut_points"] == {}


def test_negative_monetary_after_returns_is_scored(spark):
    scores, _ = _scores(spark, [("A", 1, 1, -50), ("B", 1, 1, 0), ("C", 1, 1, 80)])
    # 3 buyers, 5 bins: cut points -50, 0, 0, 80; not every score is used
    assert [scores[k].m_score for k in "ABC"] == [1, 2, 4]
