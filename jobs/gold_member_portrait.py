"""spark-submit entry for the job gold.member_portrait; arguments: --run-date D [--env E]."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("gold.member_portrait", sys.argv[1:]))
