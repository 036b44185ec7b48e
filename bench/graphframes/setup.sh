#!/usr/bin/env bash
# The side environment of bench/oneid_graphframes.py: GraphFrames is published for Spark 3.5 only,
# the suite runs Spark 4, so it gets its own venv (.venv-graphframes/) and jar (target/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/.venv-graphframes"
stamp="$venv/.installed"
if [[ ! -f "$stamp" || "$here/setup.sh" -nt "$stamp" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    # graphframes-py imports typing_extensions without declaring it.
    "$venv/bin/python" -m pip install --quiet "pyspark==3.5.5" "graphframes-py==0.10.0" \
        typing_extensions
    touch "$stamp"
fi
jar="$here/target/graphframes.jar"
if [[ ! -f "$jar" || "$here/pom.xml" -nt "$jar" ]]; then
    (cd "$here" && mvn --batch-mode --quiet package)
fi
echo "GraphFrames benchmark environment: $venv, $jar"
