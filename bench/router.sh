#!/usr/bin/env bash
# Router benchmark: hlocal's router against direct access, nginx as a round-robin
# reverse proxy (keep-alive upstream) and node-foreman's proxy (`nf start -x`), in front
# of the same two backends (nginx, one worker each, serving a 1 KiB file). wrk measures
# req/s and p50/p99 latency at 1 and 64 keep-alive connections; then hlocal's RSS is
# read with 1,000 connections open (idle, then busy under wrk). Each row also shows the
# CPU time the target itself used per request (user + system, all its threads and
# workers), which stays meaningful when other work shares the cores. Prints markdown.
#
#   bench/router.sh                      # DURATION=10s per run
#   DURATION=5s bench/router.sh
#   HLOCAL_BENCH_MODE=harness bench/router.sh
#   HLOCAL_BENCH_PIN=1 bench/router.sh   # the proxy alone on cpu 0, all else on cpu 1
#
# HLOCAL_BENCH_PIN=1 measures each proxy (hlocal's router, nginx without and with an
# access log) pinned with taskset to cpu 0 while wrk and the backends run on cpu 1, at 1,
# 64 and 256 connections, RUNS=3 runs each, reporting medians: then the proxy's own cost
# is what differs between rows, not how much CPU it leaves the load generator. hlocal's
# printer, supervisor and router threads all share cpu 0 in that mode, as nginx's master
# and workers do. nginx's `worker_processes auto` counts online cores, so two nginx
# workers share cpu 0 where hlocal runs one router worker; the pinned mode therefore also
# measures nginx with one worker. node-foreman is left out of it.
#
# Every target is started before the first run and measured in turn: run k of each is
# taken before run k+1 of any, so all targets meet the same spells of the machine's noise.
#
# hlocal runs as `hlocal start -m web=2 --no-timestamp` on a Procfile whose `web` is the
# nginx backend (stdout to /dev/null). HLOCAL_BENCH_MODE=harness instead runs the router
# alone through an ignored test (src/router/tests/bench.rs) in front of the script's own
# backends; the default, `auto`, falls back to it when `hlocal start` does not bring the
# router up (before the supervisor is merged). Everything listens on 127.0.0.1 only.
# Installs wrk and nginx (apt-get) and node-foreman (npm) when missing. Needs python3.
set -euo pipefail

DURATION=${DURATION:-10s}
MODE=${HLOCAL_BENCH_MODE:-auto}
PIN=${HLOCAL_BENCH_PIN:-0}
if [ "$PIN" = 1 ]; then
    CONNS=${CONNS:-1 64 256}
    RUNS=${RUNS:-3}
    proxy_cpu=(taskset -c 0)
    load_cpu=(taskset -c 1)
else
    CONNS=${CONNS:-1 64}
    RUNS=${RUNS:-1}
    proxy_cpu=()
    load_cpu=()
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
work=$(mktemp -d /tmp/hlocal-bench.XXXXXX)
chmod 755 "$work" # nginx workers may run as another user
pids=()

say() { printf '%s\n' "$*" >&2; }

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        stop_pid "$pid"
    done
    # Backends started by hlocal or nf write their pid files here; end those by PID too.
    for pidfile in "$work"/*.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# nginx as a reverse proxy in front of the backends at $3 and $3+1, with access-log
# directive $2 and $4 workers (default auto), added as target $1.
nginx_proxy() {
    local label=$1 access_log=$2 b=$3 workers=${4:-auto} proxy nginx_pid
    proxy=$(free_ports 1)
    sed -e "s|__PORT__|$proxy|g" -e "s|__DIR__|$work|g" -e "s|__BACKEND1__|$b|g" \
        -e "s|__BACKEND2__|$((b + 1))|g" -e "s|__ACCESS_LOG__|$access_log|" \
        -e "s|__WORKERS__|$workers|" \
        "$here/router/proxy.conf" >"$work/proxy-$proxy.conf"
    "${proxy_cpu[@]}" nginx -e "$work/proxy-$proxy.log" -c "$work/proxy-$proxy.conf" &
    nginx_pid=$!
    pids+=("$nginx_pid")
    wait_http "http://127.0.0.1:$proxy/" 10
    add_target "$label" "http://127.0.0.1:$proxy/" "$nginx_pid $(pgrep -P "$nginx_pid")"
}

install_tools() {
    if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
        say "installing wrk and nginx..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
    fi
    if ! command -v nf >/dev/null; then
        say "installing node-foreman..."
        npm install -g foreman >/dev/null 2>&1
    fi
}

# A port P such that P..P+n-1 are all free on 127.0.0.1.
free_ports() {
    python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(1000):
    base = random.randrange(20000, 32000 - n)  # below the ephemeral range
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
EOF
}

wait_http() { # url seconds [pid that must stay alive]
    local deadline=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if curl -fs -o /dev/null "$1"; then
            return 0
        fi
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

# The nginx backend config for a port, as a file path.
backend_conf() {
    sed -e "s|__PORT__|$1|g" -e "s|__DIR__|$work|g" "$here/router/backend.conf" >"$work/backend-$1.conf"
    echo "$work/backend-$1.conf"
}

start_backend() {
    "${load_cpu[@]}" nginx -e "$work/backend-$1.log" -c "$(backend_conf "$1")" &
    pids+=("$!")
    wait_http "http://127.0.0.1:$1/" 10
}

# A process and its descendants (nf forks its proxy, which would outlive it), by PID.
descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        descendants "$child"
        echo "$child"
    done
}

stop_pid() {
    local pid
    for pid in $(descendants "$1") "$1"; do
        kill "$pid" 2>/dev/null || true
    done
    wait "$1" 2>/dev/null || true
}

# Converts wrk's 52.10us / 1.23ms / 2.00s to microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n
    }'
}

# CPU time (user + system, all threads, in clock ticks) used so far by the given PIDs.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

# The median of the numbers given (as text, for printing).
median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f", m
    }'
}

# The targets, measured in turn: every one is started first and stays up (idle while
# another is measured), so that run k of each is taken within a minute of the others'
# run k. The machine's noise drifts over minutes; measured one after another, a whole
# target's runs could fall in a quiet or a noisy spell.
names=() urls=() target_pids=()
add_target() { # name url "pids whose CPU time is the target's"
    names+=("$1") urls+=("$2") target_pids+=("$3")
}

declare -A rps p50 p99 cpu errors
# Run $3 of target $1 at $2 connections; its figures are appended under "$1,$2".
measure_once() {
    local t=$1 conns=$2 run=$3 threads out before after requests key="$1,$2"
    threads=$((conns == 1 ? 1 : 2))
    before=$(cpu_ticks ${target_pids[t]})
    out=$("${load_cpu[@]}" wrk -t"$threads" -c"$conns" -d"$DURATION" --latency "${urls[t]}")
    after=$(cpu_ticks ${target_pids[t]})
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu[$key]+=" $(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
    rps[$key]+=" $(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p50[$key]+=" $(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
    p99[$key]+=" $(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    errors[$key]+=$(awk '/Non-2xx|Socket errors/ {sub(/^ +/, ""); printf "%s; ", $0}' <<<"$out")
    local last_rps=${rps[$key]##* } last_p50=${p50[$key]##* } last_p99=${p99[$key]##* }
    say "${names[t]} c=$conns run $run: ${last_rps%.*} req/s, p50 ${last_p50%.*} µs, p99 ${last_p99%.*} µs, ${cpu[$key]##* } µs CPU/request"
}

# Every target at every connection count, RUNS times: run k of every target before run
# k+1 of any, each run starting with the next target so that none is always first.
measure_all() {
    local n=${#names[@]} t conns run i
    for t in "${!names[@]}"; do # warm-up: fills connection pools
        "${load_cpu[@]}" wrk -t2 -c64 -d2s "${urls[t]}" >/dev/null
    done
    for conns in $CONNS; do
        for run in $(seq "$RUNS"); do
            for i in $(seq 0 $((n - 1))); do
                measure_once $(((run - 1 + i) % n)) "$conns" "$run"
            done
        done
    done
}

# The table's rows: per target and connection count, the medians of its runs.
rows=()
make_rows() {
    local t conns key m_rps m_p50 m_p99
    for t in "${!names[@]}"; do
        for conns in $CONNS; do
            key="$t,$conns"
            # shellcheck disable=SC2086 # the runs' figures are space-separated on purpose
            m_rps=$(median ${rps[$key]}) m_p50=$(median ${p50[$key]}) m_p99=$(median ${p99[$key]})
            # shellcheck disable=SC2086
            rows+=("| ${names[t]} | $conns | ${m_rps%.*} | ${m_p50%.*} | ${m_p99%.*} | $(median ${cpu[$key]}) | ${errors[$key]:-none} |")
        done
    done
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# hlocal's RSS: idle, with 1,000 keep-alive connections open (opened one after another,
# one request each, then held), and with 1,000 connections busy under wrk. Idle first:
# memory freed after a busy peak is not handed back to the OS by malloc.
measure_rss() { # pid port
    local pid=$1 port=$2 idle held busy
    idle=$(rss_kib "$pid")
    coproc HOLD { python3 "$here/router/hold.py" "$port" 1000; }
    read -r _ready <&"${HOLD[0]}"
    sleep 1 # the router parks idle connections after 50-100 ms
    held=$(rss_kib "$pid")
    exec {HOLD[1]}>&-
    wait "$HOLD_PID" 2>/dev/null || true
    "${load_cpu[@]}" wrk -t2 -c1000 -d6s "http://127.0.0.1:$port/" >/dev/null &
    local wrk_pid=$!
    sleep 4
    busy=$(rss_kib "$pid")
    wait "$wrk_pid" || true
    rss_rows=("| hlocal RSS, after the runs above | $((idle / 1024)) MiB |"
        "| hlocal RSS, 1,000 open keep-alive connections (idle) | $((held / 1024)) MiB |"
        "| hlocal RSS, 1,000 connections busy under wrk | $((busy / 1024)) MiB |")
}

procfile() {
    cat >"$work/Procfile" <<EOF
web: sed -e "s|__PORT__|\$PORT|g" -e "s|__DIR__|$work|g" "$here/router/backend.conf" > "$work/backend-\$PORT.conf" && exec ${load_cpu[*]} nginx -e "$work/backend-\$PORT.log" -c "$work/backend-\$PORT.conf"
EOF
}

# The router through the real command line; web.1 and web.2 are nginx on P+1 and P+2.
run_hlocal_start() { # port
    (cd "$root" && cargo build --release --quiet)
    "${proxy_cpu[@]}" "$root/target/release/hlocal" start -f "$work/Procfile" -d "$work" -p "$1" -m web=2 \
        --no-timestamp >/dev/null 2>"$work/hlocal.err" &
    hlocal_pid=$!
    pids+=("$hlocal_pid")
    wait_http "http://127.0.0.1:$1/" 30 "$hlocal_pid"
}

# The router alone, through the benchmark harness, in front of the given backends.
run_harness() { # port backend1 backend2
    local exe
    exe=$(cd "$root" && cargo test --release --bin hlocal --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "hlocal" and m["profile"]["test"]:
        print(m["executable"])')
    HLOCAL_BENCH_PORT=$1 HLOCAL_BENCH_BACKENDS="127.0.0.1:$2,127.0.0.1:$3" \
        "$exe" router::tests::bench::harness --ignored --exact >/dev/null 2>"$work/harness.err" &
    hlocal_pid=$!
    pids+=("$hlocal_pid")
    wait_http "http://127.0.0.1:$1/" 60 "$hlocal_pid"
}

main() {
    install_tools
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # wrk -c1000 and the proxies need fds
    mkdir -p "$work/www" "$work/tmp"
    head -c 1024 /dev/zero | tr '\0' 'x' >"$work/www/index.html"
    procfile

    local b nfp hp
    b=$(free_ports 2)
    start_backend "$b"
    local backend_pid=$!
    start_backend "$((b + 1))"
    add_target "direct (one backend)" "http://127.0.0.1:$b/" "$backend_pid $(pgrep -P "$backend_pid")"

    nginx_proxy "nginx proxy (keepalive)" "access_log off;" "$b"
    nginx_proxy "nginx proxy (keepalive, logging)" "access_log /dev/null router;" "$b"
    if [ "$PIN" = 1 ]; then
        # `auto` counts online cores, not the one it is pinned to: two workers share
        # cpu 0 there, while hlocal's router runs one. The same nginx with one worker:
        nginx_proxy "nginx proxy (keepalive, 1 worker)" "access_log off;" "$b" 1
    fi

    hp=$(free_ports 3)
    local how="hlocal start"
    hlocal_pid=
    if [ "$MODE" = harness ] || ! run_hlocal_start "$hp"; then
        if [ "$MODE" = start ]; then
            say "hlocal start did not bring the router up:"
            cat "$work/hlocal.err" >&2
            exit 1
        fi
        [ -n "$hlocal_pid" ] && stop_pid "$hlocal_pid"
        [ "$MODE" = auto ] && say "hlocal start did not bring the router up: measuring the router through its test harness"
        how="hlocal router (harness)"
        if ! run_harness "$hp" "$b" "$((b + 1))"; then
            say "the harness did not start:"
            cat "$work/harness.err" >&2
            exit 1
        fi
    fi
    add_target "$how" "http://127.0.0.1:$hp/" "$hlocal_pid"

    local nf_row=
    if [ "$PIN" != 1 ]; then
        nfp=$(free_ports 3)
        (cd "$work" && exec nf start -j "$work/Procfile" -x "$nfp" -p "$((nfp + 1))" web=2 >/dev/null 2>&1) &
        local nf_pid=$!
        pids+=("$nf_pid")
        if wait_http "http://127.0.0.1:$nfp/" 30; then
            add_target "node-foreman proxy" "http://127.0.0.1:$nfp/" "$(pgrep -P "$nf_pid" -f proxy.js)"
        else
            nf_row="| node-foreman proxy | - | did not start | | | | |"
        fi
    fi

    measure_all
    make_rows
    [ -n "$nf_row" ] && rows+=("$nf_row")
    measure_rss "$hlocal_pid" "$hp"
    print_tables
}

print_tables() {
    local pinned=""
    [ "$PIN" = 1 ] && pinned="; proxy alone on cpu 0, wrk and backends on cpu 1; median of $RUNS runs"
    printf '\n%s, 1 KiB responses, %s per run, %s cores, %s%s\n\n' "$(date -u +%F)" "$DURATION" "$(nproc)" "$(uname -sr)" "$pinned"
    printf '| target | connections | req/s | p50 (µs) | p99 (µs) | CPU µs/request | errors |\n'
    printf '|---|---:|---:|---:|---:|---:|---|\n'
    printf '%s\n' "${rows[@]}"
    print_ratios
    printf '\n| memory | |\n|---|---:|\n'
    printf '%s\n' "${rss_rows[@]}"
}

# hlocal's medians over nginx's without an access log, at each connection count both have.
print_ratios() {
    printf '%s\n' "${rows[@]}" | awk -F' *[|] *' '
        $4 + 0 > 0 {
            rps[$2, $3] = $4; p99[$2, $3] = $6; cpu[$2, $3] = $7
            if (!($3 in seen)) { seen[$3]; order[++n] = $3 }
        }
        END {
            me = "hlocal start"; ref = "nginx proxy (keepalive)"
            for (i = 1; i <= n; i++) {
                c = order[i]
                if (!((me, c) in rps) || !((ref, c) in rps) || p99[ref, c] <= 0 || cpu[ref, c] <= 0) continue
                if (!shown++) printf "\n| hlocal / nginx without a log | req/s | p99 | CPU per request |\n|---|---:|---:|---:|\n"
                printf "| %s connection%s | %.2fx | %.2fx | %.2fx |\n", c, (c == 1 ? "" : "s"),
                    rps[me, c] / rps[ref, c], p99[me, c] / p99[ref, c], cpu[me, c] / cpu[ref, c]
            }
        }'
}

main "$@"
