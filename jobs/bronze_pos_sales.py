"""spark-submit entry for bronze.pos_sales: `spark-submit ... jobs/bronze_pos_sales.py --run-date D`."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.pos_sales", sys.argv[1:]))
