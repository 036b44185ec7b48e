"""spark-submit entry for bronze.inventory: `spark-submit ... jobs/bronze_inventory.py --run-date D`."""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    sys.exit(run_job_main("bronze.inventory", sys.argv[1:]))
