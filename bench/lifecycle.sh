#!/usr/bin/env bash
# Lifecycle costs, hlocal vs honcho and node-foreman:
# (a) RSS with 10 idle processes, (b) start-up of 50 instances, (c) shutdown of 20,
# (d) whether an `sh` sits between the runner and a simple command.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

main() {
    prepare_bench
    ensure_honcho
    ensure_nf
    wait_quiet
    print_header "Lifecycle (bench/lifecycle.sh)"
    echo "- runs: (a) median of 3, (b) and (c) median of ${REPS:-5}; runners in turn"
    echo
    "$PY" "$BENCH_DIR/lib/lifecycle.py" --hlocal "$HLOCAL" --idle "$IDLE" --work "$WORK" \
        --honcho "$HONCHO" --nf "$NF" --reps "${REPS:-5}"
    print_footer
}

main "$@"
