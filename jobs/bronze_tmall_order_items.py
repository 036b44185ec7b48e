"""spark-submit entry for bronze.tmall_order_items: `spark-submit ... jobs/bronze_tmall_order_items.py --run-date D`."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.tmall_order_items", sys.argv[1:]))
