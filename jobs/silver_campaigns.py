"""spark-submit entry for the job silver.campaigns; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("silver.campaigns", sys.argv[1:]))
