"""The gate end to end: one-pass split by policy, the verdicts, parameters, references, results.

The gate judges row-level rules from its own flags and lets GX validate the table-level ones;
the tests below hold both against GX validating every rule itself. The example suite runs once
for the module and the other tests use small suites.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from chispa import assert_df_equality

from lakehouse.config import ConfigError
from lakehouse.quality import (
    DQ_RESULTS_SCHEMA,
    GateError,
    GateFailed,
    QualitySettings,
    gx_context,
    parse_suite,
    raise_if_failed,
    record_results,
    run_gate,
)
from lakehouse.quality.gate import validate_with_gx
from lakehouse.quality.suite import load_suite, rule_columns
from lakehouse.tables import Tables

RUN_DATE = date(2026, 3, 2)
ORDERS_DDL = (
    "order_key string, channel string, channel_order_no string, status string, "
    "paid_amount double, order_date date, mobile string, store_code string"
)
D1, D9 = date(2026, 3, 1), date(2026, 3, 9)
GOOD = [
    ("O1", "TMALL", "T1", "PAID", 100.0, D1, "13800138000", "S01"),
    ("O5", "WECHAT", "W1", "PAID", 20.0, RUN_DATE, "12345", "S02"),  # warn rule only
    ("O6", None, None, "CREATED", 10.0, D1, None, "S01"),  # compound key all null: ignored
    ("O7", None, None, "CREATED", 10.0, D1, None, "S01"),
]
BAD = [
    ("O2", "TMALL", "T2", "BOGUS", -5.0, D9, "123", "S99"),  # four quarantine rules
    ("O3", "JD", "J1", "PAID", None, None, None, None),  # nulls pass; duplicated key
    ("O3", "JD", "J1", "PAID", None, None, None, None),
    (None, "JD", "J2", "PAID", 50.0, D1, "13900139000", "S01"),  # null key
]
PARAMETERS = {"run_date": "2026-03-02", "expected_rows": 8, "revenue_min": 0, "revenue_max": 1e4}


@pytest.fixture(scope="module")
def orders_gate(spark, tmp_path_factory):
    """The example suite, conf/quality.yml's policies, one GX validation; results recorded."""
    orders = spark.createDataFrame(GOOD + BAD, ORDERS_DDL)
    stores = spark.createDataFrame([("S01",), ("S02",)], "store_code string")
    outcome = run_gate(
        orders,
        "example.orders",
        key_columns=["order_key"],
        run_id="run-1",
        run_date=RUN_DATE,
        parameters=PARAMETERS,
        references={"master.stores": stores},
    )
    warehouse = tmp_path_factory.mktemp("dq_warehouse")
    version = record_results(Tables(spark, str(warehouse)), outcome)
    yield outcome, warehouse, version
    outcome.release()


def test_good_rows_fail_no_quarantine_rule(spark, orders_gate):
    outcome, _, _ = orders_gate
    expected = spark.createDataFrame(GOOD, ORDERS_DDL)
    assert_df_equality(outcome.good, expected, ignore_row_order=True, ignore_nullable=True)


def test_one_quarantine_row_per_failing_row_and_rule(orders_gate):
    outcome, _, _ = orders_gate
    quarantined = outcome.quarantined.collect()
    assert len(quarantined) == 9  # the two O3 rows each fail two rules
    assert {(r.record_key, r.expectation, r.column, r.value) for r in quarantined} == {
        ("O2", "status_valid", "status", "BOGUS"),
        ("O2", "paid_amount_in_range", "paid_amount", "-5.0"),
        ("O2", "order_date_not_future", "order_date", "2026-03-09"),
        ("O2", "store_known", "store_code", "S99"),
        ("O3", "order_key_unique", "order_key", "O3"),
        (
            "O3",
            "channel_order_unique",
            "channel,channel_order_no",
            "channel=JD|channel_order_no=J1",
        ),
        ("null", "order_key_not_null", "order_key", None),
    }
    amount = next(r for r in quarantined if r.expectation == "paid_amount_in_range")
    assert amount.reason == "实付金额应在 0–100000 元之间"  # the suite's description
    assert amount.rule.startswith('expect_column_values_to_be_between(column="paid_amount"')
    assert (amount.table, amount.run_id, amount.run_date) == ("example.orders", "run-1", RUN_DATE)
    assert json.loads(amount.record)["status"] == "BOGUS"
    null_key = next(r for r in quarantined if r.expectation == "order_key_not_null")
    assert json.loads(null_key.record)["order_key"] is None  # nulls kept in the replay record


def test_policies_and_verdicts(orders_gate):
    outcome, _, _ = orders_gate
    by_name = {r.name: r for r in outcome.results}
    assert by_name["mobile_format"].policy == "warn"
    assert not by_name["mobile_format"].success
    assert [r.name for r in outcome.warnings] == ["mobile_format"]
    assert by_name["row_count_matches"].observed_value == 8
    assert by_name["revenue_reconciles"].observed_value == pytest.approx(185.0)
    assert outcome.passed and outcome.failed == []


def test_gx_counts_agree_with_the_spark_predicates(orders_gate):
    outcome, _, _ = orders_gate
    counts = {r.name: (r.unexpected_count, r.failing_rows) for r in outcome.results if r.row_level}
    assert counts == {
        "order_key_not_null": (1, 1),
        "order_key_unique": (2, 2),
        "channel_order_unique": (2, 2),
        "status_valid": (1, 1),
        "paid_amount_in_range": (1, 1),
        "order_date_not_future": (1, 1),
        "mobile_format": (2, 2),
        "store_known": (1, 1),
    }


def test_results_land_in_ops_dq_results_with_data_docs(spark, orders_gate):
    outcome, warehouse, version = orders_gate
    assert version == 0
    table = spark.read.format("delta").load(str(warehouse / "ops" / "dq_results"))
    assert table.schema.names == DQ_RESULTS_SCHEMA.names
    rows = {r.expectation: r for r in table.collect()}
    assert len(rows) == len(outcome.results)
    assert rows["store_known"].unexpected_count == 1
    assert json.loads(rows["store_known"].unexpected_examples) == ["S99"]
    assert rows["row_count_matches"].observed_value == "8"
    assert (rows["row_count_matches"].policy, rows["row_count_matches"].success) == ("fail", True)
    assert spark.catalog.tableExists("ops.dq_results")
    assert (warehouse / "_dq_docs" / "index.html").is_file()
    assert outcome.docs_url and Path(outcome.docs_url.removeprefix("file://")).is_file()


# --- small suites: fail policy, parameters, misuse ---------------------------------------------

EVENTS = parse_suite(
    {
        "name": "t.events",
        "expectations": [
            {
                "type": "expect_table_row_count_to_equal",
                "kwargs": {"value": {"$PARAMETER": "expected_rows"}},
                "meta": {"name": "row_count"},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "day", "max_value": {"$PARAMETER": "run_date"}},
                "meta": {"name": "not_future"},
            },
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "kind", "value_set": ["view", "buy"], "mostly": 0.5},
                "meta": {"name": "kind_valid"},
            },
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {
                    "column": "kind",
                    "value_set": ["buy"],
                    "row_condition": "day >= '2026-03-02'",
                    "condition_parser": "spark",
                },
                "meta": {"name": "late_kind"},
            },
        ],
    },
    "test",
)
EVENT_POLICIES = QualitySettings.model_validate(
    {
        "default": "fail",
        "tables": {"t.events": {"expectations": {"not_future": "quarantine", "late_kind": "warn"}}},
    }
)


@pytest.fixture(scope="module")
def events(spark):
    rows = [(1, D1, "view"), (2, RUN_DATE, "buy"), (3, D9, "oops")]
    return spark.createDataFrame(rows, "id int, day date, kind string")


def _events_gate(events, **parameters):
    return run_gate(
        events,
        EVENTS,
        key_columns=["id"],
        run_id="run-2",
        run_date=RUN_DATE,
        policies=EVENT_POLICIES,
        parameters=parameters,
    )


def test_run_time_parameters_and_mostly(events):
    with _events_gate(events, expected_rows=3, run_date=RUN_DATE) as outcome:
        assert outcome.passed  # kind_valid: 1 of 3 bad, mostly 0.5 -> GX passes it
        late = next(r for r in outcome.results if r.name == "late_kind")
        assert (late.policy, late.success, late.unexpected_count, late.failing_rows) == (
            "warn",
            False,
            1,  # only rows matching row_condition are checked: day 2026-03-09, 'oops'
            1,
        )
        assert [r.id for r in outcome.good.collect()] == [1, 2]
        assert [(r.record_key, r.value) for r in outcome.quarantined.collect()] == [
            ("3", "2026-03-09")
        ]


def test_fail_policy_fails_the_gate_and_raise_if_failed_says_why(events):
    outcome = _events_gate(events, expected_rows=4, run_date="2026-03-31")
    assert not outcome.passed
    assert [r.name for r in outcome.failed] == ["row_count"]
    with pytest.raises(
        GateFailed,
        match=r"row_count: expect_table_row_count_to_equal\(value=4\): "
        r"observed 3",
    ):
        raise_if_failed(outcome)
    assert outcome._cached is None  # released before raising


def test_missing_parameter_reference_or_column_fails_before_any_work(spark, events):
    with pytest.raises(GateError, match="No value found for \\$PARAMETER expected_rows"):
        _events_gate(events, run_date=RUN_DATE)
    with pytest.raises(GateError, match="columns the DataFrame does not have: day"):
        _events_gate(events.drop("day"), expected_rows=3, run_date=RUN_DATE)
    orders = spark.createDataFrame([], ORDERS_DDL)
    with pytest.raises(GateError, match=r"references master\.stores"):
        run_gate(orders, "example.orders", key_columns=["order_key"], run_id="r", run_date=RUN_DATE)
    with pytest.raises(GateError, match=r"key columns \['nope'\]"):
        run_gate(events, EVENTS, key_columns=["nope"], run_id="r", run_date=RUN_DATE)


def test_unknown_policy_for_the_suite_is_a_configuration_error(events):
    policies = {"tables": {"t.events": {"expectations": {"not_futur": "warn"}}}}
    with pytest.raises(ConfigError, match="not_futur"):
        run_gate(
            events, EVENTS, key_columns=["id"], run_id="r", run_date=RUN_DATE, policies=policies
        )


def test_gx_uses_the_active_session_unchanged(spark, orders_gate):
    datasource = gx_context().data_sources.get("lakehouse")
    assert datasource.get_spark() is spark
    assert not datasource.persist  # the gate caches and releases its input itself
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"


def test_an_expectation_gx_cannot_evaluate_fails_the_gate(events):
    suite = parse_suite(
        {
            "name": "t.events",
            "expectations": [
                {
                    "type": "expect_column_values_to_be_of_type",
                    "kwargs": {"column": "kind", "type_": "NoSuchType"},
                }
            ],
        },
        "test",
    )
    with run_gate(events, suite, key_columns=["id"], run_id="r", run_date=RUN_DATE) as outcome:
        assert not outcome.passed
        with pytest.raises(GateFailed, match="raised No recognized spark types"):
            raise_if_failed(outcome)


def test_results_of_a_job_are_appended_once_at_its_end_even_when_it_fails(
    spark, orders_gate, tmp_path
):
    from lakehouse.quality.results import DQ_RESULTS, batched_results

    outcome, _, _ = orders_gate
    tables = Tables(spark, str(tmp_path / "wh"))
    with pytest.raises(RuntimeError, match="the job failed"), batched_results():
        assert record_results(tables, outcome, data_docs=False) is None
        assert record_results(tables, outcome, data_docs=False) is None
        assert not tables.exists(*DQ_RESULTS)  # nothing written yet
        raise RuntimeError("the job failed")
    assert tables.version(*DQ_RESULTS) == 0  # one commit
    assert tables.read(*DQ_RESULTS).count() == 2 * len(outcome.results)


# --- row-level verdicts come from the flags, and equal GX's own -------------------------------

EDGE_SUITE = parse_suite(
    {
        "name": "t.edges",
        "expectations": [
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "kind", "mostly": 0.6},
                "meta": {"name": "kind_mostly_present"},
            },
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "id"},
                "meta": {"name": "id_present"},
            },
            {
                "type": "expect_column_values_to_be_unique",
                "kwargs": {"column": "kind", "mostly": 0.2},
                "meta": {"name": "kind_unique_mostly"},
            },
            {
                "type": "expect_compound_columns_to_be_unique",
                "kwargs": {
                    "column_list": ["kind", "shop"],
                    "ignore_row_if": "any_value_is_missing",
                },
                "meta": {"name": "kind_shop_unique_any"},
            },
            {
                "type": "expect_compound_columns_to_be_unique",
                "kwargs": {"column_list": ["kind", "shop"], "ignore_row_if": "never"},
                "meta": {"name": "kind_shop_unique_never"},
            },
            {
                "type": "expect_column_values_to_match_regex",
                "kwargs": {
                    "column": "shop",
                    "regex": "^S[0-9]+$",
                    "row_condition": "id > 2",
                    "condition_parser": "spark",
                    "mostly": 0.5,
                },
                "meta": {"name": "shop_code_late"},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "id", "min_value": 100},
                "meta": {"name": "nothing_applies_to_nulls_only"},
            },
            {
                "type": "expect_column_values_to_not_be_in_set",
                "kwargs": {"column": "shop", "value_set": ["S9"]},
                "meta": {"name": "no_closed_shop"},
            },
        ],
    },
    "test",
)
EDGE_ROWS = [
    (1, "view", "S1"),
    (2, "view", "S1"),
    (3, None, "X"),
    (4, "buy", None),
    (5, "buy", None),
    (None, None, "S9"),
    (7, "buy", "S2"),
]


def _name(result):
    config = result.expectation_config
    return (config.meta or {}).get("name") or f"{config.type}:{rule_columns(config.kwargs)}"


def _gx_fields(result):
    res = result.result or {}
    return (
        bool(result.success),
        res.get("element_count"),
        res.get("unexpected_count"),
        None if res.get("unexpected_percent") is None else round(res["unexpected_percent"], 9),
        res.get("missing_count"),
        sorted(str(v) for v in res.get("partial_unexpected_list") or []),
    )


@pytest.mark.parametrize("empty", [False, True], ids=["dirty", "empty"])
def test_row_level_verdicts_equal_gx_validating_the_same_rules(spark, empty):
    """The gate judges row-level rules from its flags; GX judging them itself agrees on the
    verdict, the counts, the percentages and the examples (mostly, nulls, row_condition,
    ignore_row_if, an empty batch)."""
    frame = spark.createDataFrame(
        [] if empty else EDGE_ROWS, "id int, kind string, shop string"
    ).where("true")
    with run_gate(frame, EDGE_SUITE, key_columns=["id"], run_id="r", run_date=RUN_DATE) as outcome:
        ours = {_name(r): _gx_fields(r) for r in outcome.validation.results}
        by_name = {r.name: r for r in outcome.results}
    gx_itself = validate_with_gx(frame, EDGE_SUITE, {}, {}, examples=20)
    theirs = {_name(r): _gx_fields(r) for r in gx_itself.results}
    assert ours == theirs
    assert len(ours) == len(EDGE_SUITE.rules)
    if not empty:  # the fixture is dirty enough to exercise both verdicts
        assert {name for name, fields in ours.items() if not fields[0]} == {
            "id_present",
            "kind_unique_mostly",  # 5 non-null values, all repeated: 0 % unique < 20 %
            "kind_shop_unique_any",  # (view, S1) twice; rows with a missing value ignored
            "kind_shop_unique_never",
            "nothing_applies_to_nulls_only",
            "no_closed_shop",
        }
        assert by_name["kind_mostly_present"].unexpected_count == 2  # 2 of 7 null: passes 0.6
        assert by_name["shop_code_late"].element_count == 4  # rows with id > 2


def test_the_example_suite_verdicts_equal_gx_validating_every_rule(spark, orders_gate):
    outcome, _, _ = orders_gate
    orders = spark.createDataFrame(GOOD + BAD, ORDERS_DDL)
    stores = spark.createDataFrame([("S01",), ("S02",)], "store_code string")
    suite = load_suite("example.orders")
    gx_itself = validate_with_gx(orders, suite, PARAMETERS, {"master.stores": stores}, 20)
    theirs = {_name(r): _gx_fields(r) for r in gx_itself.results}
    ours = {
        r.expectation_config.meta.get("name"): _gx_fields(r) for r in outcome.validation.results
    }
    assert ours == theirs
    assert outcome.validation.statistics["evaluated_expectations"] == len(suite.rules)


def test_a_jobs_gates_get_their_data_docs_in_one_site_build_when_it_ends(
    spark, orders_gate, tmp_path, monkeypatch
):
    """One index page per job, not per gate: the index lists every validation of the process."""
    import dataclasses

    from lakehouse.quality.gate import gx_context
    from lakehouse.quality.results import batched_results

    outcome, _, _ = orders_gate
    first, second = (
        dataclasses.replace(outcome, run_id=run_id, docs_url=None) for run_id in ("job-a", "job-b")
    )
    context = gx_context()
    builds = []
    real_build = context.build_data_docs

    def counted(*args, **kwargs):
        builds.append(kwargs.get("resource_identifiers"))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(context, "build_data_docs", counted)
    tables = Tables(spark, str(tmp_path / "wh"))
    with batched_results():
        record_results(tables, first, data_docs=True)
        record_results(tables, second, data_docs=True)
        assert (first.docs_url, second.docs_url, builds) == (None, None, [])
    assert len(builds) == 1 and len(builds[0]) == 2
    pages = [Path(o.docs_url.removeprefix("file://")) for o in (first, second)]
    assert pages[0] != pages[1] and all(page.is_file() for page in pages)
    assert "job-a" in pages[0].as_posix() and "job-b" in pages[1].as_posix()
    index = (tmp_path / "wh" / "_dq_docs" / "index.html").read_text()
    assert "job-a" in index and "job-b" in index


def test_a_suite_of_row_level_rules_only_needs_no_gx_run_and_still_gets_data_docs(
    spark, tmp_path, monkeypatch
):
    import lakehouse.quality.gate as gate

    def no_gx(*args, **kwargs):
        raise AssertionError("GX validated rules the gate had already judged")

    monkeypatch.setattr(gate, "validate_with_gx", no_gx)
    frame = spark.createDataFrame(EDGE_ROWS, "id int, kind string, shop string")
    with run_gate(frame, EDGE_SUITE, key_columns=["id"], run_id="r", run_date=RUN_DATE) as outcome:
        assert outcome.validation.statistics["unsuccessful_expectations"] == 6
        record_results(Tables(spark, str(tmp_path)), outcome, data_docs=True)
    page = Path(outcome.docs_url.removeprefix("file://")).read_text()
    assert "S9" in page  # the example value of the failed no_closed_shop rule
    assert "Unsuccessful Expectations" in page


def test_examples_from_one_collect_equal_those_of_a_query_per_rule(spark, monkeypatch):
    """Up to EXAMPLE_ROWS_COLLECTED failing rows, every rule's examples come from one collect of
    them (one Spark job, not a `limit` query per rule); the values are the same either way, in
    the same order, at most `unexpected_examples` per rule."""
    from lakehouse.quality import gate

    frame = spark.createDataFrame(EDGE_ROWS * 10, "id int, kind string, shop string").where("true")

    spark_jobs = {}

    def examples(path: str) -> dict[str, list]:
        # The path taken shows in the Spark jobs the gate runs: one collect against a query
        # per failing rule, everything else the same.
        spark.sparkContext.setJobGroup(f"examples-{path}", path)
        try:
            with run_gate(
                frame, EDGE_SUITE, key_columns=["id"], run_id="r", run_date=RUN_DATE
            ) as outcome:
                found = {r.name: list(r.partial_unexpected) for r in outcome.results}
        finally:
            spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        tracker = spark.sparkContext.statusTracker()
        spark_jobs[path] = len(tracker.getJobIdsForGroup(f"examples-{path}"))
        return found

    collected = examples("collect")
    monkeypatch.setattr(gate, "EXAMPLE_ROWS_COLLECTED", 0)
    queried = examples("query")
    assert collected == queried
    failing_rules = sum(1 for values in collected.values() if values)
    assert failing_rules >= 2
    assert spark_jobs["collect"] <= spark_jobs["query"] - (failing_rules - 1), spark_jobs
    assert len(collected["kind_unique_mostly"]) == 20  # 50 repeated values, examples capped
    assert collected["id_present"] == [None] * 10
