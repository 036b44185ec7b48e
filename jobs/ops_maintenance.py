"""spark-submit entry for the job ops.maintenance; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("ops.maintenance", sys.argv[1:]))
