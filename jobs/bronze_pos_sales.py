"""spark-submit entry for the job bronze.pos_sales; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.pos_sales", sys.argv[1:]))
