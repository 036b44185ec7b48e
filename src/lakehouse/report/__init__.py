"""`lakehouse report --run-date D`: one self-contained HTML page for people who would rather
look than read (sales trend, stores, members, bundles, campaigns, data quality, run log)."""

from lakehouse.report.build import build_report, default_report_path, write_report

__all__ = ["build_report", "default_report_path", "write_report"]
