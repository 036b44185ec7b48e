"""The line parser: every physical data line ends as one record or one quarantined line."""

from __future__ import annotations

import pytest
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from lakehouse.bronze import parse as p

TMALL_COLUMNS = {"订单编号": "order_no", "买家会员名": "buyer_nick", "买家实际支付金额": "paid"}


def gb(*lines: str, sep: bytes = b"\r\n") -> bytes:
    return sep.join(line.encode("gb18030") for line in lines) + sep


def test_split_lines_handles_crlf_lf_and_no_final_newline():
    assert p.split_lines(b"a\r\nb\nc") == [b"a", b"b", b"c"]
    assert p.split_lines(b"a\n") == [b"a"]
    assert p.split_lines(b"") == []
    assert p.split_lines(b"\n") == [b""]


def test_a_file_with_lone_cr_line_ends_is_read_line_by_line():
    """Before: the whole CR-only file was one header line, and its rows vanished uncounted."""
    assert p.split_lines(b"a\rb\rc\r") == [b"a", b"b", b"c"]
    parsed = p.parse_csv(
        gb("订单编号,买家会员名,买家实际支付金额", "1,n,9.90", sep=b"\r"), "gb18030", TMALL_COLUMNS
    )
    assert parsed.data_lines == 1
    assert parsed.lines[0].values == {"order_no": "1", "buyer_nick": "n", "paid": "9.90"}


def test_a_cr_ended_file_keeps_an_in_cell_lf_and_every_row():
    """Before: one LF anywhere made the file split on LF, so the header line swallowed the
    first row (in no table, in no quarantine) and the rest came out as one unreadable line."""
    content = gb(
        "订单编号,买家会员名,买家实际支付金额", "1,a,1.00", '2,"李\n四",2.00', "3,c,3.00", sep=b"\r"
    )
    parsed = p.parse_csv(content, "gb18030", TMALL_COLUMNS)
    assert parsed.data_lines == 3
    assert [line.values["buyer_nick"] for line in parsed.lines] == ["a", "李\n四", "c"]
    # An LF or CRLF file with a stray CR in a line, a CRLF file written again in text mode (CR
    # CR LF), a JSON line with a CR as whitespace: LF files all (lone CRs do not outnumber LFs).
    assert p.split_lines(b"h\r\na\rb\r\nc") == [b"h", b"a\rb", b"c"]
    assert p.split_lines(b"h\na\rb\n") == [b"h", b"a\rb"]
    assert p.split_lines(b'{"a":1,\r"b":2}\n{"a":3}\n') == [b'{"a":1,\r"b":2}', b'{"a":3}']
    twice = p.parse_csv(
        gb("订单编号,买家会员名,买家实际支付金额", "1,a,1.00", "2,b,2.00", sep=b"\r\r\n"),
        "gb18030",
        TMALL_COLUMNS,
    )
    assert [line.values["buyer_nick"] for line in twice.lines] == ["a", "b"]


def test_csv_columns_found_by_header_name_not_position():
    content = gb(
        "买家实际支付金额,订单编号,买家会员名", '"1,299.00","=""2937000000000000001""","小明"'
    )
    parsed = p.parse_csv(content, "gb18030", TMALL_COLUMNS)
    assert parsed.data_lines == 1
    [line] = parsed.lines
    assert line.reason is None
    assert line.line_no == 2
    assert line.values == {
        "order_no": '="2937000000000000001"',
        "buyer_nick": "小明",
        "paid": "1,299.00",
    }


def test_csv_appended_header_lands_in_extra_fields():
    content = gb("订单编号,买家会员名,买家实际支付金额,订单备注", "1,nick,9.90,请尽快发货")
    [line] = p.parse_csv(content, "gb18030", TMALL_COLUMNS).lines
    assert line.values["paid"] == "9.90"
    assert line.extra_fields == {"订单备注": "请尽快发货"}


def test_csv_added_columns_with_one_name_or_none_keep_every_value():
    """Before: extras were a dict by name, so a repeated or blank added header kept one value."""
    content = gb("订单编号,买家会员名,买家实际支付金额,备注,备注,,", "1,n,9.90,a,b,c,d")
    [line] = p.parse_csv(content, "gb18030", TMALL_COLUMNS).lines
    assert line.extra_fields == {"备注": "a", "备注#5": "b", "#6": "c", "#7": "d"}


def test_an_added_column_repeating_a_listed_name_is_an_extra_field():
    """A later export may add columns at the end, under any name. Before: a second 买家会员名
    made the header unreadable and quarantined every line of the day's orders."""
    content = gb("订单编号,买家会员名,买家实际支付金额,买家会员名", "1,nick,9.90,other")
    [line] = p.parse_csv(content, "gb18030", TMALL_COLUMNS).lines
    assert line.reason is None
    assert line.values == {"order_no": "1", "buyer_nick": "nick", "paid": "9.90"}
    assert line.extra_fields == {"买家会员名#4": "other"}
    # An added column already named like that position's name keeps its own value.
    clash = gb("订单编号,买家会员名,买家实际支付金额,买家会员名,买家会员名#4", "1,n,9.90,x,y")
    [line] = p.parse_csv(clash, "gb18030", TMALL_COLUMNS).lines
    assert line.extra_fields == {"买家会员名#4": "x", "买家会员名#4#5": "y"}


def test_an_undecodable_byte_in_an_added_header_name_leaves_the_rows_readable():
    """Before: the whole header was unreadable, and every row with it."""
    header = "订单编号,买家会员名,买家实际支付金额,".encode("gb18030") + b'"\x81\xff"'
    content = header + b"\r\n" + "1,nick,9.90,x".encode("gb18030") + b"\r\n"
    [line] = p.parse_csv(content, "gb18030", TMALL_COLUMNS).lines
    assert line.reason is None
    assert line.values == {"order_no": "1", "buyer_nick": "nick", "paid": "9.90"}
    assert line.extra_fields == {"\\x81\\xff": "x"}
    # A listed column's name undecodable: the header cannot be read, as before; also when an
    # added column repeats that name (it would stand in for the garbled one).
    bad = "订单编号,买家会员名,".encode("gb18030") + b"\x81\xff\r\n1,a,1\r\n"
    [quarantined] = p.parse_csv(bad, "gb18030", TMALL_COLUMNS).lines
    assert quarantined.reason == p.UNREADABLE_HEADER
    namesake = (
        "订单编号,买家会员名".encode("gb18030")
        + b"\xff,"
        + "买家实际支付金额,买家会员名\r\n1,real,1.00,added\r\n".encode("gb18030")
    )
    [quarantined] = p.parse_csv(namesake, "gb18030", TMALL_COLUMNS).lines
    assert quarantined.reason == p.UNREADABLE_HEADER


def test_csv_field_longer_than_pythons_default_limit_is_read():
    """Before: a field over 131,072 characters was quarantined as malformed_csv."""
    long = "x" * 200_000
    [line] = p.parse_csv(
        gb("订单编号,买家会员名,买家实际支付金额", f'1,"{long}",9.90'), "gb18030", TMALL_COLUMNS
    ).lines
    assert line.reason is None and line.values["buyer_nick"] == long


def test_csv_bad_lines_are_quarantined_with_reason_and_line_number():
    content = (
        gb(
            "订单编号,买家会员名,买家实际支付金额",
            "1,a,1.00",
            "2,b",
            "",
            "4,d,4.00,extra",
        )
        + "5,坏,5.00".encode("gb18030")[:-1]
        + b"\xff\r\n"
    )
    parsed = p.parse_csv(content, "gb18030", TMALL_COLUMNS)
    assert parsed.data_lines == 5
    outcome = [(line.line_no, line.reason) for line in parsed.lines]
    assert outcome == [
        (2, None),
        (3, p.WRONG_FIELD_COUNT),
        (4, p.EMPTY_LINE),
        (5, p.WRONG_FIELD_COUNT),
        (6, p.UNDECODABLE),
    ]
    assert "\\xff" in parsed.lines[-1].raw_text
    assert parsed.lines[1].detail == "expected 3 fields, got 2"


def test_csv_quoted_field_may_hold_a_line_break():
    """A double-quoted address or nick may carry a line break (CRLF or LF): one record, whose
    line number is its first physical line's; the file's data lines count records."""
    content = gb(
        "订单编号,买家会员名,买家实际支付金额",
        '1,"张\r\n三",1.00',
        '2,"a ""quoted""',
        ' name, with comma",2.00',
        "3,c,3.00",
    )
    parsed = p.parse_csv(content, "gb18030", TMALL_COLUMNS)
    assert parsed.data_lines == 3
    assert [(line.line_no, line.values) for line in parsed.lines] == [
        (2, {"order_no": "1", "buyer_nick": "张\n三", "paid": "1.00"}),
        (4, {"order_no": "2", "buyer_nick": 'a "quoted"\n name, with comma', "paid": "2.00"}),
        (6, {"order_no": "3", "buyer_nick": "c", "paid": "3.00"}),
    ]


def test_csv_quoted_field_may_hold_many_line_breaks():
    """A note pasted from a long letter: the contract bounds no field's line breaks (before,
    a field over 50 lines was cut into lines judged one by one, one of which read as a
    record of its own)."""
    note = "\n".join(f"第{i}行" for i in range(120)) + "\n9,fake,9.00"
    content = gb("订单编号,买家会员名,买家实际支付金额", f'1,"{note}",1.00', "2,b,2.00")
    parsed = p.parse_csv(content, "gb18030", TMALL_COLUMNS)
    assert parsed.data_lines == 2
    assert [(line.line_no, line.reason, line.values) for line in parsed.lines] == [
        (2, None, {"order_no": "1", "buyer_nick": note, "paid": "1.00"}),
        (123, None, {"order_no": "2", "buyer_nick": "b", "paid": "2.00"}),
    ]


def test_csv_quoted_record_over_the_byte_bound_is_not_joined(monkeypatch):
    """Past the byte bound the lines stay apart and each is judged on its own."""
    monkeypatch.setattr(p, "MAX_JOINED_RECORD_BYTES", 10)
    content = gb("订单编号,买家会员名,买家实际支付金额", '1,"a', "b", 'c",1.00', "2,b,2.00")
    parsed = p.parse_csv(content, "gb18030", TMALL_COLUMNS)
    assert [(line.line_no, line.reason) for line in parsed.lines] == [
        (2, p.MALFORMED_CSV),
        (3, p.WRONG_FIELD_COUNT),
        (4, p.WRONG_FIELD_COUNT),
        (5, None),
    ]


def test_csv_stray_quote_does_not_swallow_the_lines_after_it():
    """An unclosed quote that no later line closes into one record of the header's width stays
    one malformed line; the lines after it are read on their own. (Closed into a record of the
    right width, the lines are one record, as CSV reads them.)"""
    content = gb(
        "订单编号,买家会员名,买家实际支付金额",
        '1,"a,1.00',
        "2,b,2.00",
        '3,"c",3.00,x"',
        "4,d,4.00",
    )
    parsed = p.parse_csv(content, "gb18030", TMALL_COLUMNS)
    assert parsed.data_lines == 4
    assert [(line.line_no, line.reason) for line in parsed.lines] == [
        (2, p.MALFORMED_CSV),
        (3, None),
        (4, p.WRONG_FIELD_COUNT),
        (5, None),
    ]


def test_csv_utf8_bom_is_not_part_of_the_first_header():
    content = "\ufeffstore_code,qty\nS001,2\n".encode()
    [line] = p.parse_csv(content, "utf-8-sig", {"store_code": "store_code", "qty": "qty"}).lines
    assert line.values == {"store_code": "S001", "qty": "2"}


def test_csv_header_missing_a_column_quarantines_every_line():
    content = gb("订单编号,买家会员名", "1,a", "2,b")
    parsed = p.parse_csv(content, "gb18030", TMALL_COLUMNS)
    assert [line.reason for line in parsed.lines] == [p.MISSING_COLUMNS] * 2
    assert "买家实际支付金额" in parsed.lines[0].detail


def test_csv_header_only_and_empty_file_have_no_lines():
    assert (
        p.parse_csv(gb("订单编号,买家会员名,买家实际支付金额"), "gb18030", TMALL_COLUMNS).lines
        == []
    )
    empty = p.parse_csv(b"", "gb18030", TMALL_COLUMNS)
    assert (empty.data_lines, empty.lines) == (0, [])


def test_exact_duplicate_lines_both_land_with_the_same_hash():
    parsed = p.parse_csv(
        gb("订单编号,买家会员名,买家实际支付金额", "1,a,1", "1,a,1"), "gb18030", TMALL_COLUMNS
    )
    first, second = parsed.lines
    assert first.reason is second.reason is None
    assert first.record_hash == second.record_hash
    assert (first.line_no, second.line_no) == (2, 3)


ITEM = StructType([StructField("skuId", StringType()), StructField("itemTotal", StringType())])
JD = StructType(
    [
        StructField("orderId", StringType()),
        StructField("orderPayment", StringType()),
        StructField("consigneeInfo", StructType([StructField("mobile", StringType())])),
        StructField("itemInfoList", ArrayType(ITEM)),
    ]
)


def test_json_numbers_keep_their_delivered_text_and_nesting_is_preserved():
    line = (
        b'{"orderId": 230012345678901234, "orderPayment": 269.00, "consigneeInfo": '
        b'{"mobile": "138****1234"}, "itemInfoList": [{"skuId": "1", "itemTotal": 3}]}\n'
    )
    [parsed] = p.parse_jsonl(line, "utf-8", JD).lines
    assert parsed.values == {
        "orderId": "230012345678901234",
        "orderPayment": "269.00",
        "consigneeInfo": {"mobile": "138****1234"},
        "itemInfoList": [{"skuId": "1", "itemTotal": "3"}],
    }
    assert parsed.extra_fields is None


def test_json_fields_the_schema_does_not_know_are_kept_with_their_path():
    """A new field delivered as null is a null (before: the text "None"), as it is nested."""
    line = (
        b'{"orderId": "1", "newField": {"a": true, "b": null}, "promoTag": null,'
        b' "itemInfoList": [{"skuId": "1", "promo": "x", "gift": null}]}'
    )
    [parsed] = p.parse_jsonl(line, "utf-8", JD).lines
    assert parsed.extra_fields == {
        "newField": '{"a":true,"b":null}',
        "promoTag": None,
        "itemInfoList[0].promo": "x",
        "itemInfoList[0].gift": None,
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"orderId": "1", "orderPay', p.INVALID_JSON),
        (b"[1, 2]", p.NOT_AN_OBJECT),
        (b'{"orderId": "1", "itemInfoList": {"skuId": "1"}}', p.JSON_SHAPE),
        (b'{"orderId": "\xff"}', p.UNDECODABLE),
        (b"   ", p.EMPTY_LINE),
        # Python's json reads these; JSON has no such values (before: rows of 'nan', '-inf').
        (b'{"orderId": NaN}', p.INVALID_JSON),
        (b'{"orderId": "1", "refundAmount": -Infinity}', p.INVALID_JSON),
    ],
)
def test_unreadable_json_lines_are_quarantined(raw, reason):
    parsed = p.parse_jsonl(b'{"orderId": "0"}\n' + raw + b"\n", "utf-8", JD)
    assert parsed.data_lines == 2
    assert [line.reason for line in parsed.lines] == [None, reason]
    assert parsed.lines[1].line_no == 2


def test_a_valid_json_line_nested_too_deeply_to_keep_is_quarantined():
    """json.loads reads a few levels deeper than an unknown field can be written back as text.
    Before: RecursionError failed the task and the job."""
    details = set()
    for depth in range(900, 1100):
        nested = b"[" * depth + b"]" * depth
        raw = b'{"orderId": "1", "itemInfoList": [{"skuId": "1", "promo": ' + nested + b"}]}"
        [line] = p.parse_jsonl(raw + b"\n", "utf-8", JD).lines
        assert line.reason in (None, p.INVALID_JSON), depth
        details.add(line.detail)
    assert "nested too deeply to keep" in details  # some depths json reads and conform cannot


def test_raw_text_is_capped():
    parsed = p.parse_jsonl(b"{" + b"x" * 100 + b"\n", "utf-8", JD, max_raw_chars=10)
    assert len(parsed.lines[0].raw_text) == 10
