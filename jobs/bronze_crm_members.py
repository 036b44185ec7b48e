"""spark-submit entry for bronze.crm_members: `spark-submit ... jobs/bronze_crm_members.py --run-date D`."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.crm_members", sys.argv[1:]))
