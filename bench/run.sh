#!/usr/bin/env bash
# bench/run.sh — isrproxy side by side with nginx proxy_cache, Varnish and
# the Go ceiling, all in front of the same slow sample origin on loopback.
#
#   bench/run.sh                 # full run: 5 rounds of 5 s per scenario
#   QUICK=1 bench/run.sh         # smoke run: 2 rounds of 2 s, smaller fills
#
# Knobs (environment): ROUNDS, DURATION, CONNS, THREADS, ORIGIN_DELAY,
# SYSTEMS, MEM_PAGES, MEM_ROUNDS, STORM_PAGES, BURST_N, REVALIDATE_CONCURRENCY,
# PACED_ROUNDS, PACED_DURATION, PACE_MS, LOADED_CONNS, LOADED_PACE_MS, BASE_PORT, MAX_TIME, KEEP_TMP,
# RESULTS_DIR. See bench/README.md.
#
# It installs its Debian packages (nginx, varnish, wrk, gnuplot-nox) when
# they are missing, builds the origin, the ceiling, the tools and isrproxy,
# starts everything on 127.0.0.1, warms the caches, runs the scenarios, and
# writes the table (stdout), results.json, results.md and chart.png. Every
# process it starts is stopped by PID on exit; a watchdog ends the run after
# MAX_TIME seconds.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    ROUNDS=${ROUNDS:-2}
    DURATION=${DURATION:-2s}
    MEM_PAGES=${MEM_PAGES:-2000}
    MEM_ROUNDS=${MEM_ROUNDS:-1}
    STORM_PAGES=${STORM_PAGES:-200}
    PACED_ROUNDS=${PACED_ROUNDS:-1}
    PACED_DURATION=${PACED_DURATION:-2s}
fi
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ORIGIN_DELAY=${ORIGIN_DELAY:-50ms}
SYSTEMS=${SYSTEMS:-"ceiling nginx varnish isrproxy"}
MEM_PAGES=${MEM_PAGES:-10000}
MEM_ROUNDS=${MEM_ROUNDS:-3}
STORM_PAGES=${STORM_PAGES:-1000}
BURST_N=${BURST_N:-200}
REVALIDATE_CONCURRENCY=${REVALIDATE_CONCURRENCY:-4}
# The tail at equal load: every connection waits PACE_MS after each answer,
# so each system gets the same offered rate (64 connections, 8 ms: about
# 7,500 r/s, below every system's saturation), and the p99 is the server's
# own rather than the share of the two cores it leaves to wrk.
PACED_ROUNDS=${PACED_ROUNDS:-3}
PACED_DURATION=${PACED_DURATION:-3s}
PACE_MS=${PACE_MS:-8}
# The tail at equal load near capacity: more connections, 1 ms between an
# answer and the next request (about 50,000 r/s here), below the rate of
# isrproxy's peers (nginx for identity clients, Varnish for browsers) but
# not far: the p99 of each at the same load, where it is hardest to keep.
LOADED_CONNS=${LOADED_CONNS:-96}
LOADED_PACE_MS=${LOADED_PACE_MS:-1}
BASE_PORT=${BASE_PORT:-18100}
MAX_TIME=${MAX_TIME:-2400}
KEEP_TMP=${KEEP_TMP:-0}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
STORED_PAGES=1000      # the uniform scenario's pages: /page/0 … /page/999
HOT_PAGE=/page/0
BROWSER_AE="gzip, deflate, br"
SECRET="bench-revalidate-secret-0123456789"

PORT_ORIGIN=$BASE_PORT
PORT_CEILING=$((BASE_PORT + 1))
PORT_NGINX=$((BASE_PORT + 2))
PORT_VARNISH=$((BASE_PORT + 3))
PORT_ISR=$((BASE_PORT + 4))
PORT_ISR_ADMIN=$((BASE_PORT + 5))
PORT_VARNISH_ADMIN=$((BASE_PORT + 6))

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
warn() { printf '[bench %(%H:%M:%S)T] WARNING: %s\n' -1 "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# --- duration helpers ---------------------------------------------------
secs() { # "5s" / "1500ms" / "2m" -> seconds (float)
    local d=$1
    case $d in
        *ms) awk -v v="${d%ms}" 'BEGIN{print v/1000}' ;;
        *s) echo "${d%s}" ;;
        *m) awk -v v="${d%m}" 'BEGIN{print v*60}' ;;
        *) echo "$d" ;;
    esac
}
ceil() { awk -v v="$1" 'BEGIN{c=int(v); if (c<v) c++; print c}'; }

# --- packages -------------------------------------------------------------
need_pkgs=()
command -v nginx >/dev/null 2>&1 || need_pkgs+=(nginx)
command -v varnishd >/dev/null 2>&1 || need_pkgs+=(varnish)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
command -v gnuplot >/dev/null 2>&1 || need_pkgs+=(gnuplot-nox)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
if ((${#need_pkgs[@]})); then
    [[ $(id -u) == 0 ]] || die "missing ${need_pkgs[*]}; run as root or: apt-get install ${need_pkgs[*]}"
    log "installing ${need_pkgs[*]} from Debian's packages"
    # Keep the packages' own services from starting: this script runs its own.
    policy_created=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${need_pkgs[@]}" >/dev/null
    ((policy_created)) && rm -f /usr/sbin/policy-rc.d
fi
command -v wrk >/dev/null || die "wrk is required"
command -v go >/dev/null || die "go is required"

# --- work space, processes, cleanup ---------------------------------------
TMP=$(mktemp -d /tmp/isrbench.XXXXXX)
chmod 755 "$TMP"
CACHE_DIR=/dev/shm/isrbench-nginx.$$
RAW=$TMP/raw.jsonl
: >"$RAW"
declare -A PID=()
WATCHDOG=

stop_pid() { # stop_pid NAME PID: TERM, wait up to 5 s, then KILL
    local name=$1 pid=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    warn "$name (pid $pid) did not stop: KILL"
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    for name in isrproxy varnish nginx ceiling origin wrk; do
        [[ -n ${PID[$name]:-} ]] && stop_pid "$name" "${PID[$name]}"
    done
    [[ -n $WATCHDOG ]] && kill -TERM "$WATCHDOG" 2>/dev/null
    rm -rf "$CACHE_DIR"
    if [[ $KEEP_TMP == 1 || $rc != 0 ]]; then
        log "logs and raw results kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'warn "interrupted"; exit 130' INT TERM

# The watchdog ends the whole run (and so every server) after MAX_TIME.
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$MAX_TIME" &
    sp=$!
    wait "$sp"
    echo "[bench] ERROR: MAX_TIME=${MAX_TIME}s reached, stopping" >&2
    kill -TERM $$
) &
WATCHDOG=$!

for p in $PORT_ORIGIN $PORT_CEILING $PORT_NGINX $PORT_VARNISH $PORT_ISR $PORT_ISR_ADMIN $PORT_VARNISH_ADMIN; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        die "port $p on 127.0.0.1 is in use (set BASE_PORT)"
    fi
done

# --- build ------------------------------------------------------------------
BIN=$TMP/bin
mkdir -p "$BIN"
log "building the origin, the ceiling and the tools"
(cd "$ROOT" && for t in origin ceiling fill burst storm report; do
    go build -o "$BIN/$t" "./bench/$t"
done) || die "building bench tools failed"

has() { [[ " $SYSTEMS " == *" $1 "* ]]; }
drop() { SYSTEMS=$(echo " $SYSTEMS " | sed "s/ $1 / /; s/^ *//; s/ *$//"); }

ISR_COMMIT=
if has isrproxy; then
    log "building isrproxy (go build -o \$TMP/isrproxy . in $ROOT)"
    if (cd "$ROOT" && go build -o "$BIN/isrproxy" .) >"$TMP/isrproxy-build.log" 2>&1; then
        ISR_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || true)
        git -C "$ROOT" diff --quiet HEAD 2>/dev/null || ISR_COMMIT="${ISR_COMMIT:-none}+dirty"
    else
        warn "isrproxy did not build; its column is skipped:"
        head -n 20 "$TMP/isrproxy-build.log" | sed 's/^/    /' >&2
        drop isrproxy
    fi
fi

# --- start the systems ---------------------------------------------------------
wait_http() { # wait_http URL SECONDS
    local url=$1 t=$2 i
    for ((i = 0; i < t * 10; i++)); do
        curl -s -o /dev/null -m 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

start_origin() {
    log "origin on 127.0.0.1:$PORT_ORIGIN (delay $ORIGIN_DELAY)"
    "$BIN/origin" -listen "127.0.0.1:$PORT_ORIGIN" -delay "$ORIGIN_DELAY" >"$TMP/origin.log" 2>&1 &
    PID[origin]=$!
    wait_http "http://127.0.0.1:$PORT_ORIGIN/__stats" 10 || die "origin did not start: $(cat "$TMP/origin.log")"
}

start_ceiling() {
    "$BIN/ceiling" -listen "127.0.0.1:$PORT_CEILING" -pages "$STORED_PAGES" >"$TMP/ceiling.log" 2>&1 &
    PID[ceiling]=$!
    wait_http "http://127.0.0.1:$PORT_CEILING$HOT_PAGE" 30
}

start_nginx() {
    local user=root
    id www-data >/dev/null 2>&1 && user=www-data
    mkdir -p "$TMP/nginx" "$CACHE_DIR"
    chown "$user" "$CACHE_DIR"
    sed -e "s|@USER@|$user|g" -e "s|@WORKERS@|$(nproc)|g" -e "s|@PREFIX@|$TMP/nginx|g" \
        -e "s|@CACHE_DIR@|$CACHE_DIR|g" -e "s|@LISTEN@|127.0.0.1:$PORT_NGINX|g" \
        -e "s|@ORIGIN@|127.0.0.1:$PORT_ORIGIN|g" "$HERE/nginx.conf.tmpl" >"$TMP/nginx/nginx.conf"
    nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx.log" 2>&1 &
    PID[nginx]=$!
    wait_http "http://127.0.0.1:$PORT_NGINX/__stats" 10 || { cat "$TMP/nginx.log" "$TMP/nginx/error.log" >&2; return 1; }
}

start_varnish() {
    sed -e "s|@ORIGIN_PORT@|$PORT_ORIGIN|g" "$HERE/varnish.vcl.tmpl" >"$TMP/varnish.vcl"
    chmod 644 "$TMP/varnish.vcl"
    varnishd -F -n "$TMP/varnish" -a "127.0.0.1:$PORT_VARNISH" -T "127.0.0.1:$PORT_VARNISH_ADMIN" \
        -f "$TMP/varnish.vcl" -s malloc,2G -P "$TMP/varnish.pid" >"$TMP/varnish.log" 2>&1 &
    PID[varnish]=$!
    wait_http "http://127.0.0.1:$PORT_VARNISH/__stats" 30 || { cat "$TMP/varnish.log" >&2; return 1; }
}

start_isrproxy() {
    ORIGIN_URL="http://127.0.0.1:$PORT_ORIGIN" REVALIDATE_SECRET="$SECRET" \
        LISTEN_ADDR="127.0.0.1:$PORT_ISR" ADMIN_ADDR="127.0.0.1:$PORT_ISR_ADMIN" \
        LOG_LEVEL=warn REVALIDATE_CONCURRENCY="$REVALIDATE_CONCURRENCY" CACHE_MAX_BYTES=1GiB \
        "$BIN/isrproxy" >"$TMP/isrproxy.log" 2>&1 &
    PID[isrproxy]=$!
    wait_http "http://127.0.0.1:$PORT_ISR_ADMIN/healthz" 15 || { tail -n 20 "$TMP/isrproxy.log" >&2; return 1; }
}

declare -A URL=(
    [ceiling]="http://127.0.0.1:$PORT_CEILING"
    [nginx]="http://127.0.0.1:$PORT_NGINX"
    [varnish]="http://127.0.0.1:$PORT_VARNISH"
    [isrproxy]="http://127.0.0.1:$PORT_ISR"
)

start_origin
for s in $SYSTEMS; do
    log "starting $s on ${URL[$s]#http://}"
    if ! "start_$s"; then
        warn "$s did not start; its column is skipped"
        [[ -n ${PID[$s]:-} ]] && stop_pid "$s" "${PID[$s]}"
        unset "PID[$s]"
        drop "$s"
    fi
done
has ceiling || die "the Go ceiling is needed: every ratio is against it"

CACHES=$(for s in $SYSTEMS; do [[ $s != ceiling ]] && printf '%s ' "$s"; done)
CACHES=${CACHES% }
read -r -a SYS <<<"$SYSTEMS"
NSYS=${#SYS[@]}
log "systems: ${SYS[*]}"

# rotated ROUND: the systems in this round's order
rotated() {
    local r=$1 i
    for ((i = 0; i < NSYS; i++)); do printf '%s ' "${SYS[$(((i + r) % NSYS))]}"; done
}

record() { printf '%s\n' "$1" >>"$RAW"; }

# --- warm-up and checks ----------------------------------------------------------
for s in $CACHES; do
    log "warming $s: pages 0..$((STORED_PAGES - 1)), browser and identity clients"
    for ae in "$BROWSER_AE" ""; do
        out=$(timeout 120 "$BIN/fill" -url "${URL[$s]}" -from 0 -count "$STORED_PAGES" -conc 64 -ae "$ae") || warn "fill failed on $s"
        record "{\"kind\":\"warm\",\"system\":\"$s\",\"ae\":\"$ae\",\"fill\":${out:-null}}"
    done
done
for s in $SYSTEMS; do
    for ae in "$BROWSER_AE" ""; do
        out=$(timeout 60 "$BIN/fill" -url "${URL[$s]}" -from 0 -count "$STORED_PAGES" -conc 16 -ae "$ae") || warn "check failed on $s"
        record "{\"kind\":\"check\",\"system\":\"$s\",\"ae\":\"$ae\",\"fill\":${out:-null}}"
        log "check $s (${ae:-identity}): $out"
    done
done

# --- memory per stored page ----------------------------------------------------
# Measured early, on processes that have just served the warm-up (so their
# connections, threads and buffers exist) and hold the 1,000 warm pages and
# the earlier rounds' pages: each round's delta is what its new pages cost.
kb_field() { # kb_field FILE FIELD -> the field's kB value, 0 when absent
    local v
    v=$(awk -v f="$2" '$1 == f":" {print $2; exit}' "$1" 2>/dev/null || true)
    echo "${v:-0}"
}
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }
mem_bytes() { # mem_bytes SYSTEM -> bytes attributed to the system
    local s=$1 kb=0 p
    case $s in
        isrproxy) kb=$(kb_field "/proc/${PID[isrproxy]}/status" VmRSS) ;;
        varnish) # the cache process (varnishd's child) holds the store
            for p in $(children "${PID[varnish]}"); do
                kb=$((kb + $(kb_field "/proc/$p/status" VmRSS)))
            done ;;
        nginx) # master and workers (Pss: shared zones counted once) + tmpfs files
            for p in "${PID[nginx]}" $(children "${PID[nginx]}"); do
                kb=$((kb + $(kb_field "/proc/$p/smaps_rollup" Pss)))
            done
            kb=$((kb + $(du -sk "$CACHE_DIR" | cut -f1))) ;;
    esac
    echo $((kb * 1024))
}
metric() { # metric NAME -> isrproxy's value of a Prometheus gauge (0 if absent)
    local v
    v=$(curl -s -m 5 "http://127.0.0.1:$PORT_ISR_ADMIN/metrics" | awk -v m="$1" '$1 == m {printf "%.0f", $2; exit}' || true)
    echo "${v:-0}"
}
# MEM_ROUNDS rounds, each storing MEM_PAGES pages not stored before, the
# order of the caches rotated: one reading of a process's RSS moves by 5-10%
# with its allocator's timing, so the figure is the median of the rounds.
read -r -a MEM_CS <<<"$CACHES"
for ((r = 1; r <= MEM_ROUNDS; r++)); do
    from=$((600000 + (r - 1) * MEM_PAGES))
    for ((i = 0; i < ${#MEM_CS[@]}; i++)); do
        s=${MEM_CS[$(((i + r) % ${#MEM_CS[@]}))]}
        log "memory round $r: $s stores $MEM_PAGES new pages (browser clients)"
        store_before=0
        [[ $s == isrproxy ]] && store_before=$(metric isrproxy_cache_bytes)
        sleep 2 # both readings of a process idle for 2 s: garbage left by the checks counts in neither
        before=$(mem_bytes "$s")
        out=$(timeout 600 "$BIN/fill" -url "${URL[$s]}" -from "$from" -count "$MEM_PAGES" -conc 64 -ae "$BROWSER_AE") || warn "memory fill failed on $s"
        sleep 2
        after=$(mem_bytes "$s")
        store_after=0
        [[ $s == isrproxy ]] && store_after=$(metric isrproxy_cache_bytes)
        record "{\"kind\":\"memory\",\"system\":\"$s\",\"round\":$r,\"pages\":$MEM_PAGES,\"before_bytes\":$before,\"after_bytes\":$after,\"store_before_bytes\":$store_before,\"store_after_bytes\":$store_after,\"fill\":${out:-null}}"
        log "  $s: $(((after - before) / MEM_PAGES)) bytes per page ($before -> $after)"
    done
done

# --- throughput scenarios -----------------------------------------------------------
pids_of() { # pids_of SYSTEM -> the processes that serve its requests
    case $1 in
        varnish | nginx) echo "${PID[$1]}" $(children "${PID[$1]}") ;;
        *) echo "${PID[$1]}" ;;
    esac
}
cpu_ticks() { # cpu_ticks SYSTEM -> utime + stime of its processes, in clock ticks
    local t=0 p v
    for p in $(pids_of "$1"); do
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo "$t"
}
HZ=$(getconf CLK_TCK)

run_wrk() { # run_wrk KIND SCENARIO SYSTEM ROUND -> appends a record
    local kind=$1 scen=$2 s=$3 r=$4 url args=() out pages=0 pace=0 dur=$DURATION conns=$CONNS before
    case $scen in
        hot-*) url="${URL[$s]}$HOT_PAGE" ;;
        uniform-*) url="${URL[$s]}/"; pages=$STORED_PAGES ;;
    esac
    [[ $scen == *-browser ]] && args+=(-H "Accept-Encoding: $BROWSER_AE")
    case $kind in
        paced) pace=$PACE_MS dur=$PACED_DURATION ;;
        loaded) pace=$LOADED_PACE_MS dur=$PACED_DURATION conns=$LOADED_CONNS ;;
    esac
    before=$(cpu_ticks "$s")
    out=$(cd "$HERE/wrk" && BENCH_PAGES=$pages BENCH_PACE_MS=$pace timeout $(($(ceil "$(secs "$dur")") + 30)) \
        wrk -t "$THREADS" -c "$conns" -d "$dur" --timeout 5s -s bench.lua "${args[@]}" "$url" |
        grep '^{"requests"' || true)
    if [[ -z $out ]]; then
        warn "wrk gave no result for $scen on $s"
        return
    fi
    record "{\"kind\":\"$kind\",\"scenario\":\"$scen\",\"system\":\"$s\",\"round\":$r,\"cpu_ticks\":$(($(cpu_ticks "$s") - before)),\"hz\":$HZ,\"wrk\":$out}"
    printf '  %-6s %-17s %-9s round %d  %s r/s  p99 %s us\n' "$kind" "$scen" "$s" "$r" \
        "$(sed 's/.*"rps":\([0-9.]*\).*/\1/' <<<"$out")" "$(sed 's/.*"p99_us":\([0-9]*\).*/\1/' <<<"$out")" >&2
}

for scen in hot-identity hot-browser uniform-identity uniform-browser; do
    log "scenario $scen: $ROUNDS rounds of $DURATION, $CONNS connections"
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(rotated "$r"); do
            run_wrk wrk "$scen" "$s" "$r"
            sleep 0.5
        done
    done
done

# At equal load: light (paced), then near capacity (loaded).
for kind in paced loaded; do
    what="$CONNS connections, $PACE_MS ms"
    [[ $kind == loaded ]] && what="$LOADED_CONNS connections, $LOADED_PACE_MS ms"
    for scen in hot-identity hot-browser uniform-identity uniform-browser; do
        log "scenario $scen at equal load ($kind): $PACED_ROUNDS rounds of $PACED_DURATION, $what between an answer and the next request"
        for ((r = 1; r <= PACED_ROUNDS; r++)); do
            for s in $(rotated "$r"); do
                run_wrk "$kind" "$scen" "$s" "$r"
                sleep 0.5
            done
        done
    done
done

# --- cold burst ----------------------------------------------------------------------
if [[ -n $CACHES ]]; then
    read -r -a CS <<<"$CACHES"
    log "cold burst: $BURST_N simultaneous requests for one cold page, $ROUNDS rounds"
    for ((r = 1; r <= ROUNDS; r++)); do
        for ((i = 0; i < ${#CS[@]}; i++)); do
            s=${CS[$(((i + r) % ${#CS[@]}))]}
            pg=$((500000 + r * 100 + i))
            out=$(timeout 60 "$BIN/burst" -url "${URL[$s]}" -origin "http://127.0.0.1:$PORT_ORIGIN" \
                -page "$pg" -n "$BURST_N" -ae "$BROWSER_AE") || { warn "burst failed on $s"; continue; }
            record "{\"kind\":\"burst\",\"system\":\"$s\",\"round\":$r,\"burst\":$out}"
            log "  burst $s round $r: $out"
        done
        if has ceiling; then # the floor: the same burst answered from memory by bare net/http
            out=$(timeout 60 "$BIN/burst" -url "${URL[ceiling]}" -origin "http://127.0.0.1:$PORT_ORIGIN" \
                -page "$r" -n "$BURST_N" -ae "$BROWSER_AE") || { warn "burst failed on ceiling"; continue; }
            record "{\"kind\":\"burst\",\"system\":\"ceiling\",\"round\":$r,\"burst\":$out}"
            log "  burst ceiling (stored page) round $r: $out"
        fi
    done
fi

# --- revalidation storm (isrproxy) -----------------------------------------------------------
if has isrproxy; then
    delay_s=$(secs "$ORIGIN_DELAY")
    floor=$(awk -v p="$STORM_PAGES" -v c="$REVALIDATE_CONCURRENCY" -v d="$delay_s" \
        'BEGIN{n=int(p/c); if (n*c<p) n++; print n*d}')
    storm_dur=$(ceil "$(awk -v f="$floor" 'BEGIN{print f*1.3+2}')")
    log "storm: quiet run, uniform browser load for ${storm_dur}s"
    out=$(cd "$HERE/wrk" && BENCH_PAGES=$STORED_PAGES timeout $((storm_dur + 30)) \
        wrk -t "$THREADS" -c "$CONNS" -d "${storm_dur}s" --timeout 5s -s bench.lua \
        -H "Accept-Encoding: $BROWSER_AE" "${URL[isrproxy]}/" | grep '^{"requests"' || true)
    [[ -n $out ]] && record "{\"kind\":\"storm-quiet\",\"system\":\"isrproxy\",\"wrk\":$out}"
    log "storm: $STORM_PAGES pages revalidated under the same load (floor ${floor}s)"
    (cd "$HERE/wrk" && BENCH_PAGES=$STORED_PAGES exec timeout $((storm_dur + 30)) \
        wrk -t "$THREADS" -c "$CONNS" -d "${storm_dur}s" --timeout 5s -s bench.lua \
        -H "Accept-Encoding: $BROWSER_AE" "${URL[isrproxy]}/" >"$TMP/storm-wrk.out" 2>&1) &
    PID[wrk]=$!
    sleep 0.5
    sout=$(timeout $((storm_dur * 4 + 60)) "$BIN/storm" -url "${URL[isrproxy]}" \
        -origin "http://127.0.0.1:$PORT_ORIGIN" -secret "$SECRET" -pages "$STORM_PAGES" \
        -concurrency "$REVALIDATE_CONCURRENCY" -workers $((REVALIDATE_CONCURRENCY * 4))) || warn "storm failed"
    wait "${PID[wrk]}" || true
    unset "PID[wrk]"
    wout=$(grep '^{"requests"' "$TMP/storm-wrk.out" || true)
    record "{\"kind\":\"storm\",\"system\":\"isrproxy\",\"load_seconds\":$storm_dur,\"storm\":${sout:-null},\"wrk\":${wout:-null}}"
    log "  storm: $sout"
fi

# --- report ------------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
meta=$(
    cat <<EOF
{"date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","machine":{"cpu":"${cpu//\"/}","cores":$(nproc),"mem_mib":$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo),"kernel":"$(uname -r)"},
"versions":{"go":"$(go env GOVERSION)","nginx":"$(nginx -v 2>&1 | sed 's/.*\///')","varnish":"$(varnishd -V 2>&1 | head -1 | sed 's/.*(\(varnish-[^ ]*\).*/\1/')","wrk":"$(wrk -v 2>&1 | head -1 | awk '{print $2}')","isrproxy":"${ISR_COMMIT}"},
"knobs":{"quick":$QUICK,"rounds":$ROUNDS,"duration":"$DURATION","conns":$CONNS,"threads":$THREADS,"paced_rounds":$PACED_ROUNDS,"paced_duration":"$PACED_DURATION","pace_ms":$PACE_MS,"loaded_conns":$LOADED_CONNS,"loaded_pace_ms":$LOADED_PACE_MS,"origin_delay":"$ORIGIN_DELAY","stored_pages":$STORED_PAGES,"mem_pages":$MEM_PAGES,"mem_rounds":$MEM_ROUNDS,"storm_pages":$STORM_PAGES,"burst_n":$BURST_N,"revalidate_concurrency":$REVALIDATE_CONCURRENCY},
"systems":"$SYSTEMS"}
EOF
)
mkdir -p "$RESULTS_DIR"
cp "$RAW" "$RESULTS_DIR/raw.jsonl"
"$BIN/report" -raw "$RAW" -meta "$meta" -out "$RESULTS_DIR"
log "results in $RESULTS_DIR"
