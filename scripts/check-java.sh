#!/usr/bin/env bash
# Spark 4 needs Java 17 or newer; say so in one sentence instead of a JVM stack trace later.
java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if ! command -v "$java_bin" >/dev/null 2>&1; then
  echo "lakehouse needs Java 17 or newer (Spark 4): install OpenJDK 17 (e.g. 'apt-get install openjdk-17-jdk-headless') or set JAVA_HOME." >&2
  exit 1
fi
ver=$("$java_bin" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
major=${ver%%.*}
[ "$major" = "1" ] && major=$(echo "$ver" | cut -d. -f2)
if ! [[ "$major" =~ ^[0-9]+$ ]] || [ "$major" -lt 17 ]; then
  echo "lakehouse needs Java 17 or newer (Spark 4), but '$java_bin' is version '${ver:-unknown}': install OpenJDK 17 or point JAVA_HOME at it." >&2
  exit 1
fi
