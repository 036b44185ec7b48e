"""spark-submit entry for bronze.campaigns: `spark-submit ... jobs/bronze_campaigns.py --run-date D`."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.campaigns", sys.argv[1:]))
