"""spark-submit entry for the job bronze.tmall_order_items; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.tmall_order_items", sys.argv[1:]))
