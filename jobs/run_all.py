"""spark-submit entry for a whole day: every daily job of the registry in dependency order, in
one session; arguments as `lakehouse run-all` (--run-date D | --from D1 --to D2) [--env E]."""

import sys

from lakehouse.cli import run_all_main

if __name__ == "__main__":
    sys.exit(run_all_main(sys.argv[1:]))
