"""spark-submit entry for any job by name: `run_job.py <job> --run-date D [--env E]`.

For a job without a script of its own (a source added in conf/sources.yml is a bronze job the
moment it is configured); the Airflow DAG uses it for such a job.
"""

import sys

from lakehouse.cli import run_job_main

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print("usage: run_job.py <job> --run-date D [--env E]", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_job_main(sys.argv[1], sys.argv[2:]))
