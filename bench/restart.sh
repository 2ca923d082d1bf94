#!/usr/bin/env bash
# Restart latency with `hlocal start -w`: file write in the app root → the new instance's
# `Starting process` line, over CHANGES=20 changes, for debounce 200ms and 50ms.
# watchexec is compared when installed (BENCH_INSTALL_WATCHEXEC=1 installs it with
# cargo, which takes minutes); honcho and node-foreman have no watch mode.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

main() {
    prepare_bench
    ensure_watchexec
    wait_quiet
    print_header "Restart on file change (bench/restart.sh)"
    echo "- ${CHANGES:-20} changes per debounce; each write waits for the previous restart's \`up\` + 300 ms"
    if [[ -n "$WATCHEXEC" ]]; then
        echo "- watchexec: $("$WATCHEXEC" --version | head -1), \`watchexec --debounce D -r -w APP -- writer\`"
    else
        echo "- watchexec: not installed (BENCH_INSTALL_WATCHEXEC=1 installs it with cargo)"
    fi
    echo
    "$PY" "$BENCH_DIR/lib/restart.py" --hlocal "$HLOCAL" --writer "$WRITER" --work "$WORK" \
        --changes "${CHANGES:-20}" --debounces "${DEBOUNCES:-200ms,50ms}" --watchexec "${WATCHEXEC:-}"
    print_footer
}

main "$@"
