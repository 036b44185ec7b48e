from datetime import UTC, datetime, timedelta

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.gold.marts.common import (
    crm_membership,
    member_one_ids,
    order_one_ids,
    sold_lines,
    touched_dates,
)
from lakehouse.runtime import JobContext
from lakehouse.tables import Tables
from tests.gold.marts.rows import D, at, frames, line, order, product, yuan

COLS = ["order_key", "line_id", "units", "line_net_sales", "unit_cost", "gross_profit"]
SCHEMA = (
    "order_key string, line_id string, units int, line_net_sales decimal(18,2), "
    "unit_cost decimal(18,2), gross_profit decimal(18,2)"
)


def _run(spark, orders, lines, products):
    o, ln, p, _ = frames(spark, orders, lines, products)
    return sold_lines(o, ln, p).select(*COLS)


def test_order_refund_is_allocated_pro_rata_with_the_remainder_on_one_line(spark):
    # JD: paid 100, refund 10 at order level only, three lines of 1/3 each.
    orders = [order("JD:1", platform="JD", net=90, paid=100, refunded=10)]
    lines = [
        ("JD:1", "1", 1, "A", 1, yuan(33.33), None, None),
        ("JD:1", "2", 2, "A", 1, yuan(33.33), None, None),
        ("JD:1", "3", 3, "A", 1, yuan(33.34), None, None),
    ]
    got = _run(spark, orders, lines, [product(cost=10)])
    # 90 x 33.33/100 = 29.997 -> 30.00 twice, 90 x 33.34/100 = 30.006 -> 30.01; the remainder
    # (-0.01) goes to the anchor (largest weight: line 3).
    expected = spark.createDataFrame(
        [
            ("JD:1", "1", 1, yuan(30.00), yuan(10), yuan(20.00)),
            ("JD:1", "2", 1, yuan(30.00), yuan(10), yuan(20.00)),
            ("JD:1", "3", 1, yuan(30.00), yuan(10), yuan(20.00)),
        ],
        SCHEMA,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert got.agg(F.sum("line_net_sales")).first()[0] == yuan(90)


def test_a_share_is_rounded_once_from_its_exact_value(spark):
    """22.49 over lines of 28.13 and 127.12: the first share is 4.0749997 (4.07), the second
    18.4150003 (18.42). Before: the quotient was first rounded to 6 places (4.075000), then to
    the cent (4.08), and the anchor line gave the cent back (18.41)."""
    orders = [order("MALL:1", platform="MALL", net=22.49, paid=22.49)]
    lines = [line("MALL:1", 1, amount=28.13), line("MALL:1", 2, amount=127.12)]
    got = {r.line_id: r.line_net_sales for r in _run(spark, orders, lines, [product()]).collect()}
    assert got == {"1": yuan(4.07), "2": yuan(18.42)}


def test_pos_return_lines_keep_their_own_negative_amounts(spark):
    orders = [order("POS:S1:9", net=-40, paid=0, refunded=40, status="REFUNDED")]
    lines = [("POS:S1:9", "1", 1, "A", -1, yuan(-40), 1, yuan(40))]
    got = _run(spark, orders, lines, [product(cost=25)])
    expected = spark.createDataFrame(
        [("POS:S1:9", "1", -1, yuan(-40), yuan(25), yuan(-15))], SCHEMA
    )
    assert_df_equality(got, expected, ignore_nullable=True)


def test_unknown_sku_keeps_its_sales_without_cost_and_orders_without_lines_are_kept(spark):
    orders = [order("T:1", platform="TMALL", net=50), order("T:2", platform="TMALL", net=7)]
    lines = [("T:1", "1", 1, None, 2, yuan(50), 0, None)]
    got = _run(spark, orders, lines, [product()])
    expected = spark.createDataFrame(
        [("T:1", "1", 2, yuan(50), None, None), ("T:2", None, 0, yuan(7), None, None)], SCHEMA
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_cost_is_the_version_valid_at_the_time_of_sale(spark):
    change = D + timedelta(days=1)
    products = [product(cost=60, end=change), product(cost=70, start=change)]
    orders = [order("P:1", day=D), order("P:2", day=change)]
    lines = [line("P:1", 1), line("P:2", 1)]
    got = _run(spark, orders, lines, products)
    expected = spark.createDataFrame(
        [
            ("P:1", "1", 1, yuan(100), yuan(60), yuan(40)),
            ("P:2", "1", 1, yuan(100), yuan(70), yuan(30)),
        ],
        SCHEMA,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_tmall_line_refund_and_never_paid_orders(spark):
    # Line 2 refunded in full (its own refund), shipping 0: net 100 stays on line 1.
    orders = [
        order("T:1", platform="TMALL", net=100, paid=150, refunded=50),
        order("T:2", platform="TMALL", net=0, paid=0, status="CANCELLED", paid_at=False),
    ]
    lines = [
        line("T:1", 1, qty=1, amount=100),
        line("T:1", 2, qty=1, amount=50, refunded_qty=1, refunded=50),
        line("T:2", 1, qty=3, amount=300),
    ]
    got = _run(spark, orders, lines, [product(cost=60)])
    expected = spark.createDataFrame(
        [
            ("T:1", "1", 1, yuan(100), yuan(60), yuan(40)),
            ("T:1", "2", 0, yuan(0), yuan(60), yuan(0)),
            ("T:2", "1", 0, yuan(0), yuan(60), yuan(0)),
        ],
        SCHEMA,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_run_recomputes_the_dates_of_orders_whose_held_lines_it_released(spark, tmp_path):
    """A Tmall line held for want of its order keeps the delivery that brought it (day 1); the
    order silver keeps is another day's version (day 2). Released into it on day 3, the line
    changed the order's sales: day 3's marts must recompute day 1 (before: only day 3)."""
    d1, d2, d3 = D, D + timedelta(days=1), D + timedelta(days=2)
    tables = Tables(spark, str(tmp_path))
    spark.range(1).write.format("delta").save(tables.path("gold", "store_daily"))
    spark.createDataFrame(
        [("TMALL:1", d3), ("TMALL:2", d2)], "order_key string, released_on date"
    ).write.format("delta").save(tables.path("silver", "held_line_releases"))
    orders = spark.createDataFrame(
        [("TMALL:1", d1, at(d1), d2), ("TMALL:2", d2, at(d2), d1)],
        "order_key string, business_date date, created_at timestamp, _delivery_date date",
    )
    lines = spark.createDataFrame(
        [("TMALL:1", d1), ("TMALL:2", d1)], "order_key string, _delivery_date date"
    )
    ctx = JobContext(settings=None, spark=spark, tables=tables, run_date=d3, run_id="r")
    assert touched_dates(ctx, orders, lines, "store_daily") == [d1, d3]
    # Day 2 (a rerun): TMALL:1's order was delivered that day, TMALL:2 only released.
    rerun = JobContext(settings=None, spark=spark, tables=tables, run_date=d2, run_id="r")
    assert touched_dates(rerun, orders, lines, "store_daily") == [d1, d2]


def test_a_run_recomputes_the_dates_of_tickets_a_pos_correction_took_lines_from(spark, tmp_path):
    """A ticket a store's corrected POS file voided is gone from silver.orders: only
    silver.retracted_pos_lines says its day (day 1) must be recomputed on day 3 (before: the
    mart kept the voided sale). The log's other days (day 2, another run's) are not touched."""
    d1, d2, d3 = D, D + timedelta(days=1), D + timedelta(days=2)
    tables = Tables(spark, str(tmp_path))
    spark.range(1).write.format("delta").save(tables.path("gold", "store_daily"))
    spark.createDataFrame(
        [("POS:S1:T1", d1, d3), ("POS:S1:T9", d2, d2)],
        "order_key string, business_date date, retracted_on date",
    ).write.format("delta").save(tables.path("silver", "retracted_pos_lines"))
    orders = spark.createDataFrame(
        [("POS:S1:T2", d3, at(d3), d3)],
        "order_key string, business_date date, created_at timestamp, _delivery_date date",
    )
    lines = spark.createDataFrame([("POS:S1:T2", d3)], "order_key string, _delivery_date date")
    ctx = JobContext(settings=None, spark=spark, tables=tables, run_date=d3, run_id="r")
    assert touched_dates(ctx, orders, lines, "store_daily") == [d1, d3]


def test_a_run_recomputes_the_date_an_order_s_payment_moved_away_from(spark, tmp_path):
    """TMALL:1 was paid on day 2 (in the mart's day 2); day 4's version says day 3. Before,
    day 4 recomputed days 1 (creation), 3 and 4 only: day 2 kept its sales, counted twice, and
    store_monthly's reconciliation with silver failed every later run. The business date the
    order had before the day's first silver.sales run (Delta time travel) is recomputed too."""
    import time
    from datetime import datetime

    from lakehouse.runtime import RUN_LOG, RUN_LOG_SCHEMA

    d1, d2, d3, d4 = (D + timedelta(days=n) for n in range(4))
    tables = Tables(spark, str(tmp_path))
    spark.range(1).write.format("delta").save(tables.path("gold", "store_daily"))
    schema = "order_key string, business_date date, created_at timestamp, _delivery_date date"
    silver_orders = tables.path("silver", "orders")
    spark.createDataFrame([("TMALL:1", d2, at(d1), d2)], schema).write.format("delta").save(
        silver_orders
    )
    time.sleep(1.1)
    started = datetime.now()
    time.sleep(1.1)
    now = spark.createDataFrame([("TMALL:1", d3, at(d1), d4)], schema)
    now.write.format("delta").mode("overwrite").save(silver_orders)
    row = ("silver.sales", d4, "r", "test", started, datetime.now(), 1.0, "SUCCEEDED")
    spark.createDataFrame([(*row, 1, 1, 0, None, None, None)], RUN_LOG_SCHEMA).write.format(
        "delta"
    ).save(tables.path(*RUN_LOG))
    lines = spark.createDataFrame([], "order_key string, _delivery_date date")
    ctx = JobContext(settings=None, spark=spark, tables=tables, run_date=d4, run_id="r")
    assert touched_dates(ctx, now, lines, "store_daily") == [d1, d2, d3, d4]
    # Without a silver.sales run of the day (or a state before it), today's dates must do.
    other = JobContext(settings=None, spark=spark, tables=tables, run_date=d3, run_id="r")
    assert touched_dates(
        other, now.withColumn("_delivery_date", F.lit(d3)), lines, "store_daily"
    ) == [
        d1,
        d3,
    ]


def test_a_killed_silver_sales_run_still_leaves_the_date_an_order_moved_away_from(
    spark, settings_for
):
    """The same move, but day 4's first silver.sales run was SIGKILLed after its MERGE and
    before its ops.run_log row, and a rerun finished the day. Before: the state "before the
    day's first run" was taken at the rerun's start in the run log, after the killed run's
    MERGE: day 2 was not recomputed and kept the order's sales, counted twice. Now it is the
    version before the day's first commit tagged silver.sales (runtime.commit_tag)."""
    from lakehouse.runtime import Job, JobResult, commit_tag, run_job, tagged_commits

    d1, d2, d3, d4 = (D + timedelta(days=n) for n in range(4))
    settings = settings_for()
    tables = Tables(spark, settings.warehouse)
    spark.range(1).write.format("delta").save(tables.path("gold", "store_daily"))
    schema = "order_key string, business_date date, created_at timestamp, _delivery_date date"
    silver_orders = tables.path("silver", "orders")

    def write_orders(rows: list[tuple]) -> None:
        frame = spark.createDataFrame(rows, schema)
        frame.write.format("delta").mode("overwrite").save(silver_orders)

    def sales_job(rows: list[tuple]) -> Job:
        return Job(
            "silver.sales",
            "silver",
            "writes silver.orders",
            lambda ctx: write_orders(rows) or JobResult(),
        )

    run_job(sales_job([("TMALL:1", d2, at(d1), d2)]), settings, spark, d2)
    moved = [("TMALL:1", d3, at(d1), d4)]
    with tagged_commits(spark, commit_tag("silver.sales", d4, "killed")):
        write_orders(moved)  # the killed run's MERGE; no run-log row
    run_job(sales_job(moved), settings, spark, d4)  # the rerun
    now = tables.read("silver", "orders")
    lines = spark.createDataFrame([], "order_key string, _delivery_date date")
    ctx = JobContext(settings=settings, spark=spark, tables=tables, run_date=d4, run_id="r")
    assert touched_dates(ctx, now, lines, "store_daily") == [d1, d2, d3, d4]
    # The day that created silver.orders has nothing before it: its own dates must do.
    first = JobContext(settings=settings, spark=spark, tables=tables, run_date=d2, run_id="r")
    on_d2 = now.withColumn("_delivery_date", F.lit(d2))
    assert touched_dates(first, on_d2, lines, "store_daily") == [d1, d2]


def test_a_tagged_rerun_after_an_untagged_first_run_still_leaves_the_date(spark, settings_for):
    """Day 4's first silver.sales run came before commits were tagged (an upgrade mid-day), a
    tagged rerun followed. The version before the rerun's first tagged commit already has the
    move: the run log's start of the first run is earlier, and wins."""
    from lakehouse.runtime import COMMIT_TAG_CONF, Job, JobResult, run_job

    d1, d2, d3, d4 = (D + timedelta(days=n) for n in range(4))
    settings = settings_for()
    tables = Tables(spark, settings.warehouse)
    spark.range(1).write.format("delta").save(tables.path("gold", "store_daily"))
    schema = "order_key string, business_date date, created_at timestamp, _delivery_date date"

    def sales(rows: list[tuple], tagged: bool = True) -> Job:
        def run(ctx):
            if not tagged:
                spark.conf.unset(COMMIT_TAG_CONF)
            frame = spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite")
            frame.save(tables.path("silver", "orders"))
            return JobResult()

        return Job("silver.sales", "silver", "writes silver.orders", run)

    run_job(sales([("TMALL:1", d2, at(d1), d2)], tagged=False), settings, spark, d2)
    moved = [("TMALL:1", d3, at(d1), d4)]
    run_job(sales(moved, tagged=False), settings, spark, d4)
    run_job(sales(moved), settings, spark, d4)
    lines = spark.createDataFrame([], "order_key string, _delivery_date date")
    ctx = JobContext(settings=settings, spark=spark, tables=tables, run_date=d4, run_id="r")
    now = tables.read("silver", "orders")
    assert touched_dates(ctx, now, lines, "store_daily") == [d1, d2, d3, d4]


def test_a_sku_no_longer_in_the_snapshots_costs_what_it_last_did(spark):
    """A left the product snapshots on day 2; a sale of day 4 (the last of the stock) costs its
    last 60. Before: no cost, and the sale fell out of gross profit."""
    products = [product(cost=60, end=D + timedelta(days=1))]
    orders = [order("P:1", day=D + timedelta(days=3))]
    [row] = _run(spark, orders, [line("P:1", 1)], products).collect()
    assert (row.unit_cost, row.gross_profit) == (yuan(60), yuan(40))


def _people(spark, one_ids: dict[str, str], records: list[tuple[str, str, str]]):
    """identity_map (phone -> one_id) and identities (source, record_key, the record's phone)."""
    identity_map = spark.createDataFrame(
        [("phone", phone, one_id) for phone, one_id in one_ids.items()],
        "identifier_type string, identifier_value string, one_id string",
    )
    identities = spark.createDataFrame(
        [(source, key, "phone", phone) for source, key, phone in records],
        "source string, record_key string, identifier_type string, identifier_value string",
    )
    return identity_map, identities


def test_a_buyer_is_a_member_until_the_last_of_their_crm_records_left(spark):
    """A: one record, never left. B: two records, M3 merged into M2 on D+1: still a member.
    C: two records, closed on D+1 and D+2 (the days the CRM stopped listing them): a member
    for orders before D+2, the last, not on or after it, though the phone still links them.
    D: no record. O7: no identity."""
    day = lambda d: D + timedelta(days=d)  # noqa: E731
    records = [
        ("crm_members", "M1", "1"),
        ("crm_members", "M2", "2"),
        ("crm_members", "M3", "2"),
        ("crm_members", "M4", "3"),
        ("crm_members", "M5", "3"),
        ("mall_orders", "O1", "1"),
        ("mall_orders", "O2", "2"),
        ("mall_orders", "O3", "3"),
        ("mall_orders", "O4", "3"),
        ("mall_orders", "O5", "3"),
        ("mall_orders", "O6", "4"),
    ]
    identity_map, identities = _people(spark, {"1": "A", "2": "B", "3": "C", "4": "D"}, records)
    left_crm = spark.createDataFrame(
        [("M3", day(1)), ("M4", day(2)), ("M5", day(1))], "member_id string, left_crm_on date"
    )
    assert_df_equality(
        member_one_ids(identity_map, identities, None, left_crm),
        spark.createDataFrame(
            [("A", None, None), ("B", None, None), ("C", None, day(2))],
            "one_id string, member_from date, member_until date",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    dates = {"O1": 5, "O2": 5, "O3": 1, "O4": 2, "O5": 5, "O6": 0, "O7": 0}
    orders = spark.createDataFrame(
        [(key, "MALL", day(d)) for key, d in dates.items()],
        "order_key string, platform string, business_date date",
    )
    got = order_one_ids(orders, identity_map, identities, None, left_crm)
    assert {r.order_key: (r.one_id, r.is_member) for r in got.collect()} == {
        "O1": ("A", True),
        "O2": ("B", True),
        "O3": ("C", True),
        "O4": ("C", False),
        "O5": ("C", False),
        "O6": ("D", False),
        "O7": (None, False),
    }
    # Without departures (no silver.members yet, or no one ever left) every record holds.
    every = order_one_ids(orders, identity_map, identities, None)
    assert {r.order_key for r in every.collect() if r.is_member} == {"O1", "O2", "O3", "O4", "O5"}


def test_a_guest_is_a_member_from_the_day_their_first_crm_record_was_registered(spark):
    """G bought on D+1 as a guest and registered on D+3 (M7): a recomputation of D+1 after the
    registration counts what the first run did, no member sale (before: every one_id holding a
    record was a member on any date). H's two records were registered on D+2 and D+5: a member
    from D+2. K's record has no registration time: a member since always, as before."""
    day = lambda d: D + timedelta(days=d)  # noqa: E731
    records = [
        ("crm_members", "M7", "7"),
        ("crm_members", "M8", "8"),
        ("crm_members", "M9", "8"),
        ("crm_members", "M10", "9"),
        ("mall_orders", "O1", "7"),
        ("mall_orders", "O2", "7"),
        ("mall_orders", "O3", "8"),
        ("mall_orders", "O4", "8"),
        ("mall_orders", "O5", "9"),
    ]
    identity_map, identities = _people(spark, {"7": "G", "8": "H", "9": "K"}, records)
    membership = spark.createDataFrame(
        [("M7", day(3), None), ("M8", day(5), None), ("M9", day(2), None), ("M10", None, None)],
        "member_id string, registered_on date, left_crm_on date",
    )
    assert_df_equality(
        member_one_ids(identity_map, identities, None, membership),
        spark.createDataFrame(
            [("G", day(3), None), ("H", day(2), None), ("K", None, None)],
            "one_id string, member_from date, member_until date",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    dates = {"O1": 1, "O2": 3, "O3": 1, "O4": 2, "O5": -30}
    orders = spark.createDataFrame(
        [(key, "MALL", day(d)) for key, d in dates.items()],
        "order_key string, platform string, business_date date",
    )
    got = order_one_ids(orders, identity_map, identities, None, membership)
    assert {r.order_key: r.is_member for r in got.collect()} == {
        "O1": False,
        "O2": True,
        "O3": False,
        "O4": True,
        "O5": True,
    }


def test_crm_membership_reads_the_shanghai_day_of_registration(spark, settings_for):
    """register_time is an instant (UTC): registered at 01:00 in Shanghai on D+1 is D+1, not
    the UTC date D."""
    settings = settings_for()
    tables = Tables(spark, settings.warehouse)
    ctx = JobContext(settings=settings, spark=spark, tables=tables, run_date=D, run_id="r")
    assert crm_membership(ctx) is None
    spark.createDataFrame(
        [
            ("M1", datetime(D.year, D.month, D.day, 17, 0, tzinfo=UTC), None),
            ("M2", None, D),
        ],
        "member_id string, register_time timestamp, left_crm_on date",
    ).write.format("delta").save(tables.path("silver", "members"))
    got = {r.member_id: (r.registered_on, r.left_crm_on) for r in crm_membership(ctx).collect()}
    assert got == {"M1": (D + timedelta(days=1), None), "M2": (None, D)}
