"""`lakehouse audience create | export | list`.

    lakehouse audience create --name NAME --where "rfm_segment = '重要挽留客户' AND ..."
    lakehouse audience export --name NAME --channel SMS [--out DIR]
    lakehouse audience list

A bad name, expression or channel is a usage error (exit 2) with one sentence saying why.
"""

from __future__ import annotations

import argparse

from lakehouse.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    audience = sub.add_parser("audience", help="select members by tags; export contactable ids")
    commands = audience.add_subparsers(dest="audience_command", required=True)
    create = commands.add_parser(
        "create", help="select members by a condition over portrait columns and tags"
    )
    create.add_argument("--name", required=True, help="audience name (letters, digits, _ -)")
    create.add_argument(
        "--where",
        required=True,
        help="Spark SQL condition, e.g. \"rfm_segment = '重要挽留客户' AND "
        "preferred_category = '鞋靴'\"",
    )
    create.add_argument("--env", default=None)
    export = commands.add_parser(
        "export", help="write the audience's contactable identifiers for one channel"
    )
    export.add_argument("--name", required=True)
    export.add_argument("--channel", required=True, help="SMS, EMAIL, WECHAT, ... (conf/gold.yml)")
    export.add_argument(
        "--out",
        default=None,
        help="folder (default gold.people.export_dir of conf/gold.yml, else <warehouse>/_exports)",
    )
    export.add_argument("--env", default=None)
    listing = commands.add_parser("list", help="audiences with their condition and size")
    listing.add_argument("--env", default=None)


def dispatch(args: argparse.Namespace, settings: Settings, spark) -> int:
    from lakehouse.cli import UsageError
    from lakehouse.gold.people import audience
    from lakehouse.tables import Tables

    tables = Tables(spark, settings.warehouse)
    try:
        if args.audience_command == "create":
            made = audience.create(spark, tables, settings, args.name, args.where)
            print(
                f"audience {made.audience}: {made.members} members as of {made.as_of} "
                f"({made.opted_out_removed} opted-out left out)"
            )
            return 0
        if args.audience_command == "export":
            done = audience.export(spark, tables, settings, args.name, args.channel, args.out)
            gone = (
                f", {done.no_longer_in_oneid} no longer in One ID (merged, split or dissolved): "
                "create the audience again"
                if done.no_longer_in_oneid
                else ""
            )
            print(
                f"audience {done.audience} → {done.channel}: {done.rows} rows written to "
                f"{done.path} ({done.without_identifier} members without the identifier, "
                f"{done.opted_out} opted out since the audience was created, left out{gone})"
            )
            return 0
        if args.audience_command == "list":
            rows = audience.list_audiences(tables)
            if not rows:
                print("no audiences yet")
            for r in rows:
                print(
                    f"{r['audience']:<24} {r['members']:>8}  as of {r['as_of']}  {r['where_expr']}"
                )
            return 0
    except audience.AudienceError as exc:
        raise UsageError(str(exc)) from None
    raise UsageError(f"unknown audience command {args.audience_command}")
