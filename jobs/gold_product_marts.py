"""spark-submit entry for the job gold.product_marts; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("gold.product_marts", sys.argv[1:]))
