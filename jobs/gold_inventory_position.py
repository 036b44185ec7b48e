"""spark-submit entry for the job gold.inventory_position; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("gold.inventory_position", sys.argv[1:]))
