"""spark-submit entry for bronze.master: `spark-submit ... jobs/bronze_master.py --run-date D`."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.master", sys.argv[1:]))
