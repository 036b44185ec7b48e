"""File families of the landing contract: headers, encodings, line rendering.

One `Dataset` per file family says how its lines are spelled (CSV quoting, encoding, BOM,
JSON Lines) so the writers, the dirt injector and the tests all agree on one definition.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

TMALL_ORDER_HEADER = (
    "订单编号",
    "买家会员名",
    "买家应付货款",
    "买家应付邮费",
    "买家实际支付金额",
    "订单状态",
    "收货人姓名",
    "收货地址",
    "联系手机",
    "订单创建时间",
    "订单付款时间",
    "宝贝总数量",
    "店铺名称",
    "退款金额",
    "修改时间",
)
TMALL_ORDER_EXTRA = ("订单备注", "优惠券")
TMALL_ITEM_HEADER = (
    "订单编号",
    "子订单编号",
    "标题",
    "价格",
    "购买数量",
    "商家编码",
    "退款状态",
    "退款金额",
)
POS_HEADER = (
    "store_code",
    "pos_id",
    "ticket_no",
    "line_no",
    "txn_time",
    "cashier_id",
    "member_card_no",
    "member_phone",
    "barcode",
    "qty",
    "unit_price",
    "discount",
    "amount",
    "pay_method",
    "orig_ticket_no",
)
CRM_HEADER = (
    "member_id",
    "card_no",
    "name",
    "phone",
    "email",
    "gender",
    "birthday",
    "register_channel",
    "register_store_code",
    "register_time",
    "level",
    "points",
    "unionid",
    "marketing_opt_out",
)
INVENTORY_HEADER = (
    "snapshot_date",
    "location_code",
    "location_type",
    "sku_id",
    "on_hand_qty",
    "reserved_qty",
    "in_transit_qty",
    "unit_cost",
)
PRODUCT_HEADER = (
    "sku_id",
    "barcode",
    "sku_name",
    "brand",
    "category_l1",
    "category_l2",
    "category_l3",
    "list_price",
    "unit_cost",
    "launch_date",
    "status",
)
MAPPING_HEADER = ("platform", "platform_sku_code", "sku_id")
STORE_HEADER = (
    "store_code",
    "store_name",
    "store_type",
    "province",
    "city",
    "region",
    "floor_area_sqm",
    "staff_count",
    "open_date",
    "close_date",
    "store_phone",
)
CAMPAIGN_HEADER = (
    "campaign_id",
    "campaign_name",
    "channel",
    "start_date",
    "end_date",
    "cost_yuan",
    "coupon_code",
)
TOUCH_HEADER = ("campaign_id", "touch_time", "member_id", "phone", "unionid")

_NEEDS_QUOTE = (",", '"', "\r", "\n")


def csv_minimal(fields: list[str] | tuple[str, ...]) -> str:
    """One CSV line as csv.QUOTE_MINIMAL writes it (quote only when needed), no newline."""
    if len(fields) == 1 and not fields[0]:
        return '""'  # what csv.writer writes for a lone empty field
    line = ",".join(fields)
    if (
        '"' not in line
        and "\n" not in line
        and "\r" not in line
        and line.count(",") == len(fields) - 1
    ):
        return line
    out = []
    for f in fields:
        if any(c in f for c in _NEEDS_QUOTE):
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return ",".join(out)


def csv_all(fields: list[str] | tuple[str, ...]) -> str:
    """One CSV line with every field double-quoted (the Tmall export style)."""
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


def json_line(obj: dict) -> str:
    """One JSON Lines record: UTF-8 text, not ASCII-escaped, like the source dumps."""
    return json.dumps(obj, ensure_ascii=False)


def parse_csv_line(text: str) -> list[str]:
    return next(csv.reader([text]))


@dataclass(frozen=True)
class Dataset:
    """A file family: where it lands and how its lines are spelled."""

    name: str
    source: str
    fmt: str  # "csv" or "jsonl"
    encoding: str
    quote_all: bool = False
    bom: bool = False
    header: tuple[str, ...] = ()

    def render(self, fields: list[str] | tuple[str, ...]) -> str:
        return csv_all(fields) if self.quote_all else csv_minimal(fields)

    @property
    def first_data_line(self) -> int:
        """1-based physical line number of the first record."""
        return 2 if self.fmt == "csv" else 1


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "tmall_orders",
            "tmall_orders",
            "csv",
            "gb18030",
            quote_all=True,
            header=TMALL_ORDER_HEADER,
        ),
        Dataset(
            "tmall_order_items",
            "tmall_order_items",
            "csv",
            "gb18030",
            quote_all=True,
            header=TMALL_ITEM_HEADER,
        ),
        Dataset("jd_orders", "jd_orders", "jsonl", "utf-8"),
        Dataset("mall_orders", "mall_orders", "jsonl", "utf-8"),
        Dataset("pos_sales", "pos_sales", "csv", "utf-8", bom=True, header=POS_HEADER),
        Dataset("crm_members", "crm_members", "csv", "utf-8", header=CRM_HEADER),
        Dataset("inventory", "inventory", "csv", "utf-8", header=INVENTORY_HEADER),
        Dataset("products", "master", "csv", "utf-8", header=PRODUCT_HEADER),
        Dataset("sku_mapping", "master", "csv", "utf-8", header=MAPPING_HEADER),
        Dataset("stores", "master", "csv", "utf-8", header=STORE_HEADER),
        Dataset("campaigns", "campaigns", "csv", "utf-8", header=CAMPAIGN_HEADER),
        Dataset("campaign_touches", "campaigns", "csv", "utf-8", header=TOUCH_HEADER),
    )
}

# file name prefix per dataset (the date and optional _<n> follow)
FILE_PREFIX = {
    "tmall_orders": "tmall_orders_",
    "tmall_order_items": "tmall_items_",
    "jd_orders": "jd_orders_",
    "mall_orders": "mall_orders_",
    "pos_sales": "pos_",
    "crm_members": "crm_members_",
    "inventory": "inventory_",
    "products": "products_",
    "sku_mapping": "sku_mapping_",
    "stores": "stores_",
    "campaigns": "campaigns_",
    "campaign_touches": "campaign_touches_",
}

# regular expressions of the contract's file names, used by the tests and documented
FILE_PATTERNS = {
    "tmall_orders": r"tmall_orders_\d{8}(_\d+)?\.csv",
    "tmall_order_items": r"tmall_items_\d{8}\.csv",
    "jd_orders": r"jd_orders_\d{8}\.jsonl",
    "mall_orders": r"mall_orders_\d{8}\.jsonl",
    "pos_sales": r"pos_[A-Z0-9]+_\d{8}\.csv",
    "crm_members": r"crm_members_\d{8}\.csv",
    "inventory": r"inventory_\d{8}\.csv",
    "products": r"products_\d{8}\.csv",
    "sku_mapping": r"sku_mapping_\d{8}\.csv",
    "stores": r"stores_\d{8}\.csv",
    "campaigns": r"campaigns_\d{8}\.csv",
    "campaign_touches": r"campaign_touches_\d{8}\.csv",
}


def file_name(dataset: str, ymd: str, store_code: str = "", n: int = 1) -> str:
    """The contract's file name for a dataset and date (`_<n>` only for corrections)."""
    ext = "jsonl" if DATASETS[dataset].fmt == "jsonl" else "csv"
    mid = f"{store_code}_" if dataset == "pos_sales" else ""
    suffix = f"_{n}" if n > 1 else ""
    return f"{FILE_PREFIX[dataset]}{mid}{ymd}{suffix}.{ext}"
