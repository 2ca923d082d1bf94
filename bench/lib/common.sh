# Shared setup for the benchmark scripts: sourced, not run.
#
# Every ensure_* function is idempotent: it checks first and installs only what is
# missing (Debian packages with apt-get, honcho with pip, node-foreman with npm), so the
# scripts run on a fresh Debian machine and cost nothing the second time.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables set here are read by the scripts that source it

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
CACHE_DIR="$BENCH_DIR/.cache"   # compiled helpers, honcho's venv (git-ignored)
HLOCAL="$REPO_DIR/target/release/hlocal"
APT_UPDATED=0

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG... -- installs the Debian packages that are not installed yet.
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "need ${missing[*]} and there is no apt-get"
    if ((!APT_UPDATED)); then
        log "apt-get update"
        as_root apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The real interpreter, not a shim (pyenv's shims cost tens of ms per start, which
# would be billed to honcho). Python >= 3.11 for subprocess's process_group.
ensure_python() {
    command -v python3 >/dev/null || apt_install python3
    PY=$(python3 -c 'import sys; print(sys.executable)')
    "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 >= 3.11 needed ($PY)"
}

ensure_tools() {
    command -v gcc >/dev/null || apt_install gcc libc6-dev
    [[ -x /usr/bin/time ]] || apt_install time
    command -v ps >/dev/null || apt_install procps
}

# Builds the C helpers (the log writer, the idle process, the pty floor) when missing or stale.
build_helpers() {
    mkdir -p "$CACHE_DIR/bin"
    local name
    for name in writer idle drain; do
        if [[ ! -x "$CACHE_DIR/bin/$name" || "$BENCH_DIR/lib/$name.c" -nt "$CACHE_DIR/bin/$name" ]]; then
            gcc -O2 -Wall -o "$CACHE_DIR/bin/$name" "$BENCH_DIR/lib/$name.c"
        fi
    done
    WRITER="$CACHE_DIR/bin/writer"
    IDLE="$CACHE_DIR/bin/idle"
    DRAIN="$CACHE_DIR/bin/drain"
}

# Builds hlocal in release mode. cargo is a no-op when the binary is current, so the
# numbers are always for the code in this worktree; without cargo, an existing binary.
ensure_hlocal() {
    if command -v cargo >/dev/null; then
        log "cargo build --release"
        cargo build --release --quiet --manifest-path "$REPO_DIR/Cargo.toml"
    fi
    [[ -x "$HLOCAL" ]] || die "no $HLOCAL and no cargo to build it"
}

# honcho: from the interpreter's own site-packages when it is there, else a venv of our
# own (Debian's system Python refuses `pip install` outside a venv, PEP 668).
ensure_honcho() {
    if "$PY" -c 'import honcho' 2>/dev/null; then
        HONCHO="$PY -m honcho"
        return
    fi
    local venv="$CACHE_DIR/venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        "$PY" -m venv "$venv" 2>/dev/null || { apt_install python3-venv && "$PY" -m venv "$venv"; }
    fi
    "$venv/bin/python" -c 'import honcho' 2>/dev/null || {
        log "pip install honcho"
        "$venv/bin/python" -m pip install -q honcho
    }
    HONCHO="$venv/bin/python -m honcho"
}

# node-foreman (`nf`), from npm.
ensure_nf() {
    if ! command -v nf >/dev/null; then
        command -v npm >/dev/null || apt_install nodejs npm
        log "npm install -g foreman"
        as_root npm install -g --silent foreman >/dev/null
    fi
    NF=$(command -v nf)
}

# watchexec is optional: `cargo install watchexec-cli` takes minutes on 2 cores, so it
# is installed only with BENCH_INSTALL_WATCHEXEC=1; otherwise used when already there.
ensure_watchexec() {
    WATCHEXEC=$(command -v watchexec || true)
    if [[ -z "$WATCHEXEC" && "${BENCH_INSTALL_WATCHEXEC:-0}" == 1 ]] && command -v cargo >/dev/null; then
        log "cargo install watchexec-cli (slow)"
        cargo install --quiet --locked watchexec-cli
        WATCHEXEC=$(command -v watchexec || true)
    fi
}

# A scratch directory on tmpfs when there is one (output files then cost no disk I/O),
# removed on exit.
make_work_dir() {
    local base=/tmp
    [[ -d /dev/shm && -w /dev/shm ]] && base=/dev/shm
    WORK=$(mktemp -d "$base/hlocal-bench.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# Percent of both cores' time busy over the next $1 seconds, from /proc/stat. The load
# average lags by minutes (and counts our own previous runs); this is the present.
cpu_busy_pct() {
    local a b
    a=$(head -1 /proc/stat)
    sleep "$1"
    b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 2; i <= 9; i++) { t += y[i] - x[i] }
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%d\n", (t > 0 ? 100 * (t - idle) / t : 0)
    }'
}

# The machine has 2 cores shared with other people's builds: wait (up to
# BENCH_WAIT_MAX seconds, default 600) until both cores are less than BENCH_MAX_BUSY
# percent busy (default 15) over 3 s, then go on regardless and say what it was.
# What every benchmark needs before its runners: python, the system tools, a current
# release build of hlocal, the C helpers, and a fresh work directory.
prepare_bench() {
    ensure_python
    ensure_tools
    ensure_hlocal
    build_helpers
    make_work_dir
}

wait_quiet() {
    local max_busy=${BENCH_MAX_BUSY:-15} waited=0 limit=${BENCH_WAIT_MAX:-600} busy
    while busy=$(cpu_busy_pct 3) && ((busy >= max_busy)); do
        if ((waited >= limit)); then
            log "CPU still ${busy}% busy after ${waited}s; measuring anyway"
            break
        fi
        ((waited % 60 == 0)) && log "CPU ${busy}% busy (load $(load1)), waiting for a quieter machine"
        sleep 7
        waited=$((waited + 10))
    done
    START_BUSY=$busy
}

# Markdown lines describing what was measured and on what.
print_header() {
    local title=$1
    local commit cpu
    commit=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
    echo "### $title"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); hlocal commit $commit; kernel $(uname -r)"
    echo "- machine: $(nproc) cores ($cpu); at start: load average $(cut -d' ' -f1-3 /proc/loadavg), CPU ${START_BUSY:-?}% busy over 3 s"
    # hlocal's port check reads the kernel's TCP tables once per port: their size matters.
    echo "- TCP sockets on the machine at start: $(($(wc -l </proc/net/tcp) - 1)) IPv4, $(($(wc -l </proc/net/tcp6) - 1)) IPv6"
}

print_footer() {
    echo
    echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}
