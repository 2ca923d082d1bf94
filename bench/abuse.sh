#!/usr/bin/env bash
# Abuse checks (loopback only, each bounded to ~30 s, everything killed by PID):
# router — request smuggling variants, header limits, 5,000 idle connections (hlocal's
# RSS and fd count), a slowloris probe (reported, not judged); supervisor — a crash
# loop of 50 instances (fd count and RSS flat), kill -9 of hlocal at random moments
# (nothing left behind). Prints a markdown pass/fail table; exits 1 if a check failed.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

main() {
    ensure_python
    ensure_hlocal
    make_work_dir
    START_BUSY=$(cpu_busy_pct 3)  # not a timing benchmark: no wait for a quiet machine
    print_header "Abuse (bench/abuse.sh)"
    echo
    "$PY" "$BENCH_DIR/lib/abuse.py" --hlocal "$HLOCAL" --work "$WORK" --idle "${IDLE_CONNS:-5000}"
    print_footer
}

main "$@"
