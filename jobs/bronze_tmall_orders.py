"""spark-submit entry for bronze.tmall_orders: `spark-submit ... jobs/bronze_tmall_orders.py --run-date D`."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.tmall_orders", sys.argv[1:]))
