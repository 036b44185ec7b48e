"""spark-submit entry for the job bronze.crm_members; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.crm_members", sys.argv[1:]))
