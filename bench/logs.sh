#!/usr/bin/env bash
# Log throughput: hlocal vs direct execution, honcho and node-foreman.
#
#   bench/logs.sh            # median of REPS=5 runs (direct, hlocal), PEER_REPS=3 (peers)
#
# (a) one process writing 1,000,000 short lines, (b) four writing 250,000 each, with the
# runner's stdout to a file on tmpfs. Reports wall time, the runner's peak RSS, how many
# writer lines arrived whole and whether each process's order was kept. The method (and
# how each peer's exit behaviour is handled) is in bench/lib/logs.py and bench/README.md.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

main() {
    prepare_bench
    ensure_honcho
    ensure_nf
    wait_quiet
    print_header "Log throughput (bench/logs.sh)"
    echo "- runs: median of ${REPS:-5} (direct, hlocal) and ${PEER_REPS:-3} (honcho, node-foreman), interleaved"
    echo "- writer: bench/lib/writer.c (stdio, default buffering); lines like \`w1:123456\`; output on tmpfs"
    echo
    "$PY" "$BENCH_DIR/lib/logs.py" --writer "$WRITER" --hlocal "$HLOCAL" --work "$WORK" \
        --honcho "$HONCHO" --nf "$NF" --reps "${REPS:-5}" --peer-reps "${PEER_REPS:-3}" \
        ${ONLY:+--only "$ONLY"}
    print_footer
}

main "$@"
