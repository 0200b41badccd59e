#!/usr/bin/env bash
# bench/ab.sh — two builds of isrproxy side by side in the same rounds, with
# the Go ceiling beside them: the effect of one change on stored hits, told
# apart from the machine's noise.
#
#   bench/ab.sh BASE          # git revision BASE against the working tree
#   bench/ab.sh BASE HEAD     # two revisions
#
# Both builds stand in front of one origin (bench/origin, 16 KiB pages) with
# the same environment; each scenario runs ROUNDS rounds of wrk, the order
# of the three systems rotated from round to round. For each run it records
# r/s, p99 and the CPU the server spent per request (utime + stime from
# /proc/PID/stat), and prints the medians of the same-round ratios of the
# second build to the first. Knobs (environment): ROUNDS (5), DURATION (5s),
# CONNS (64), THREADS (2), SCENARIOS ("hot-browser uniform-browser
# hot-identity uniform-identity"), BASE_PORT (18300), ISR_ENV (extra
# variables for both builds, "NAME=value ..."). Loopback only; every process
# it starts is stopped by PID on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
A_REV=${1:?usage: bench/ab.sh BASE [HEAD]}
B_REV=${2:-}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SCENARIOS=${SCENARIOS:-"hot-browser uniform-browser hot-identity uniform-identity"}
BASE_PORT=${BASE_PORT:-18300}
ISR_ENV=${ISR_ENV:-}
PAGES=1000
BROWSER_AE="gzip, deflate, br"

log() { printf '[ab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
command -v wrk >/dev/null || { echo "[ab] wrk is needed (Debian package wrk)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/israb.XXXXXX)
declare -A PID=() URL=()
cleanup() {
    local rc=$?
    set +e
    for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PID[@]}"; do wait "$p" 2>/dev/null; done
    for w in "$TMP"/src-*; do [[ -d $w ]] && git -C "$ROOT" worktree remove --force "$w" 2>/dev/null; done
    if [[ $rc == 0 ]]; then rm -rf "$TMP"; else log "kept $TMP"; fi
}
trap cleanup EXIT

# build NAME REV: the isrproxy binary of REV (the working tree when empty).
build() {
    local name=$1 rev=$2 src=$ROOT
    if [[ -n $rev ]]; then
        src=$TMP/src-$name
        git -C "$ROOT" worktree add --quiet --detach "$src" "$rev"
    fi
    (cd "$src" && go build -o "$TMP/$name" .)
    log "built $name from ${rev:-the working tree} ($(git -C "$src" rev-parse --short HEAD)$([[ -z $rev ]] && ! git -C "$ROOT" diff --quiet && echo ', with changes'))"
}
build a "$A_REV"
build b "$B_REV"
(cd "$ROOT" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/ceiling" ./bench/ceiling && go build -o "$TMP/fill" ./bench/fill)

wait_http() { # wait_http URL
    for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "[ab] $1 did not answer" >&2
    return 1
}

"$TMP/origin" -listen "127.0.0.1:$BASE_PORT" -delay 50ms >"$TMP/origin.log" 2>&1 &
PID[origin]=$!
wait_http "http://127.0.0.1:$BASE_PORT/__stats"
"$TMP/ceiling" -listen "127.0.0.1:$((BASE_PORT + 1))" -pages "$PAGES" >"$TMP/ceiling.log" 2>&1 &
PID[ceiling]=$!
URL[ceiling]="http://127.0.0.1:$((BASE_PORT + 1))"
wait_http "${URL[ceiling]}/page/0"
port=$((BASE_PORT + 2))
for s in a b; do
    # shellcheck disable=SC2086 # ISR_ENV is a list of assignments
    env ORIGIN_URL="http://127.0.0.1:$BASE_PORT" REVALIDATE_SECRET=ab-revalidate-secret-0123456789 \
        LISTEN_ADDR="127.0.0.1:$port" ADMIN_ADDR="127.0.0.1:$((port + 1))" LOG_LEVEL=warn \
        CACHE_MAX_BYTES=1GiB $ISR_ENV "$TMP/$s" >"$TMP/$s.log" 2>&1 &
    PID[$s]=$!
    URL[$s]="http://127.0.0.1:$port"
    wait_http "http://127.0.0.1:$((port + 1))/healthz"
    for ae in "$BROWSER_AE" ""; do
        "$TMP/fill" -url "${URL[$s]}" -from 0 -count "$PAGES" -conc 64 -ae "$ae" >/dev/null
    done
    port=$((port + 2))
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
HZ=$(getconf CLK_TCK)
SYS=(ceiling a b)
RAW=$TMP/raw.jsonl
: >"$RAW"
log "uptime before: $(uptime)"
for scen in $SCENARIOS; do
    for ((r = 0; r < ROUNDS; r++)); do
        for ((i = 0; i < 3; i++)); do
            s=${SYS[$(((i + r) % 3))]}
            url=${URL[$s]}/
            pages=$PAGES
            args=()
            if [[ $scen == hot-* ]]; then url=${URL[$s]}/page/0 pages=0; fi
            if [[ $scen == *-browser ]]; then args=(-H "Accept-Encoding: $BROWSER_AE"); fi
            before=$(ticks "${PID[$s]}")
            out=$(cd "$HERE/wrk" && BENCH_PAGES=$pages wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" \
                --timeout 5s -s bench.lua "${args[@]}" "$url" | grep '^{"requests"')
            cpu=$(($(ticks "${PID[$s]}") - before))
            printf '{"scenario":"%s","system":"%s","round":%d,"cpu_ticks":%d,"hz":%d,"wrk":%s}\n' \
                "$scen" "$s" "$r" "$cpu" "$HZ" "$out" >>"$RAW"
            sleep 0.5
        done
    done
    log "$scen done"
done
log "uptime after: $(uptime)"

python3 - "$RAW" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    w = r["wrk"]
    runs[(r["scenario"], r["system"], r["round"])] = {
        "rps": w["rps"], "p99": w["p99_us"] / 1000,
        "cpu": r["cpu_ticks"] / r["hz"] / max(w["requests"], 1) * 1e6}
scenarios = list(dict.fromkeys(k[0] for k in runs))
rounds = sorted({k[2] for k in runs})
def med(scen, sys_, other, field):
    xs = [runs[(scen, sys_, r)][field] / runs[(scen, other, r)][field]
          for r in rounds if (scen, sys_, r) in runs and (scen, other, r) in runs and runs[(scen, other, r)][field]]
    return statistics.median(xs) if xs else float("nan")
print("| scenario | system | r/s | p99 ms | CPU µs/request | r/s × a | p99 × a | CPU × a | r/s × ceiling | p99 × ceiling | CPU × ceiling |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for scen in scenarios:
    for s in ("ceiling", "a", "b"):
        m = {f: statistics.median(runs[(scen, s, r)][f] for r in rounds if (scen, s, r) in runs) for f in ("rps", "p99", "cpu")}
        print(f"| {scen} | {s} | {m['rps']:,.0f} | {m['p99']:.2f} | {m['cpu']:.1f} | "
              f"{med(scen, s, 'a', 'rps'):.2f}× | {med(scen, s, 'a', 'p99'):.2f}× | {med(scen, s, 'a', 'cpu'):.2f}× | "
              f"{med(scen, s, 'ceiling', 'rps'):.2f}× | {med(scen, s, 'ceiling', 'p99'):.2f}× | {med(scen, s, 'ceiling', 'cpu'):.2f}× |")
EOF
