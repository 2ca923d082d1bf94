#!/usr/bin/env bash
# 1,000,000 lines through a pseudo-terminal (`--tty`) vs the pipe path: wall time ratio
# (target: at most 3x) and zero lines lost.
#
#   bench/pty.sh        # REPS=5
#
# Method: bench/lib/tty_lines.py.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

main() {
    prepare_bench
    wait_quiet
    print_header "1,000,000 lines through a pty (bench/pty.sh)"
    echo
    "$PY" "$BENCH_DIR/lib/tty_lines.py" --hlocal "$HLOCAL" --writer "$WRITER" --drain "$DRAIN" --work "$WORK" \
        --reps "${REPS:-5}"
    print_footer
}

main "$@"
