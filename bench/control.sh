#!/usr/bin/env bash
# The control socket's costs: `hlocal ps` round trips, hlocal's RSS and descriptors over
# 1,000 restarts, and what a busy `subscribe` client costs the 1M-line log run.
#
#   bench/control.sh        # PINGS=200 RESTARTS=1000 REPS=3
#
# hlocal is pinned to cpu 0, the clients to cpu 1. Method: bench/lib/control.py.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

main() {
    prepare_bench
    wait_quiet
    print_header "Control socket (bench/control.sh)"
    echo
    "$PY" "$BENCH_DIR/lib/control.py" --hlocal "$HLOCAL" --writer "$WRITER" --work "$WORK" \
        --pings "${PINGS:-200}" --restarts "${RESTARTS:-1000}" --reps "${REPS:-3}"
    print_footer
}

main "$@"
