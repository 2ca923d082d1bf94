#!/usr/bin/env bash
# Runs every benchmark in turn and prints all the tables (markdown) to stdout, e.g.
#   bench/all.sh > /tmp/results.md
set -euo pipefail
here=$(dirname "$0")
for script in logs restart lifecycle router control pty; do
    "$here/$script.sh"
    echo
done
