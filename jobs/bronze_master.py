"""spark-submit entry for the job bronze.master; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.master", sys.argv[1:]))
