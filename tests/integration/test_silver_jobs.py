"""Silver jobs on hand-made deliveries (late state changes, a failing gate commits nothing) and
on one small generated day of Tmall sales (referential integrity of lines, a row lost before the
MERGE). Reconciliation of every dataset is checked on the shared generated pipeline."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse.config import load_settings
from lakehouse.quality.gate import GateFailed
from lakehouse.registry import build_registry, in_order
from lakehouse.runtime import JobError, JobResult, run_job
from lakehouse.silver import sales_job
from lakehouse.tables import Tables

pytestmark = pytest.mark.integration

# The module is a thousand seconds of `make test`, the longest xdist group: one worker ran its
# last half alone while the other had finished everything else (2026-12-07: 1,886 s against
# 1,638 s of tests). Its tests in two groups of ~500 s each, handed out like any other module;
# each module fixture's tests stay in one group, so no fixture is built twice.
SECOND_HALF = pytest.mark.xdist_group("tests.integration.test_silver_jobs.second_half")

CONF = Path(__file__).resolve().parents[2] / "conf"
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
TMALL_HEADER = (
    "订单编号,买家会员名,买家应付货款,买家应付邮费,买家实际支付金额,订单状态,收货人姓名,收货地址,"
    "联系手机,订单创建时间,订单付款时间,宝贝总数量,店铺名称,退款金额,修改时间"
)
HEADERS = {
    (
        "tmall_order_items",
        "tmall_items",
    ): "订单编号,子订单编号,标题,价格,购买数量,商家编码,退款状态,退款金额",
    ("pos_sales", "pos_S001"): (
        "store_code,pos_id,ticket_no,line_no,txn_time,cashier_id,member_card_no,member_phone,"
        "barcode,qty,unit_price,discount,amount,pay_method,orig_ticket_no"
    ),
    ("crm_members", "crm_members"): (
        "member_id,card_no,name,phone,email,gender,birthday,register_channel,register_store_code,"
        "register_time,level,points,unionid,marketing_opt_out"
    ),
    ("master", "products"): (
        "sku_id,barcode,sku_name,brand,category_l1,category_l2,category_l3,list_price,unit_cost,"
        "launch_date,status"
    ),
    ("master", "sku_mapping"): "platform,platform_sku_code,sku_id",
    ("master", "stores"): (
        "store_code,store_name,store_type,province,city,region,floor_area_sqm,staff_count,"
        "open_date,close_date,store_phone"
    ),
}


def _tmall(order_status: str, paid: str, modified: str, refund: str = "0.00") -> str:
    return (
        f'"=""2937000000000000001""","nick","100.00","0.00","100.00","{order_status}","张三",'
        f'"浙江省 杭州市 西湖区 路1号","13800138000","2026-03-01 23:00:00","{paid}","1",'
        f'"旗舰店","{refund}","{modified}"'
    )


def _deliver(
    root: Path, day: date, tmall_rows: list[str], crm_rows: list[str], item_rows=()
) -> None:
    stamp = day.strftime("%Y%m%d")

    def put(source: str, name: str, lines: list[str], encoding: str = "utf-8") -> None:
        folder = root / source / f"dt={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        suffix = "jsonl" if source in ("jd_orders", "mall_orders") else "csv"
        (folder / f"{name}_{stamp}.{suffix}").write_bytes(
            ("\n".join(lines) + "\n" if lines else "").encode(encoding)
        )

    put("tmall_orders", "tmall_orders", [TMALL_HEADER, *tmall_rows], "gb18030")
    put("jd_orders", "jd_orders", [])
    put("mall_orders", "mall_orders", [])
    for (source, name), header in HEADERS.items():
        rows = {"crm_members": crm_rows, "tmall_order_items": list(item_rows)}.get(source, [])
        if name == "products":
            rows = ["SKU-1,6901234567892,T恤,B,服装,女装,T恤,100.00,40.00,2025-01-01,ACTIVE"]
        put(source, name, [header, *rows], "gb18030" if source.startswith("tmall") else "utf-8")


def _run(settings, spark, day: date, names: set[str]) -> dict[str, JobResult]:
    return {
        job.name: run_job(job, settings, spark, day)
        for job in in_order(build_registry(settings), ("bronze", "silver"))
        if job.name in names
    }


SALES_JOBS = {
    "bronze.tmall_orders",
    "bronze.tmall_order_items",
    "bronze.jd_orders",
    "bronze.mall_orders",
    "bronze.pos_sales",
    "bronze.master",
    "silver.master",
    "silver.sales",
}
# Later days of a Tmall-only test: the other sources' bronze tables exist from the first day
# (silver.sales needs them, not a slice of every day), the products do not change.
TMALL_SALES_JOBS = {"bronze.tmall_orders", "bronze.tmall_order_items", "silver.sales"}


def test_a_late_state_change_updates_the_order_and_an_older_state_does_not(
    spark, settings_for, tmp_path
):
    root = tmp_path / "landing"
    _deliver(
        root,
        D1,
        [_tmall("买家已付款，等待卖家发货", "2026-03-01 23:10:00", "2026-03-01 23:10:00")],
        [],
    )
    # Day 2: the order was closed after payment: refunded. Day 3: the day-1 state comes late.
    _deliver(
        root, D2, [_tmall("交易关闭", "2026-03-01 23:10:00", "2026-03-02 09:00:00", "100.00")], []
    )
    _deliver(
        root,
        D3,
        [_tmall("买家已付款，等待卖家发货", "2026-03-01 23:10:00", "2026-03-01 23:10:00")],
        [],
    )
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)
    _run(settings, spark, D1, SALES_JOBS)
    for day in (D2, D3):
        _run(settings, spark, day, TMALL_SALES_JOBS)
    [order] = tables.read("silver", "orders").collect()
    assert order.order_key == "TMALL:2937000000000000001"
    assert (order.status, order.business_date) == ("REFUNDED", D1)
    assert (str(order.refunded_amount), str(order.net_sales)) == ("100.00", "0.00")
    assert order._delivery_date == D2


def _pos(
    line_no: int,
    qty: int,
    amount: str,
    card: str = "",
    ticket: str = "T0001",
    till: str = "P1",
    at: str = "2026/03/01 10:00:00",
    orig: str = "",
    store: str = "S001",
) -> str:
    """One POS line of `store`; a return (orig set) has a negative amount at a positive unit
    price."""
    price = amount.lstrip("-")
    return (
        f"{store},{till},{ticket},{line_no},{at},C1,{card},,6901234567892,{qty},"
        f"{price},0.00,{amount},CASH,{orig}"
    )


def _write_pos(root: Path, store: str, day: date, lines: list[str]) -> None:
    header = HEADERS[("pos_sales", "pos_S001")]
    path = root / "pos_sales" / f"dt={day.isoformat()}" / f"pos_{store}_{day:%Y%m%d}.csv"
    path.write_bytes(("\ufeff" + "\n".join([header, *lines]) + "\n").encode())


# Three stores' POS files of D1 and D2, one store per case below: a return naming no ticket
# (S001), a late line rung before the others (S002), a line delivered a day late and ticket
# numbers used again (S003). One landing and one run of the sales jobs for the three (each had
# its own: 20 job runs fewer); tickets are a store's own, so the cases do not meet.
BACK = "2026/03/02 11:00:00"
POS_DAYS = {
    "S001": {
        D1: [_pos(1, 1, "10.00")],
        D2: [
            _pos(1, 1, "20.00", ticket="T0002"),
            _pos(1, -1, "-10.00", ticket="R0001", at=BACK, orig="T0001"),  # silver holds it
            _pos(1, -1, "-20.00", ticket="R0002", at=BACK, orig="T0002"),  # in the delivery
            _pos(1, -1, "-30.00", ticket="R0003", at=BACK, orig="T9999"),  # no such ticket
        ],
    },
    "S002": {
        D1: [
            _pos(2, 1, "50.00", at="2026/03/01 10:00:07", store="S002"),
            _pos(3, 1, "30.00", at="2026/03/01 10:00:09", store="S002"),
        ],
        D2: [_pos(1, 1, "20.00", at="2026/03/01 10:00:05", store="S002")],
    },
    "S003": {
        D1: [
            _pos(1, 1, "10.00", card="C-9", store="S003"),
            _pos(2, 2, "20.00", store="S003"),
            _pos(1, 1, "50.00", ticket="T0002", store="S003"),
        ],
        D2: [
            _pos(3, 1, "30.00", store="S003"),
            _pos(2, 2, "24.00", store="S003"),
            # T0002 again, a day later at another till; T0003 at two tills the same day.
            _pos(1, 3, "90.00", ticket="T0002", till="P2", at=BACK, store="S003"),
            _pos(1, 1, "7.00", ticket="T0003", at=BACK, store="S003"),
            _pos(1, 1, "8.00", ticket="T0003", till="P2", at=BACK, store="S003"),
        ],
    },
}


@pytest.fixture(scope="module")
def pos_days(spark, tmp_path_factory) -> tuple[Tables, dict[str, JobResult]]:
    """POS_DAYS delivered, the sales jobs run on D1 and D2: the tables and day 2's results."""
    root = tmp_path_factory.mktemp("pos_days")
    landing = root / "landing"
    _deliver(landing, D1, [], [])
    _deliver(landing, D2, [], [])
    for store, days in POS_DAYS.items():
        for day, lines in days.items():
            _write_pos(landing, store, day, lines)
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_LANDING", str(landing))
    mp.setenv("LAKEHOUSE_WAREHOUSE", str(root / "warehouse"))
    try:
        settings = load_settings("local")
        _run(settings, spark, D1, SALES_JOBS)
        results = _run(settings, spark, D2, {"bronze.pos_sales", "silver.sales"})
    finally:
        mp.undo()
    return Tables(spark, settings.warehouse), results


def _of_store(df, store: str):
    return df.where(F.col("order_key").startswith(f"POS:{store}:"))


def test_a_pos_return_naming_no_ticket_is_kept_and_flagged(pos_days):
    """Before, a return whose orig_ticket_no named no ticket of its store (another store's,
    a mistyped number) was published with nothing to say so. It is kept (the goods came
    back) and flagged `unknown_original_ticket`, like an unknown SKU; a return of a ticket
    silver holds, or of one the same delivery brings, is not."""
    tables, _ = pos_days
    kept = {r.order_key for r in _of_store(tables.read("silver", "order_lines"), "S001").collect()}
    assert {"POS:S001:R0001", "POS:S001:R0002", "POS:S001:R0003"} <= kept
    flagged = tables.read("silver", "quarantine").where("expectation = 'unknown_original_ticket'")
    assert [(r.table, r.record_key, r.value) for r in flagged.collect()] == [
        ("silver.order_lines", "POS:S001:R0003:1", "POS:S001:T9999")
    ]


def test_a_late_pos_line_rung_before_the_others_joins_its_ticket(pos_days):
    """Before: the ticket summed with its late line 1 (rung at 10:00:05) took its time from that
    line, older than the 10:00:07 silver held, so the MERGE kept the old ticket: silver.orders
    said 80.00 while silver.order_lines held 100.00. The ticket was created when its first line
    was rung and last changed when its last one was."""
    tables, _ = pos_days
    [ticket] = _of_store(tables.read("silver", "orders"), "S002").collect()
    lines = _of_store(tables.read("silver", "order_lines"), "S002").collect()
    assert sorted((r.line_no, str(r.line_amount)) for r in lines) == [
        (1, "20.00"),
        (2, "50.00"),
        (3, "30.00"),
    ]
    assert (str(ticket.paid_amount), str(ticket.net_sales), ticket.total_units) == (
        "100.00",
        "100.00",
        3,
    )
    shanghai = timezone(timedelta(hours=8))
    rung = lambda s: datetime(2026, 3, 1, 10, 0, s, tzinfo=shanghai)  # noqa: E731
    assert (ticket.created_at.astimezone(shanghai), ticket.updated_at.astimezone(shanghai)) == (
        rung(5),
        rung(9),
    )
    assert ticket._delivery_date == D2


def test_a_pos_line_delivered_a_day_late_joins_its_ticket(pos_days):
    """The contract: a delivery can hold records of earlier business dates. A ticket's third
    line delivered the next day adds to the ticket, and a line delivered again replaces its
    earlier version (before: the ticket became the late line alone, 30.00).

    A ticket number used again (by another till, or on another day) is another sale, not a
    new version: before, T0002 of day 2 replaced day 1's sale and T0003 kept one of two
    tills' sales, both silently. Now the reusing lines are held in quarantine."""
    tables, results = pos_days
    tickets = {r.order_key: r for r in _of_store(tables.read("silver", "orders"), "S003").collect()}
    assert sorted(tickets) == ["POS:S003:T0001", "POS:S003:T0002"]
    ticket = tickets["POS:S003:T0001"]
    assert (str(ticket.paid_amount), ticket.total_units) == ("64.00", 4)
    assert (ticket.member_card_no, ticket._delivery_date) == ("C-9", D2)
    # Day 1's T0002 stands as it was.
    reused = tickets["POS:S003:T0002"]
    assert (str(reused.paid_amount), reused.total_units, reused._delivery_date) == ("50.00", 1, D1)
    lines = _of_store(tables.read("silver", "order_lines"), "S003").collect()
    assert sorted((r.order_key, r.line_no, str(r.line_amount)) for r in lines) == [
        ("POS:S003:T0001", 1, "10.00"),
        ("POS:S003:T0001", 2, "24.00"),
        ("POS:S003:T0001", 3, "30.00"),
        ("POS:S003:T0002", 1, "50.00"),
    ]
    held = tables.read("silver", "quarantine").where(
        "table = 'silver.order_lines' AND expectation = 'ticket_number_not_reused'"
    )
    assert sorted(
        (r.source_file.rsplit("/", 1)[-1], r.delivery_date, r.line_no) for r in held.collect()
    ) == [(f"pos_S003_{D2:%Y%m%d}.csv", D2, n) for n in (4, 5, 6)]
    # Counted, not lost: of day 2's ten POS lines (S003's five: T0001's two accepted, three
    # held; S001's four and S002's one accepted), seven are accepted and three held.
    [count] = (
        tables.read("silver", "reconciliation")
        .where(f"dataset = 'pos_sales' AND delivery_date = '{D2}'")
        .collect()
    )
    assert (count.bronze_rows, count.accepted_rows, count.quarantined_rows) == (10, 7, 3)
    assert results["silver.sales"].rows_quarantined == 3


def test_a_store_s_corrected_pos_file_drops_the_lines_it_no_longer_holds(
    spark, settings_for, tmp_path
):
    """The contract: a corrected file can arrive later under a new name. A POS file is one
    store's day, so day 3's `pos_S001_20260301_2.csv` replaces day 1's file: T0002, which it no
    longer holds, was voided; T0001 lost its line 2; T0003 lost the line day 1 delivered and
    keeps the one day 2 delivered late. Before: silver kept all three dropped lines and the
    tickets' old sums, and the store earned 75.00 it never took, with nothing said. T0005's line
    of the correction is a field short (bronze quarantines it): no evidence it was voided, so
    it keeps its published version (before: it was taken back)."""
    root = tmp_path / "landing"
    for day in (D1, D2, D3):
        _deliver(root, day, [], [])
    header = HEADERS[("pos_sales", "pos_S001")]
    files = {
        (D1, "pos_S001_20260301.csv"): [
            _pos(1, 1, "10.00"),
            _pos(2, 2, "20.00"),
            _pos(1, 1, "50.00", ticket="T0002"),
            _pos(1, 1, "5.00", ticket="T0003"),
            _pos(1, 1, "30.00", ticket="T0005"),
        ],
        (D2, "pos_S001_20260302.csv"): [
            _pos(2, 1, "7.00", ticket="T0003"),
            _pos(1, 1, "40.00", ticket="T0004", at="2026/03/02 10:00:00"),
        ],
        (D3, "pos_S001_20260301_2.csv"): [
            _pos(1, 1, "10.00"),
            _pos(1, 1, "30.00", ticket="T0005").removesuffix(","),
        ],
    }
    for (day, name), lines in files.items():
        path = root / "pos_sales" / f"dt={day.isoformat()}" / name
        path.write_bytes(("\ufeff" + "\n".join([header, *lines]) + "\n").encode())
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)
    _run(settings, spark, D1, SALES_JOBS)
    day2 = _run(settings, spark, D2, {"bronze.pos_sales", "silver.sales"})["silver.sales"]
    assert "retracted_lines" not in day2.details
    day3 = _run(settings, spark, D3, {"bronze.pos_sales", "silver.sales"})["silver.sales"]

    def published() -> tuple[list, list]:
        tickets = sorted(
            (r.order_key, str(r.paid_amount), r.total_units)
            for r in tables.read("silver", "orders").collect()
        )
        lines = sorted(
            (r.order_key, r.line_no, str(r.line_amount))
            for r in tables.read("silver", "order_lines").collect()
        )
        return tickets, lines

    assert published() == (
        [
            ("POS:S001:T0001", "10.00", 1),
            ("POS:S001:T0003", "7.00", 1),
            ("POS:S001:T0004", "40.00", 1),
            ("POS:S001:T0005", "30.00", 1),
        ],
        [
            ("POS:S001:T0001", 1, "10.00"),
            ("POS:S001:T0003", 2, "7.00"),
            ("POS:S001:T0004", 1, "40.00"),
            ("POS:S001:T0005", 1, "30.00"),
        ],
    )
    assert day3.details["retracted_lines"] == 3

    def log() -> list[tuple]:
        return sorted(
            (
                r.order_key,
                r.line_id,
                str(r.line_amount),
                r.business_date,
                r.corrected_by,
                r.retracted_on,
                r._delivery_date,
                r._line_no,
            )
            for r in tables.read("silver", sales_job.RETRACTIONS).collect()
        )

    # Not lost: every dropped line is logged, with the day its ticket counted in the marts.
    fix = "pos_S001_20260301_2.csv"
    assert log() == [
        ("POS:S001:T0001", "2", "20.00", D1, fix, D3, D1, 3),
        ("POS:S001:T0002", "1", "50.00", D1, fix, D3, D1, 4),
        ("POS:S001:T0003", "1", "5.00", D1, fix, D3, D1, 5),
    ]
    # Day 3's one line reconciles on its own.
    [count] = (
        tables.read("silver", "reconciliation")
        .where(f"dataset = 'pos_sales' AND delivery_date = '{D3}'")
        .collect()
    )
    assert (count.bronze_rows, count.accepted_rows, count.quarantined_rows) == (1, 1, 0)
    # A rerun of day 3 finds nothing more to drop and changes nothing.
    before = published(), log(), _quarantine_rows(tables)
    again = _run(settings, spark, D3, {"bronze.pos_sales", "silver.sales"})["silver.sales"]
    assert "retracted_lines" not in again.details
    assert (published(), log(), _quarantine_rows(tables)) == before


INVENTORY_HEADER = (
    "snapshot_date,location_code,location_type,sku_id,on_hand_qty,reserved_qty,in_transit_qty,"
    "unit_cost"
)
INVENTORY_JOBS = {"bronze.inventory", "silver.inventory"}


def test_a_corrected_inventory_file_drops_the_positions_it_no_longer_holds(
    spark, settings_for, tmp_path
):
    """An inventory file is the day's whole snapshot: a file of the same day delivered later
    is its correction. Day 2's `inventory_20260301_2.csv` no longer holds WH-02's 30 units of
    1 March; day 3's header-only `inventory_20260302_2.csv` takes back all of 2 March. Before:
    both stayed in silver.inventory_daily and gold.inventory_position, stock that was never
    there. WH-03's line of the correction is a field short (bronze quarantines it): no evidence
    the position is gone, so it keeps its published version (before: it was taken back)."""
    root = tmp_path / "landing"
    for day in (D1, D2, D3):
        _deliver(root, day, [], [])
    files = {
        (D1, "inventory_20260301.csv"): [
            "2026-03-01,WH-01,WAREHOUSE,SKU-1,12,0,0,40.00",
            "2026-03-01,WH-02,WAREHOUSE,SKU-1,30,0,0,40.00",
            "2026-03-01,WH-03,WAREHOUSE,SKU-1,5,0,0,40.00",
        ],
        (D2, "inventory_20260302.csv"): ["2026-03-02,WH-01,WAREHOUSE,SKU-1,10,0,0,40.00"],
        (D2, "inventory_20260301_2.csv"): [
            "2026-03-01,WH-01,WAREHOUSE,SKU-1,12,0,0,40.00",
            "2026-03-01,WH-03,WAREHOUSE,SKU-1,5,0,0",
        ],
        (D3, "inventory_20260303.csv"): ["2026-03-03,WH-01,WAREHOUSE,SKU-1,9,0,0,40.00"],
        (D3, "inventory_20260302_2.csv"): [],
    }
    for (day, name), rows in files.items():
        folder = root / "inventory" / f"dt={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("\n".join([INVENTORY_HEADER, *rows]) + "\n")
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)
    position_job = build_registry(settings)["gold.inventory_position"]

    def run(day: date, names: set[str]) -> dict[str, JobResult]:
        results = _run(settings, spark, day, names)
        run_job(position_job, settings, spark, day)
        return results

    def stock(table: str) -> list[tuple]:
        return sorted(
            (r.snapshot_date, r.location_code, r.on_hand_qty)
            for r in tables.read(*table.split(".")).collect()
        )

    run(D1, SALES_JOBS | INVENTORY_JOBS)
    assert run(D2, INVENTORY_JOBS)["silver.inventory"].details["retracted_positions"] == 1
    assert stock("silver.inventory_daily") == [
        (D1, "WH-01", 12),
        (D1, "WH-03", 5),
        (D2, "WH-01", 10),
    ]
    day3 = run(D3, INVENTORY_JOBS)["silver.inventory"]
    assert day3.details["retracted_positions"] == 1
    expected = [(D1, "WH-01", 12), (D1, "WH-03", 5), (D3, "WH-01", 9)]
    assert stock("silver.inventory_daily") == expected
    assert stock("gold.inventory_position") == expected
    log = sorted(
        (r.snapshot_date, r.location_code, r.on_hand_qty, r.corrected_by, r.retracted_on)
        for r in tables.read("silver", "retracted_stock_positions").collect()
    )
    assert log == [
        (D1, "WH-02", 30, "inventory_20260301_2.csv", D2),
        (D2, "WH-01", 10, "inventory_20260302_2.csv", D3),
    ]
    # A rerun of day 3 finds nothing more to drop and changes nothing.
    before = stock("silver.inventory_daily"), log, _quarantine_rows(tables)
    again = run(D3, INVENTORY_JOBS)["silver.inventory"]
    assert "retracted_positions" not in again.details
    after_log = sorted(
        (r.snapshot_date, r.location_code, r.on_hand_qty, r.corrected_by, r.retracted_on)
        for r in tables.read("silver", "retracted_stock_positions").collect()
    )
    assert (stock("silver.inventory_daily"), after_log, _quarantine_rows(tables)) == before


CAMPAIGN_JOBS = {"bronze.campaigns", "silver.campaigns"}
IDENTITY_JOBS = {"bronze.crm_members", "silver.members", "silver.identities"}
CAMPAIGN_HEADERS = {
    "campaigns": "campaign_id,campaign_name,channel,start_date,end_date,cost_yuan,coupon_code",
    "campaign_touches": "campaign_id,touch_time,member_id,phone,unionid",
}


@SECOND_HALF
def test_a_corrected_touches_file_drops_the_touches_it_no_longer_holds(
    spark, settings_for, tmp_path
):
    """A campaign_touches file holds the day's touches only: a file of the same day delivered
    later is its correction. On 12 March `campaign_touches_20260301_2.csv` no longer holds M2's
    touch of 1 March, long after C1's attribution window (to 8 March) closed. Before: the
    touch stayed in silver.campaign_touches, and nothing chose C1 for recomputing, so
    gold.campaign_performance kept counting two people touched where one was. M3's line of the
    correction is a field short (bronze quarantines it): no evidence the touch is gone, so it
    keeps its published version (before: it was taken back)."""
    root = tmp_path / "landing"
    late = date(2026, 3, 12)
    _deliver(root, D1, [], [])
    campaign = "C1,春季,SMS,2026-03-01,2026-03-01,100.00,"
    m1 = "C1,2026-03-01 10:00:00,M1,13800138001,"
    m2 = "C1,2026-03-01 11:00:00,M2,13800138002,"
    m3 = "C1,2026-03-01 12:00:00,M3,13800138003,"
    files = {
        (D1, "campaigns_20260301.csv"): [campaign],
        (D1, "campaign_touches_20260301.csv"): [m1, m2, m3],
        (late, "campaigns_20260312.csv"): [campaign],
        (late, "campaign_touches_20260312.csv"): [],
        (late, "campaign_touches_20260301_2.csv"): [m1, m3.removesuffix(",")],
    }
    for (day, name), rows in files.items():
        folder = root / "campaigns" / f"dt={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        header = CAMPAIGN_HEADERS[
            "campaign_touches" if name.startswith("campaign_touches") else "campaigns"
        ]
        (folder / name).write_text("\n".join([header, *rows]) + "\n")
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)
    registry = build_registry(settings)

    def touches() -> list[tuple]:
        return sorted(
            (r.member_id, r.touch_date, r._source_file.rsplit("/", 1)[-1])
            for r in tables.read("silver", "campaign_touches").collect()
        )

    def people_touched() -> int:
        return tables.read("gold", "campaign_performance").first().people_touched

    day1 = _run(settings, spark, D1, SALES_JOBS | CAMPAIGN_JOBS | IDENTITY_JOBS)
    assert "retracted_touches" not in day1["silver.campaigns"].details
    for name in ("oneid.link", "gold.campaign_performance"):
        run_job(registry[name], settings, spark, D1)
    assert people_touched() == 3

    corrected = _run(settings, spark, late, CAMPAIGN_JOBS)["silver.campaigns"]
    assert touches() == [
        ("M1", D1, "campaign_touches_20260301_2.csv"),
        ("M3", D1, "campaign_touches_20260301.csv"),
    ]
    assert corrected.details["retracted_touches"] == 1
    log = tables.read("silver", "retracted_campaign_touches")
    assert not {"member_id", "phone", "unionid"} & set(log.columns)  # no personal data kept
    assert [(r.campaign_id, r.touch_date, r.corrected_by) for r in log.collect()] == [
        ("C1", D1, "campaign_touches_20260301_2.csv")
    ]
    gold = run_job(registry["gold.campaign_performance"], settings, spark, late)
    assert gold.details["campaigns"] == 1
    assert people_touched() == 2
    # A rerun finds nothing more to drop and changes nothing.
    before = touches(), _quarantine_rows(tables)
    again = _run(settings, spark, late, CAMPAIGN_JOBS)["silver.campaigns"]
    assert "retracted_touches" not in again.details
    assert (touches(), _quarantine_rows(tables)) == before
    assert tables.read("silver", "retracted_campaign_touches").count() == 1


def _quarantine_rows(tables: Tables) -> list[tuple]:
    """silver.quarantine as a rerun must leave it (run ids aside)."""
    return sorted(map(tuple, tables.read("silver", "quarantine").drop("run_id").collect()))


def _item(line: int, amount: str) -> str:
    return f"2937000000000000001,293700000000000000{line},T恤,{amount},1,SKU-1,无退款,0.00"


@SECOND_HALF
def test_a_tmall_line_delivered_before_its_order_joins_it_when_the_order_comes(
    spark, settings_for, tmp_path
):
    """The contract's late records, across Tmall's two exports. Day 1: lines 1 and 2 come
    before their order. Day 2: the order comes in a version its gate quarantines (an unknown
    status), with line 3. Day 3: a good version, no lines. Before: lines 1 and 2 stayed in
    quarantine as `order_known`, line 3 as `order_quarantined`, for good, and the order was
    published with no line at all."""
    root = tmp_path / "landing"
    _deliver(root, D1, [], [], [_item(1, "40.00"), _item(2, "50.00")])
    _deliver(
        root,
        D2,
        [_tmall("查无此状态", "2026-03-01 23:10:00", "2026-03-02 08:00:00")],
        [],
        [_item(3, "10.00")],
    )
    paid = "买家已付款，等待卖家发货"
    _deliver(root, D3, [_tmall(paid, "2026-03-01 23:10:00", "2026-03-03 08:00:00")], [])
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)

    def quarantined(expectation: str) -> list[tuple]:
        return sorted(
            (r.delivery_date, r.line_no, json.loads(r.record)["_delivery_date"])
            for r in tables.read("silver", "quarantine")
            .where(f"table = 'silver.order_lines' AND expectation = '{expectation}'")
            .collect()
        )

    _run(settings, spark, D1, SALES_JOBS)
    # Line 1 of a file is its header.
    assert quarantined("order_known") == [(D1, 2, "2026-03-01"), (D1, 3, "2026-03-01")]
    day2 = _run(settings, spark, D2, TMALL_SALES_JOBS)["silver.sales"]
    # Judged again with their order, the held lines follow it into today's quarantine.
    assert day2.details["released_lines"] == 2
    assert quarantined("order_known") == []
    assert quarantined("order_quarantined") == [
        (D2, 2, "2026-03-01"),
        (D2, 2, "2026-03-02"),
        (D2, 3, "2026-03-01"),
    ]
    assert tables.read("silver", "order_lines").count() == 0
    # Rerunning day 2 judges them again (silver.held_line_releases): none is lost.
    day2_quarantine = _quarantine_rows(tables)
    _run(settings, spark, D2, {"silver.sales"})
    assert _quarantine_rows(tables) == day2_quarantine

    day3 = _run(settings, spark, D3, TMALL_SALES_JOBS)["silver.sales"]
    assert day3.details["released_lines"] == 3
    lines = tables.read("silver", "order_lines").collect()
    assert {r.order_key for r in lines} == {"TMALL:2937000000000000001"}
    assert sorted((r.line_id, r.line_no, str(r.line_amount), r._delivery_date) for r in lines) == [
        ("2937000000000000001", 1, "40.00", D1),
        ("2937000000000000002", 2, "50.00", D1),
        ("2937000000000000003", 1, "10.00", D2),
    ]
    assert quarantined("order_quarantined") == []
    # Judged again today: the released lines are flagged (SKU-1 has no mapping) in its slice.
    assert [d for d, *_ in quarantined("unknown_sku")] == [D3] * 3
    # Each delivery reconciles on its own: a line is counted by the delivery that brought it.
    counts = {
        r.delivery_date: (r.bronze_rows, r.accepted_rows, r.quarantined_rows)
        for r in tables.read("silver", "reconciliation")
        .where("dataset = 'tmall_order_items'")
        .collect()
    }
    assert counts == {D1: (2, 0, 2), D2: (1, 0, 1), D3: (0, 0, 0)}

    # Rerunning day 3 changes nothing, its flag records included.
    before = sorted(map(tuple, tables.read("silver", "order_lines").collect()))
    day3_quarantine = _quarantine_rows(tables)
    _run(settings, spark, D3, {"silver.sales"})
    assert sorted(map(tuple, tables.read("silver", "order_lines").collect())) == before
    assert _quarantine_rows(tables) == day3_quarantine
    assert quarantined("order_known") + quarantined("order_quarantined") == []


@SECOND_HALF
def test_a_gate_set_to_fail_commits_nothing(spark, settings_for, tmp_path, monkeypatch):
    root = tmp_path / "landing"
    member = (
        "M0001,886001,张三,13800138000,a@b.cn,男,1990-01-01,{channel},,2025-01-01 10:00:00,"
        "金卡,10,,N"
    )
    _deliver(root, D1, [], [member.format(channel="STORE")])
    _deliver(root, D2, [], [member.format(channel="NOWHERE")])
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)
    _run(settings, spark, D1, {"bronze.crm_members", "silver.members"})
    version = tables.version("silver", "members")

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    policies = (
        (conf / "quality.yml")
        .read_text()
        .replace(
            "  silver.members:\n    default: quarantine", "  silver.members:\n    default: fail"
        )
    )
    (conf / "quality.yml").write_text(policies)
    monkeypatch.setenv("LAKEHOUSE_CONF", str(conf))
    monkeypatch.setenv("LAKEHOUSE_EXPECTATIONS", str(CONF.parent / "expectations"))
    _run(settings, spark, D2, {"bronze.crm_members"})
    with pytest.raises(GateFailed, match="register_channel_known"):
        _run(settings, spark, D2, {"silver.members"})
    assert tables.version("silver", "members") == version
    assert tables.read("silver", "members").first().register_channel == "STORE"
    log = tables.read("ops", "run_log").where("job = 'silver.members'").orderBy("start_time")
    assert [r.status for r in log.collect()] == ["SUCCEEDED", "FAILED"]
    results = tables.read("ops", "dq_results").where(
        (F.col("table") == "silver.members") & (F.col("run_date") == F.lit(D2))
    )
    assert results.where("expectation = 'register_channel_known' AND NOT success").count() == 1


def _member(n: int, channel: str = "STORE") -> str:
    return (
        f"M{n},8860{n},张三,1380013800{n},m{n}@x.cn,男,1990-01-01,{channel},,"
        "2025-01-01 10:00:00,金卡,10,,N"
    )


@SECOND_HALF
def test_a_member_the_full_crm_snapshot_no_longer_lists_has_left_the_crm(
    spark, settings_for, tmp_path, monkeypatch
):
    """The CRM delivers a full snapshot daily. Before, silver.members only upserted, so a member
    the CRM deleted stayed a member for good. Now the first day a snapshot no longer lists it is
    its `left_crm_on`; a header-only day, a quarantined or unreadable line, a correction of an
    earlier day, a rerun of an earlier day and a cut-off export mark no one."""
    root = tmp_path / "landing"
    crm = HEADERS[("crm_members", "crm_members")]
    d4, d5 = D3 + timedelta(days=1), D3 + timedelta(days=2)
    files = {
        D1: {D1: [_member(i) for i in range(1, 7)]},
        D2: {D2: []},  # header only: nothing new, nobody gone
        # M2 quarantined by the gate, M3's line unreadable (a field too many): both listed. M4
        # and M6 are gone; a correction of D2 that lists M4 describes D2, not D3.
        D3: {
            D3: [_member(1), _member(2, "NOWHERE"), _member(3) + ",x", _member(5)],
            D2: [_member(1), _member(4)],
        },
        # M4 came back; a same-day re-export (_2) holds M5, beside the day's file without it
        d4: {d4: [_member(i) for i in (1, 2, 3, 4)], (d4, 2): [_member(5)]},
        d5: {d5: [_member(1)]},  # a cut-off export: four of the five of D4's snapshot missing
    }
    for day, snapshots in files.items():
        folder = root / "crm_members" / f"dt={day.isoformat()}"
        folder.mkdir(parents=True)
        for dated, lines in snapshots.items():
            dated, seq = dated if isinstance(dated, tuple) else (dated, 1 if dated == day else 2)
            suffix = "" if seq == 1 else f"_{seq}"
            (folder / f"crm_members_{dated.strftime('%Y%m%d')}{suffix}.csv").write_text(
                "\n".join([crm, *lines]) + "\n", encoding="utf-8"
            )
    # Judged however small the CRM: a snapshot may drop 40 % of the last one's members.
    limits = {"crm_departure_min_members": 0, "max_crm_departure_share": 0.4}
    plain = settings_for(root)
    settings = plain.model_copy(update={"silver": plain.silver.model_copy(update=limits)})
    tables = Tables(spark, settings.warehouse)
    jobs = {"bronze.crm_members", "silver.members"}

    def left() -> dict[str, date | None]:
        return {r.member_id: r.left_crm_on for r in tables.read("silver", "members").collect()}

    def listed_on() -> dict[str, date]:
        return {r.member_id: r.snapshot_date for r in tables.read("silver", "members").collect()}

    _run(settings, spark, D1, jobs)
    # A table an older release wrote has no left_crm_on (the next run adds it), and still holds
    # M7, whom the CRM dropped long before: marked on the next snapshot, but not counted against
    # its cut-off limit (M4, M6 and M7 are 3 of the 6 D1 listed, over 40 %; M4 and M6 are 2).
    path = tables.path("silver", "members")
    old = tables.read("silver", "members").drop("left_crm_on")
    gone_long_ago = old.where("member_id = 'M1'").withColumns(
        {"member_id": F.lit("M7"), "snapshot_date": F.lit(D1 - timedelta(days=30))}
    )
    (
        old.unionByName(gone_long_ago)
        .write.format("delta")
        .mode("overwrite")
        .option("overwriteSchema", "true")
        .save(path)
    )
    _run(settings, spark, D2, jobs)
    assert left() == {f"M{i}": None for i in range(1, 8)}

    # D3's run stops between its two writes to silver.members (as a crash would), then runs
    # again. Before, the upsert came first: the rerun found most of D1's members already of D3,
    # took the rest (M2, M3, M4, M6) for the last snapshot, half of it gone, and failed for good.
    real = {name: getattr(Tables, name) for name in ("upsert", "update_matching")}
    writes: list[str] = []

    def stopping_at_the_second(name: str):
        def write(self, df, layer, table, *args, **kwargs):
            if (layer, table) == ("silver", "members"):
                writes.append(name)
                if len(writes) == 2:
                    raise RuntimeError("stopped between two writes")
            return real[name](self, df, layer, table, *args, **kwargs)

        return write

    with monkeypatch.context() as patched:
        for name in real:
            patched.setattr(Tables, name, stopping_at_the_second(name))
        with pytest.raises(Exception, match="stopped between two writes"):
            _run(settings, spark, D3, jobs)
    assert len(writes) == 2
    third = _run(settings, spark, D3, {"silver.members"})["silver.members"]
    assert left() == {
        **{f"M{i}": None for i in (1, 2, 3, 5)},
        **{"M4": D3, "M6": D3, "M7": D3},
    }
    assert third.details["left_crm"] == 3
    superseded = {
        (Path(json.loads(r.record)["_source_file"]).name, r.expectation)
        for r in tables.read("silver", "quarantine")
        .where((F.col("table") == "silver.members") & (F.col("run_date") == F.lit(D3)))
        .collect()
    }
    assert superseded == {
        ("crm_members_20260303.csv", "register_channel_known"),
        ("crm_members_20260302_2.csv", "superseded_in_delivery"),
    }

    _run(settings, spark, d4, jobs)
    after_d4 = {"M1": None, "M2": None, "M3": None, "M4": None, "M5": None, "M6": D3, "M7": D3}
    assert left() == after_d4
    listed = {**{f"M{i}": d4 for i in range(1, 6)}, "M6": D1, "M7": D1 - timedelta(days=30)}
    assert listed_on() == listed
    # Reruns after D4: D3's does not mark M4 (listed on D4), and D1's replaces M6's row with
    # the same row (equal rows update) but keeps its later day.
    for day in (D3, D1):
        _run(settings, spark, day, {"silver.members"})
        assert left() == after_d4, day

    _run(settings, spark, d5, {"bronze.crm_members"})
    version = tables.version("silver", "members")
    with pytest.raises(JobError, match="no longer lists 4 of the 5 members the snapshot of"):
        _run(settings, spark, d5, {"silver.members"})
    assert tables.version("silver", "members") == version
    assert left() == after_d4
    # With the defaults a CRM this small is not judged: the four leave.
    _run(plain, spark, d5, {"silver.members"})
    assert left() == {**after_d4, **{f"M{i}": d5 for i in (2, 3, 4, 5)}}


def test_unknown_skus_never_stop_a_run_unless_a_threshold_is_set(spark, settings_for, tmp_path):
    """The contract: a code that maps to nothing may not stop a run. Opted in, a threshold
    fails a run whose lines are too unknown before anything is published (a broken mapping)."""
    root = tmp_path / "landing"
    item = '"=""2937000000000000001""","9001","T恤","100.00","1","nope-404","无退款","0.00"'
    _deliver(
        root,
        D1,
        [_tmall("买家已付款，等待卖家发货", "2026-03-01 23:10:00", "2026-03-01 23:10:00")],
        [],
        [item],
    )
    default = settings_for(root)
    strict = default.model_copy(
        update={"silver": default.silver.model_copy(update={"unmapped_rate_threshold": 0.05})}
    )
    tables = Tables(spark, default.warehouse)
    with pytest.raises(JobError, match=r"1 of 1 order lines \(100.0%\) have an unknown SKU"):
        _run(strict, spark, D1, SALES_JOBS)
    assert not tables.exists("silver", "orders")
    assert not tables.exists("silver", "order_lines")

    _run(default, spark, D1, {"silver.sales"})
    [line] = tables.read("silver", "order_lines").collect()
    assert (line.platform_sku_code, line.sku_mapped, line.sku_id) == ("NOPE-404", False, None)
    reasons = tables.read("silver", "quarantine").where("table = 'silver.order_lines'").collect()
    assert [r.expectation for r in reasons] == ["unknown_sku"]


# --- one small generated day of Tmall sales ---------------------------------------------------

# A Tmall line whose order was never delivered (added to the generated items file).
UNKNOWN_ORDER = "2999999999999999999"


@pytest.fixture(scope="module")
def generated_day(spark, tmp_path_factory):
    """scale 0.01, one day (exact duplicates, a CRM member twice in the snapshot, unknown SKUs
    and stores included), plus a Tmall line of an order nobody delivered. The unmapped-rate
    threshold is raised: at this size one unknown SKU is several percent of the lines."""
    from lakehouse.datagen import generate

    root = tmp_path_factory.mktemp("generated_day")
    landing = root / "landing"
    generate(landing, scale=0.01, days=1, start=D1, seed=11)
    [items] = (landing / "tmall_order_items" / f"dt={D1.isoformat()}").glob("*.csv")
    line = f'"{UNKNOWN_ORDER}","1999999999999999999","T恤","100.00","1","NR00001","无退款","0.00"\n'
    with items.open("ab") as fh:
        fh.write(line.encode("gb18030"))
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_LANDING", str(landing))
    mp.setenv("LAKEHOUSE_WAREHOUSE", str(root / "warehouse"))
    settings = load_settings("local")
    settings = settings.model_copy(
        update={"silver": settings.silver.model_copy(update={"unmapped_rate_threshold": 0.5})}
    )
    jobs = [
        j for j in in_order(build_registry(settings), ("bronze", "silver")) if j.name in SALES_JOBS
    ]
    for job in jobs:
        run_job(job, settings, spark, D1)
    yield settings, landing, Tables(spark, settings.warehouse), {j.name: j for j in jobs}
    mp.undo()


@SECOND_HALF
def test_an_unknown_order_quarantines_its_line_an_unknown_sku_is_kept_once(generated_day):
    _, landing, tables, _ = generated_day
    quarantine = tables.read("silver", "quarantine")
    lines = tables.read("silver", "order_lines")
    orphan = quarantine.where(F.col("value") == f"TMALL:{UNKNOWN_ORDER}").collect()
    assert [(r.table, r.expectation) for r in orphan] == [("silver.order_lines", "order_known")]
    assert lines.where(F.col("order_key") == f"TMALL:{UNKNOWN_ORDER}").count() == 0

    with (landing / "_truth" / "bad_records.csv").open(encoding="utf-8", newline="") as fh:
        unknown = [
            (b["file_name"], int(b["line_no"]))
            for b in csv.DictReader(fh)
            if b["dataset"] == "tmall_order_items" and b["kind"] == "unknown_sku"
        ]
    assert unknown, "the generator injected no unknown Tmall SKU"
    for file_name, line_no in unknown:
        at = (F.col("_source_file").endswith(file_name)) & (F.col("_line_no") == line_no)
        [kept] = lines.where(at).collect()
        assert (kept.sku_id, kept.sku_mapped) == (None, False)
        records = quarantine.where(
            F.col("source_file").endswith(file_name) & (F.col("line_no") == line_no)
        )
        assert [r.expectation for r in records.collect()] == ["unknown_sku"]
    checks = {
        r.expectation: r
        for r in tables.read("ops", "dq_results").where("table = 'silver.order_lines'").collect()
    }
    assert (checks["order_known"].policy, checks["order_known"].failing_rows) == ("quarantine", 1)
    assert (checks["sku_is_product"].policy, checks["sku_is_product"].success) == ("fail", True)


@SECOND_HALF
def test_a_row_lost_between_gate_and_merge_fails_the_run_and_publishes_nothing(
    generated_day, spark, monkeypatch
):
    settings, _, tables, jobs = generated_day
    names = ["orders", "order_lines", "quarantine", "reconciliation"]
    versions = {n: tables.version("silver", n) for n in names}
    victim = (
        tables.read("silver", "order_lines")
        .where("platform = 'TMALL'")
        .orderBy("order_key", "line_id")
        .first()
    )
    real_valid_at = sales_job.valid_at

    def lossy_valid_at(*args, **kwargs):  # a join that silently loses one line
        costed = real_valid_at(*args, **kwargs)
        return costed.where(
            (F.col("order_key") != victim.order_key) | (F.col("line_id") != victim.line_id)
        )

    monkeypatch.setattr(sales_job, "valid_at", lossy_valid_at)
    with pytest.raises(GateFailed, match=r"(?s)does not reconcile.*tmall_order_items: bronze"):
        run_job(jobs["silver.sales"], settings, spark, D1)
    assert {n: tables.version("silver", n) for n in names} == versions
    failed = tables.read("ops", "dq_results").where(
        "table = 'silver.reconciliation' AND expectation = 'rows_reconcile' AND NOT success"
    )
    assert failed.count() == 1
    [row] = failed.collect()
    assert row.policy == "fail" and row.unexpected_count == 1


STORES_HEADER = (
    "store_code,store_name,store_type,province,city,region,floor_area_sqm,staff_count,"
    "open_date,close_date,store_phone"
)


def _store(code: str, store_type: str = "DIRECT") -> str:
    return f"{code},店{code},{store_type},浙江,杭州市,华东,120,6,2020-01-01,,0571-88880000"


@SECOND_HALF
def test_a_header_only_stores_file_closes_no_store_and_a_quarantined_one_stays_open(
    spark, settings_for, tmp_path
):
    """The contract: a source with nothing new still delivers its files, possibly header only.
    The online shops' virtual stores join the delivered ones before the SCD2 step, so the
    history must not read a header-only day as every physical store gone; and a store whose
    row is quarantined today was delivered, not closed."""
    root = tmp_path / "landing"
    stores_by_day = {
        D1: [_store("S001"), _store("S002"), _store("S003"), _store("S004")],
        D2: [],  # header only: nothing new
        # S002 quarantined by the gate, S003 gone, S004's line unreadable (bronze quarantines a
        # line with a field too many): before, S004 was closed as if gone.
        D3: [_store("S001"), _store("S002", "BOGUS"), _store("S004") + ",x"],
    }
    for day, stores in stores_by_day.items():
        stamp = day.strftime("%Y%m%d")
        folder = root / "master" / f"dt={day.isoformat()}"
        folder.mkdir(parents=True)
        (folder / f"stores_{stamp}.csv").write_text(
            "\n".join([STORES_HEADER, *stores]) + "\n", encoding="utf-8"
        )
        if day == D3:
            # A correction of D2's file arrives with D3's: it describes D2, so it cannot reopen
            # S003, which D3's own file no longer lists (before: S003 stayed open).
            (folder / f"stores_{D2.strftime('%Y%m%d')}_2.csv").write_text(
                "\n".join([STORES_HEADER, _store("S001"), _store("S003")]) + "\n",
                encoding="utf-8",
            )
        # On D3 SKU-1's only line carries an undecodable byte: bronze quarantines it, and the
        # product stays open (before: closed, and that day's sales of it unknown_sku).
        name = b"\xff" if day == D3 else "T恤".encode()
        (folder / f"products_{stamp}.csv").write_bytes(
            HEADERS[("master", "products")].encode()
            + b"\nSKU-1,6901234567892,"
            + name
            + ",B,服装,女装,T恤,100.00,40.00,2025-01-01,ACTIVE\n".encode()
            + b"SKU-2,6901234567809,Socks,B,x,y,z,10.00,4.00,2025-01-01,ACTIVE\n"
        )
        # On D3 a code maps to a product nobody knows: published unmapped, with a record.
        mapping = "TMALL,CODE-9,SKU-9\n" if day == D3 else ""
        (folder / f"sku_mapping_{stamp}.csv").write_text(
            "platform,platform_sku_code,sku_id\n" + mapping, encoding="utf-8"
        )
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)

    def physical() -> set[tuple]:
        history = tables.read("silver", "stores").where("store_type <> 'ONLINE'")
        return {(r.store_code, str(r.valid_to), r.is_current) for r in history.collect()}

    _run(settings, spark, D1, {"bronze.master", "silver.master"})
    opened = {(f"S00{i}", "None", True) for i in range(1, 5)}
    assert physical() == opened
    _run(settings, spark, D2, {"bronze.master", "silver.master"})
    assert physical() == opened
    third = _run(settings, spark, D3, {"bronze.master", "silver.master"})
    assert physical() == {
        ("S001", "None", True),
        ("S002", "None", True),
        ("S003", "2026-03-03", False),
        ("S004", "None", True),
    }
    products = {
        (r.sku_id, r.valid_to, r.is_current) for r in tables.read("silver", "products").collect()
    }
    assert products == {("SKU-1", None, True), ("SKU-2", None, True)}
    reasons = tables.read("silver", "quarantine").where("table = 'silver.stores'").collect()
    correction = f"stores_{D2.strftime('%Y%m%d')}_2.csv"
    assert {(r.record_key.rsplit("/", 1)[-1], r.expectation) for r in reasons} == {
        ("S002", "store_type_known"),
        (f"{correction}:2", "superseded_in_delivery"),
        (f"{correction}:3", "superseded_in_delivery"),
    }
    unmapped = tables.read("silver", "sku_map").where("platform_sku_code = 'CODE-9'").collect()
    assert [(r.sku_known, r.sku_id) for r in unmapped] == [(False, "SKU-9")]
    # The run log counts rows held back (S002, the two superseded lines), not the published
    # code's flag record (before: 4).
    assert third["silver.master"].rows_quarantined == 3

    # D4's own files are header only and a correction of D3's arrives beside them: it describes
    # D3, not D4 (before: taken for D4's whole snapshot, it closed S002, S004 and SKU-2).
    d4, stamp3 = D3 + timedelta(days=1), D3.strftime("%Y%m%d")
    folder = root / "master" / f"dt={d4.isoformat()}"
    folder.mkdir(parents=True)
    product_header = HEADERS[("master", "products")]
    for name, header in (
        ("stores", STORES_HEADER),
        ("products", product_header),
        ("sku_mapping", "platform,platform_sku_code,sku_id"),
    ):
        (folder / f"{name}_{d4.strftime('%Y%m%d')}.csv").write_text(header + "\n", "utf-8")
    (folder / f"stores_{stamp3}_2.csv").write_text(f"{STORES_HEADER}\n{_store('S001')}\n", "utf-8")
    (folder / f"products_{stamp3}_2.csv").write_text(
        f"{product_header}\nSKU-1,6901234567892,T恤,B,服装,女装,T恤,100.00,40.00,2025-01-01,ACTIVE\n",
        "utf-8",
    )
    _run(settings, spark, d4, {"bronze.master", "silver.master"})
    assert ("S002", "None", True) in physical() and ("S004", "None", True) in physical()
    products = {
        (r.sku_id, r.valid_to, r.is_current) for r in tables.read("silver", "products").collect()
    }
    assert products == {("SKU-1", None, True), ("SKU-2", None, True)}
    held = tables.read("silver", "quarantine").where(F.col("run_date") == F.lit(d4)).collect()
    assert {(r.record_key.rsplit("/", 1)[-1], r.expectation) for r in held} == {
        (f"stores_{stamp3}_2.csv:2", "superseded_in_delivery"),
        (f"products_{stamp3}_2.csv:2", "superseded_in_delivery"),
    }

    # D5 drops SKU-2 from the products and maps a code to it: a delisted product is still a
    # product, so the code is known and flagged nowhere (before: sku_known false, and an
    # unknown_sku record for a product the history holds).
    d5 = d4 + timedelta(days=1)
    folder = root / "master" / f"dt={d5.isoformat()}"
    folder.mkdir(parents=True)
    stamp5 = d5.strftime("%Y%m%d")
    (folder / f"stores_{stamp5}.csv").write_text(f"{STORES_HEADER}\n{_store('S001')}\n", "utf-8")
    (folder / f"products_{stamp5}.csv").write_text(
        f"{product_header}\nSKU-1,6901234567892,T恤,B,服装,女装,T恤,100.00,40.00,2025-01-01,ACTIVE\n",
        "utf-8",
    )
    (folder / f"sku_mapping_{stamp5}.csv").write_text(
        "platform,platform_sku_code,sku_id\nTMALL,CODE-2,SKU-2\n", "utf-8"
    )
    # The warehouse still holds SKU-2's last units, and units of SKU-9, which no product ever
    # was; S003, closed on D3, reports its last stock and sends its last ticket, and so does
    # S009, which no stores file ever named. SKU-2's position and S003's stock and ticket are
    # known (before: sku_known, location_known and store_known false with an unknown_sku /
    # unknown_store record, judged against the current master rows only); SKU-9's and S009's
    # are flagged.
    stock = root / "inventory" / f"dt={d5.isoformat()}"
    stock.mkdir(parents=True)
    (stock / f"inventory_{stamp5}.csv").write_text(
        f"{INVENTORY_HEADER}\n{d5},WH-01,WAREHOUSE,SKU-2,7,0,0,4.00\n"
        f"{d5},WH-01,WAREHOUSE,SKU-9,3,0,0,4.00\n"
        f"{d5},S003,STORE,SKU-1,5,0,0,40.00\n"
        f"{d5},S009,STORE,SKU-1,2,0,0,40.00\n",
        "utf-8",
    )
    sales = {
        ("tmall_orders", f"tmall_orders_{stamp5}.csv"): TMALL_HEADER,
        ("tmall_order_items", f"tmall_items_{stamp5}.csv"): HEADERS[
            ("tmall_order_items", "tmall_items")
        ],
        ("jd_orders", f"jd_orders_{stamp5}.jsonl"): "",
        ("mall_orders", f"mall_orders_{stamp5}.jsonl"): "",
    }
    for store in ("S003", "S009"):
        ticket = _pos(1, 1, "100.00", at=f"{d5:%Y/%m/%d} 10:00:00").replace("S001", store, 1)
        header = HEADERS[("pos_sales", "pos_S001")]
        sales["pos_sales", f"pos_{store}_{stamp5}.csv"] = f"\ufeff{header}\n{ticket}"
    for (source, name), text in sales.items():
        folder = root / source / f"dt={d5.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        encoding = "gb18030" if source.startswith("tmall") else "utf-8"
        (folder / name).write_bytes((f"{text}\n" if text else "").encode(encoding))
    _run(settings, spark, d5, SALES_JOBS | INVENTORY_JOBS)
    positions = tables.read("silver", "inventory_daily").collect()
    assert {(r.location_code, r.sku_id, r.sku_known, r.location_known) for r in positions} == {
        ("WH-01", "SKU-2", True, True),
        ("WH-01", "SKU-9", False, True),
        ("S003", "SKU-1", True, True),
        ("S009", "SKU-1", True, False),
    }
    orders = tables.read("silver", "orders").collect()
    assert {(r.order_key, r.store_known) for r in orders} == {
        ("POS:S003:T0001", True),
        ("POS:S009:T0001", False),
    }
    products = {
        (r.sku_id, r.valid_to, r.is_current) for r in tables.read("silver", "products").collect()
    }
    assert products == {("SKU-1", None, True), ("SKU-2", d5, False)}
    mapped = tables.read("silver", "sku_map").where("platform_sku_code = 'CODE-2'").collect()
    assert [(r.sku_id, r.sku_known) for r in mapped] == [("SKU-2", True)]
    flagged = tables.read("silver", "quarantine").where(F.col("run_date") == F.lit(d5))
    unknown = flagged.where("expectation IN ('unknown_sku', 'unknown_store')").collect()
    assert {(r.table, r.expectation, r.record_key) for r in unknown} == {
        ("silver.inventory_daily", "unknown_sku", f"{d5}:WH-01:SKU-9"),
        ("silver.inventory_daily", "unknown_store", f"{d5}:S009:SKU-1"),
        ("silver.orders", "unknown_store", "POS:S009:T0001:1"),
    }


def _jd(modified: str, items: list[tuple[str, str, str]], line_state: str = "FINISHED_L") -> str:
    """One JD order record at version `modified`: items are (skuId, jdPrice, itemTotal)."""
    goods = sum(float(price) * int(qty) for _, price, qty in items)
    record = {
        "orderId": 230012345678,
        "pin": "jd_pin_1",
        "orderState": line_state,
        "orderTotalPrice": f"{goods:.2f}",
        "orderSellerPrice": f"{goods:.2f}",
        "orderPayment": f"{goods:.2f}",
        "freightPrice": "0.00",
        "sellerDiscount": "0.00",
        "orderStartTime": "2026-03-01 10:22:01",
        "paymentConfirmTime": "2026-03-01 10:23:40",
        "modified": modified,
        "refundAmount": "0.00",
        "itemInfoList": [
            {"skuId": sku, "outerSkuId": "", "skuName": "T恤", "jdPrice": price, "itemTotal": qty}
            for sku, price, qty in items
        ],
    }
    return json.dumps(record, ensure_ascii=False)


def test_an_order_s_lines_are_those_of_the_version_silver_keeps(spark, settings_for, tmp_path):
    """A JD record carries its order's whole item list at one version. Day 2 brings a newer
    version without the second item, and after it, in the same file, the day-1 version
    again: the second line goes and the older version's lines do not come back (before: the
    later line of the file won, line by line, and a dropped line stayed)."""
    root = tmp_path / "landing"
    first = _jd("2026-03-01 10:23:40", [("100", "50.00", "1"), ("200", "30.00", "2")])
    versions_by_day = {
        D1: [first],
        D2: [_jd("2026-03-02 08:00:00", [("100", "40.00", "3")]), first],
    }
    for day, records in versions_by_day.items():
        _deliver(root, day, [], [])
        stamp = day.strftime("%Y%m%d")
        (root / "jd_orders" / f"dt={day.isoformat()}" / f"jd_orders_{stamp}.jsonl").write_text(
            "\n".join(records) + "\n", encoding="utf-8"
        )
        (root / "master" / f"dt={day.isoformat()}" / f"sku_mapping_{stamp}.csv").write_text(
            "platform,platform_sku_code,sku_id\nJD,100,SKU-1\nJD,200,SKU-1\n", encoding="utf-8"
        )
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)

    def lines() -> set[tuple]:
        rows = tables.read("silver", "order_lines").collect()
        return {(r.line_id, r.platform_sku_code, str(r.unit_price), r.quantity) for r in rows}

    _run(settings, spark, D1, SALES_JOBS)
    assert lines() == {("1", "100", "50.00", 1), ("2", "200", "30.00", 2)}
    _run(settings, spark, D2, {"bronze.jd_orders", "silver.sales"})
    assert lines() == {("1", "100", "40.00", 3)}
    [order] = tables.read("silver", "orders").collect()
    assert (str(order.paid_amount), order._line_no) == ("120.00", 1)


def test_a_bad_version_beside_a_good_one_takes_only_its_own_lines(spark, settings_for, tmp_path):
    """One delivery holds two versions of a JD order and of a Tmall order, the earlier one
    with a status the platform's map does not know. Before, the order's lines followed the
    bad version by order key: the JD day failed to reconcile (its good record counted as
    both published and quarantined) and the Tmall lines of a published order went to
    quarantine."""
    root = tmp_path / "landing"
    item = ("100", "50.00", "2")
    tmall_item = '"=""2937000000000000001""","L1","T恤","100.00","1","SKU-1","无退款","0.00"'
    _deliver(
        root,
        D1,
        [
            _tmall("等待核实", "2026-03-01 23:10:00", "2026-03-01 23:10:00"),
            _tmall("交易成功", "2026-03-01 23:10:00", "2026-03-01 23:30:00"),
        ],
        [],
        [tmall_item],
    )
    day = root / "jd_orders" / f"dt={D1.isoformat()}" / "jd_orders_20260301.jsonl"
    day.write_text(
        _jd("2026-03-01 10:23:40", [item], "SOMETHING_NEW")
        + "\n"
        + _jd("2026-03-01 12:00:00", [item])
        + "\n",
        encoding="utf-8",
    )
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)
    _run(settings, spark, D1, SALES_JOBS)

    orders = {r.order_key: r for r in tables.read("silver", "orders").collect()}
    assert set(orders) == {"JD:230012345678", "TMALL:2937000000000000001"}
    assert orders["JD:230012345678"].source_status == "FINISHED_L"
    assert orders["TMALL:2937000000000000001"].source_status == "交易成功"
    lines = {(r.order_key, r.line_id) for r in tables.read("silver", "order_lines").collect()}
    assert lines == {("JD:230012345678", "1"), ("TMALL:2937000000000000001", "L1")}
    quarantined = {
        (r.table, r.expectation, r.line_no)
        for r in tables.read("silver", "quarantine")
        .where(F.col("table").isin("silver.orders", "silver.order_lines"))
        .where(F.col("expectation") != "unknown_sku")  # kept and reported, not removed
        .collect()
    }
    # the bad versions, and the JD line that came in the bad record: nothing else
    assert quarantined == {
        ("silver.orders", "status_known", 2),
        ("silver.orders", "status_known", 1),
        ("silver.order_lines", "order_quarantined", 1),
    }
    reconciliation = {
        r.dataset: (r.bronze_rows, r.accepted_rows, r.quarantined_rows)
        for r in tables.read("silver", "reconciliation").collect()
        if r.dataset in ("jd_orders", "tmall_orders", "tmall_order_items")
    }
    assert reconciliation == {
        "jd_orders": (2, 1, 1),
        "tmall_orders": (2, 1, 1),
        "tmall_order_items": (1, 1, 0),
    }
