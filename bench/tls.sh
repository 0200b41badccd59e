#!/usr/bin/env bash
# bench/tls.sh — isrproxy's HTTPS hits next to nginx (ssl, http2, proxy_cache)
# and the Go TLS ceiling, all in front of the same slow sample origin on
# loopback, all with the same certificate.
#
#   bench/tls.sh                 # full run: 5 interleaved rounds of 5 s per scenario (about 5 minutes)
#   QUICK=1 bench/tls.sh         # smoke run: 2 rounds of 2 s (about 1.5 minutes)
#
# Knobs (environment): ROUNDS, DURATION, CONNS, STREAMS, THREADS, NEW_CONNS,
# ORIGIN_DELAY, SYSTEMS, BASE_PORT, MAX_TIME, KEEP_TMP, RESULTS_DIR.
# See bench/README.md ("HTTPS").
#
# Scenarios, one stored 16 KiB page (/page/0) for browser-like clients
# (Accept-Encoding: gzip, deflate, br):
#   h2        h2load -c CONNS -m STREAMS -t THREADS -D DURATION: hit r/s, and
#             p99 from h2load's per-request log (--log-file)
#   h1        wrk -t THREADS -c CONNS -d DURATION --latency over https: r/s, p99
#   newconn   wrk -c NEW_CONNS with "Connection: close": one request per TLS
#             connection, sessions resumed (wrk keeps each connection's
#             session; checked below with openssl s_client): new TLS
#             connections per second
#
# It installs its Debian packages (nginx, wrk, nghttp2-client for h2load,
# openssl, curl, jq) when they are missing, generates one self-signed ECDSA
# P-256 certificate for 127.0.0.1, builds the origin, the ceiling and
# isrproxy, starts everything on 127.0.0.1, warms the caches, checks them,
# runs interleaved rounds (the order of the systems rotated each round),
# and writes results.md and raw.tsv in RESULTS_DIR. Every process it starts
# is stopped by PID on exit; a watchdog ends the run after MAX_TIME seconds.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    ROUNDS=${ROUNDS:-2}
    DURATION=${DURATION:-2s}
fi
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-10}
THREADS=${THREADS:-2}
NEW_CONNS=${NEW_CONNS:-64}
ORIGIN_DELAY=${ORIGIN_DELAY:-50ms}
SYSTEMS=${SYSTEMS:-"ceiling nginx isrproxy"}
BASE_PORT=${BASE_PORT:-18200}
MAX_TIME=${MAX_TIME:-1200}
KEEP_TMP=${KEEP_TMP:-0}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results/tls}
HOT_PAGE=/page/0
BROWSER_AE="gzip, deflate, br"
SECRET="bench-revalidate-secret-0123456789"
SCENARIOS="h2 h1 newconn"

PORT_ORIGIN=$BASE_PORT
PORT_CEILING=$((BASE_PORT + 1))
PORT_NGINX=$((BASE_PORT + 2))
PORT_ISR=$((BASE_PORT + 3))       # isrproxy's TLS_ADDR
PORT_ISR_PLAIN=$((BASE_PORT + 4)) # its LISTEN_ADDR (unused by the load)
PORT_ISR_ADMIN=$((BASE_PORT + 5))

log() { printf '[tls %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
warn() { printf '[tls %(%H:%M:%S)T] WARNING: %s\n' -1 "$*" >&2; WARNINGS+=("$*"); }
die() { printf '[tls] ERROR: %s\n' "$*" >&2; exit 1; }
WARNINGS=()

secs() { # "5s" / "1500ms" / "2m" -> whole seconds, at least 1
    local d=$1
    case $d in
        *ms) d=$(awk -v v="${d%ms}" 'BEGIN{print v/1000}') ;;
        *s) d=${d%s} ;;
        *m) d=$(awk -v v="${d%m}" 'BEGIN{print v*60}') ;;
    esac
    awk -v v="$d" 'BEGIN{c=int(v); if (c<v) c++; if (c<1) c=1; print c}'
}
DUR_S=$(secs "$DURATION")
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- packages -------------------------------------------------------------
need_pkgs=()
command -v nginx >/dev/null 2>&1 || need_pkgs+=(nginx)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
command -v h2load >/dev/null 2>&1 || need_pkgs+=(nghttp2-client)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
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
for t in wrk h2load openssl curl jq go; do
    command -v "$t" >/dev/null || die "$t is required"
done

# --- work space, processes, cleanup ---------------------------------------
TMP=$(mktemp -d /tmp/isrtls.XXXXXX)
chmod 755 "$TMP"
CACHE_DIR=/dev/shm/isrtls-nginx.$$
RAW=$TMP/raw.tsv
printf 'round\tscenario\tsystem\trps\tp99_us\tbytes_per_reply\terrors\tloadavg\n' >"$RAW"
declare -A PID=()
WATCHDOG=
LOAD_BEFORE=$(loadavg)
UPTIME_BEFORE=$(uptime)

stop_pid() { # stop_pid NAME PID: TERM, wait up to 5 s, then KILL
    local name=$1 pid=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    printf '[tls] WARNING: %s (pid %s) did not stop: KILL\n' "$name" "$pid" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    for name in isrproxy nginx ceiling origin; do
        [[ -n ${PID[$name]:-} ]] && stop_pid "$name" "${PID[$name]}"
    done
    [[ -n $WATCHDOG ]] && kill -TERM "$WATCHDOG" 2>/dev/null
    rm -rf "$CACHE_DIR"
    if [[ $KEEP_TMP == 1 || $rc != 0 ]]; then
        echo "[tls] logs and raw results kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "[tls] interrupted" >&2; exit 130' INT TERM

# The watchdog ends the whole run (and so every server) after MAX_TIME.
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$MAX_TIME" &
    sp=$!
    wait "$sp"
    echo "[tls] ERROR: MAX_TIME=${MAX_TIME}s reached, stopping" >&2
    kill -TERM $$
) &
WATCHDOG=$!

for p in $PORT_ORIGIN $PORT_CEILING $PORT_NGINX $PORT_ISR $PORT_ISR_PLAIN $PORT_ISR_ADMIN; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        die "port $p on 127.0.0.1 is in use (set BASE_PORT)"
    fi
done

# --- certificate: one pair for every system -------------------------------------
# ECDSA P-256, as certs.SelfSigned makes and as most sites now serve.
CERT=$TMP/cert.pem
KEY=$TMP/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$KEY" -out "$CERT" >"$TMP/openssl-req.log" 2>&1 || die "openssl req failed: $(cat "$TMP/openssl-req.log")"
chmod 644 "$CERT" "$KEY" # nginx's workers and isrproxy read them; a throw-away pair

# --- build ------------------------------------------------------------------
BIN=$TMP/bin
mkdir -p "$BIN"
log "building the origin and the ceiling"
(cd "$ROOT" && for t in origin ceiling; do go build -o "$BIN/$t" "./bench/$t"; done) || die "building bench tools failed"

has() { [[ " $SYSTEMS " == *" $1 "* ]]; }
drop() { SYSTEMS=$(echo " $SYSTEMS " | sed "s/ $1 / /; s/^ *//; s/ *$//"); }

ISR_COMMIT=
if has isrproxy; then
    log "building isrproxy (go build . in $ROOT)"
    if (cd "$ROOT" && go build -o "$BIN/isrproxy" .) >"$TMP/isrproxy-build.log" 2>&1; then
        ISR_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || true)
        git -C "$ROOT" diff --quiet HEAD 2>/dev/null || ISR_COMMIT="${ISR_COMMIT:-none}+dirty"
    else
        warn "isrproxy did not build; its column is skipped"
        head -n 20 "$TMP/isrproxy-build.log" | sed 's/^/    /' >&2
        drop isrproxy
    fi
fi

# --- start the systems ---------------------------------------------------------
wait_url() { # wait_url URL SECONDS
    local url=$1 t=$2 i
    for ((i = 0; i < t * 10; i++)); do
        curl -sk -o /dev/null -m 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

start_origin() {
    log "origin on 127.0.0.1:$PORT_ORIGIN (delay $ORIGIN_DELAY)"
    "$BIN/origin" -listen "127.0.0.1:$PORT_ORIGIN" -delay "$ORIGIN_DELAY" >"$TMP/origin.log" 2>&1 &
    PID[origin]=$!
    wait_url "http://127.0.0.1:$PORT_ORIGIN/__stats" 10 || die "origin did not start: $(cat "$TMP/origin.log")"
}

start_ceiling() {
    "$BIN/ceiling" -listen "127.0.0.1:$PORT_CEILING" -pages 10 -tls-cert "$CERT" -tls-key "$KEY" >"$TMP/ceiling.log" 2>&1 &
    PID[ceiling]=$!
    wait_url "https://127.0.0.1:$PORT_CEILING$HOT_PAGE" 30 || { cat "$TMP/ceiling.log" >&2; return 1; }
}

start_nginx() {
    local user=root
    id www-data >/dev/null 2>&1 && user=www-data
    mkdir -p "$TMP/nginx" "$CACHE_DIR"
    chown "$user" "$CACHE_DIR"
    sed -e "s|@USER@|$user|g" -e "s|@WORKERS@|$(nproc)|g" -e "s|@PREFIX@|$TMP/nginx|g" \
        -e "s|@CACHE_DIR@|$CACHE_DIR|g" -e "s|@LISTEN@|127.0.0.1:$PORT_NGINX|g" \
        -e "s|@ORIGIN@|127.0.0.1:$PORT_ORIGIN|g" -e "s|@CERT@|$CERT|g" -e "s|@KEY@|$KEY|g" \
        "$HERE/nginx-tls.conf.tmpl" >"$TMP/nginx/nginx.conf"
    nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx.log" 2>&1 &
    PID[nginx]=$!
    wait_url "https://127.0.0.1:$PORT_NGINX/__stats" 10 || { cat "$TMP/nginx.log" "$TMP/nginx/error.log" >&2; return 1; }
}

start_isrproxy() {
    ORIGIN_URL="http://127.0.0.1:$PORT_ORIGIN" REVALIDATE_SECRET="$SECRET" \
        LISTEN_ADDR="127.0.0.1:$PORT_ISR_PLAIN" TLS_ADDR="127.0.0.1:$PORT_ISR" \
        ADMIN_ADDR="127.0.0.1:$PORT_ISR_ADMIN" TLS_CERT_FILE="$CERT" TLS_KEY_FILE="$KEY" \
        HTTPS_REDIRECT=off LOG_LEVEL=warn CACHE_MAX_BYTES=1GiB \
        "$BIN/isrproxy" >"$TMP/isrproxy.log" 2>&1 &
    PID[isrproxy]=$!
    wait_url "http://127.0.0.1:$PORT_ISR_ADMIN/healthz" 15 &&
        wait_url "https://127.0.0.1:$PORT_ISR/__stats" 10 || { tail -n 20 "$TMP/isrproxy.log" >&2; return 1; }
}

declare -A URL=(
    [ceiling]="https://127.0.0.1:$PORT_CEILING"
    [nginx]="https://127.0.0.1:$PORT_NGINX"
    [isrproxy]="https://127.0.0.1:$PORT_ISR"
)

start_origin
for s in $SYSTEMS; do
    log "starting $s on ${URL[$s]}"
    if ! "start_$s"; then
        warn "$s did not start; its column is skipped"
        [[ -n ${PID[$s]:-} ]] && stop_pid "$s" "${PID[$s]}"
        unset "PID[$s]"
        drop "$s"
    fi
done
has nginx || warn "nginx is not running: no isrproxy/nginx ratios"
read -r -a SYS <<<"$SYSTEMS"
NSYS=${#SYS[@]}
((NSYS)) || die "no system started"
log "systems: ${SYS[*]}"

# --- warm-up and checks ----------------------------------------------------------
# Only /page/0 is measured: ask for it over both protocols until each cache
# says HIT, and check what a browser would get (200, gzip, the version marker).
declare -A TLSINFO=()
for s in "${SYS[@]}"; do
    for proto in --http2 --http1.1; do
        for i in 1 2 3 4 5; do
            hdr=$(curl -sk "$proto" -m 10 -H "Accept-Encoding: $BROWSER_AE" -D - -o "$TMP/body.gz" \
                "${URL[$s]}$HOT_PAGE" | tr -d '\r') || true
            [[ $s == ceiling ]] && break
            grep -qi '^x-cache: *hit' <<<"$hdr" && break
            sleep 0.2
        done
        status=$(head -n 1 <<<"$hdr")
        ce=$(awk -F': *' 'tolower($1)=="content-encoding"{print $2}' <<<"$hdr")
        xc=$(awk -F': *' 'tolower($1)=="x-cache"{print $2}' <<<"$hdr")
        ver=$(gzip -dc <"$TMP/body.gz" 2>/dev/null | grep -c '<meta name="version"' || true)
        log "check $s $proto: ${status:-no answer}, content-encoding ${ce:-none}, x-cache ${xc:--}, version marker ${ver}"
        [[ $status == *" 200"* ]] || warn "$s $proto: not a 200: ${status:-no answer}"
        [[ $ce == gzip ]] || warn "$s $proto: not gzipped for a browser (content-encoding '${ce}')"
        [[ $ver == 1 ]] || warn "$s $proto: no version marker in the body"
        [[ $s == ceiling || ${xc^^} == HIT ]] || warn "$s $proto: not a hit after warming (x-cache '${xc}')"
    done
    # Session resumption: a second handshake with the first one's session.
    req=$'GET /page/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
    rm -f "$TMP/sess.pem"
    first=$(printf '%s' "$req" | timeout 10 openssl s_client -connect "127.0.0.1:${URL[$s]##*:}" \
        -alpn http/1.1 -sess_out "$TMP/sess.pem" -ign_eof 2>/dev/null | tr -d '\r' || true)
    second=$(printf '%s' "$req" | timeout 10 openssl s_client -connect "127.0.0.1:${URL[$s]##*:}" \
        -alpn http/1.1 -sess_in "$TMP/sess.pem" -ign_eof 2>/dev/null | tr -d '\r' || true)
    proto=$(grep -a -m1 '^New,' <<<"$first" | sed 's/^New, //; s/, Cipher is / /')
    kex=$(grep -a -m1 '^Server Temp Key:' <<<"$first" | sed 's/^Server Temp Key: //; s/,.*//')
    resumed=$(grep -a -m1 -c '^Reused,' <<<"$second" || true)
    TLSINFO[$s]="${proto:-?}, ${kex:-?}, resumption $([[ $resumed == 1 ]] && echo yes || echo NO)"
    log "tls $s: ${TLSINFO[$s]} (openssl s_client's defaults)"
    [[ $resumed == 1 ]] || warn "$s: a TLS session was not resumed: the newconn figure is of full handshakes"
done

# --- scenarios --------------------------------------------------------------------
record() { # record ROUND SCENARIO SYSTEM RPS P99_US BYTES_PER_REPLY ERRORS
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" "$(loadavg | tr ' ' ,)" >>"$RAW"
    printf '  %-8s %-9s round %d  %10s r/s  p99 %8s us  %6s B/reply  %s errors\n' "$2" "$3" "$1" "$4" "$5" "$6" "$7" >&2
}

run_h2() { # h2load: r/s from its summary, p99 from its per-request log
    local s=$1 r=$2 out lf="$TMP/h2.log" rps p99 data ok fails
    rm -f "$lf"
    out=$(timeout $((DUR_S + 30)) h2load -c "$CONNS" -m "$STREAMS" -t "$THREADS" -D "$DUR_S" \
        -H "Accept-Encoding: $BROWSER_AE" --log-file="$lf" "${URL[$s]}$HOT_PAGE" 2>&1) || true
    rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
    ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
    fails=$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored, \([0-9]*\) timeout.*/\1 \2 \3/p' <<<"$out" | awk '{print $1+$2+$3}')
    data=$(sed -n 's/^traffic: .*total, .*headers.*, [0-9.]*[KMG]*B (\([0-9]*\)) data.*/\1/p' <<<"$out")
    grep -q '^h2$' <<<"$(sed -n 's/^Application protocol: //p' <<<"$out")" || warn "h2load on $s did not speak h2"
    if [[ -z $rps || ! -s $lf ]]; then
        warn "h2load gave no result on $s (round $r)"
        printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /' >&2
        return
    fi
    p99=$(cut -f3 "$lf" | sort -n | awk '{v[NR]=$1} END{i=int(NR*0.99); if (i<NR*0.99) i++; if (i<1) i=1; print v[i]}')
    record "$r" h2 "$s" "$rps" "$p99" "$(awk -v d="${data:-0}" -v n="${ok:-0}" 'BEGIN{printf "%d", n ? d/n : 0}')" "${fails:-0}"
}

run_wrk() { # run_wrk SCENARIO SYSTEM ROUND: h1 keep-alive, or newconn (Connection: close)
    local scen=$1 s=$2 r=$3 c=$CONNS args=() out
    if [[ $scen == newconn ]]; then
        c=$NEW_CONNS
        args+=(-H "Connection: close")
    fi
    out=$(cd "$HERE/wrk" && timeout $((DUR_S + 30)) wrk -t "$THREADS" -c "$c" -d "${DUR_S}s" --timeout 5s \
        --latency -s bench.lua -H "Accept-Encoding: $BROWSER_AE" "${args[@]}" "${URL[$s]}$HOT_PAGE" |
        grep '^{"requests"' || true)
    if [[ -z $out ]]; then
        warn "wrk gave no result for $scen on $s (round $r)"
        return
    fi
    record "$r" "$scen" "$s" "$(jq -r '.rps' <<<"$out")" "$(jq -r '.p99_us' <<<"$out")" \
        "$(jq -r 'if .requests > 0 then (.bytes / .requests | floor) else 0 end' <<<"$out")" \
        "$(jq -r '.connect_errors + .read_errors + .write_errors + .timeouts + .non2xx' <<<"$out")"
}

rotated() { # rotated ROUND: the systems in this round's order
    local r=$1 i
    for ((i = 0; i < NSYS; i++)); do printf '%s ' "${SYS[$(((i + r) % NSYS))]}"; done
}

for scen in $SCENARIOS; do
    log "scenario $scen: $ROUNDS rounds of ${DUR_S}s (load average $(loadavg))"
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(rotated "$r"); do
            case $scen in
                h2) run_h2 "$s" "$r" ;;
                *) run_wrk "$scen" "$s" "$r" ;;
            esac
            sleep 0.5
        done
    done
done
LOAD_AFTER=$(loadavg)
UPTIME_AFTER=$(uptime)

# --- report ----------------------------------------------------------------------
median() { sort -g | awk '{v[NR]=$1} END{if (!NR) {print ""; exit} if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
col() { # col SCENARIO SYSTEM FIELD: the field's values over rounds
    awk -F'\t' -v sc="$1" -v sy="$2" -v f="$3" 'NR>1 && $2==sc && $3==sy {print $f}' "$RAW"
}
ratios() { # ratios SCENARIO A B FIELD: same-round A/B of the field
    awk -F'\t' -v sc="$1" -v a="$2" -v b="$3" -v f="$4" '
        NR>1 && $2==sc && $3==a {va[$1]=$f}
        NR>1 && $2==sc && $3==b {vb[$1]=$f}
        END {for (r in va) if ((r in vb) && vb[r] > 0) print va[r]/vb[r]}' "$RAW"
}
fmt_int() { # 12345.6 -> 12,346
    [[ -n $1 ]] || { echo "—"; return; }
    awk -v v="$1" 'BEGIN{s=sprintf("%.0f", v); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); print s}'
}
fmt_ms() { [[ -n $1 ]] && awk -v v="$1" 'BEGIN{printf "%.2f", v/1000}' || echo "—"; }
range() { sort -g | awk 'NR==1{lo=$1} {hi=$1} END{if (NR>1) printf " (%.2f–%.2f)", lo, hi}'; }
fmt_x() { [[ -n $1 ]] && awk -v v="$1" 'BEGIN{printf "%.2f×", v}' || echo "—"; }

declare -A MED=() # MED[scen,sys,rps|p99|bytes|err], MED[scen,ratio-rps|ratio-p99]
for scen in $SCENARIOS; do
    for s in "${SYS[@]}"; do
        MED[$scen,$s,rps]=$(col "$scen" "$s" 4 | median)
        MED[$scen,$s,p99]=$(col "$scen" "$s" 5 | median)
        MED[$scen,$s,bytes]=$(col "$scen" "$s" 6 | median)
        MED[$scen,$s,err]=$(col "$scen" "$s" 7 | awk '{t+=$1} END{print t+0}')
        MED[$scen,$s,xnginx]=$(has nginx && ratios "$scen" "$s" nginx 4 | median || true)
        MED[$scen,$s,xnginx_p99]=$(has nginx && ratios "$scen" "$s" nginx 5 | median || true)
        MED[$scen,$s,xceil]=$(has ceiling && ratios "$scen" "$s" ceiling 4 | median || true)
        MED[$scen,$s,xnginx_rng]=$(has nginx && ratios "$scen" "$s" nginx 4 | range || true)
        MED[$scen,$s,xnginx_p99_rng]=$(has nginx && ratios "$scen" "$s" nginx 5 | range || true)
    done
done

scen_name() {
    case $1 in
        h2) echo "HTTP/2, one hot page, browser: \`h2load -c $CONNS -m $STREAMS -t $THREADS -D $DUR_S\`" ;;
        h1) echo "HTTP/1.1, one hot page, browser: \`wrk -t $THREADS -c $CONNS -d ${DUR_S}s --latency\`" ;;
        newconn) echo "new TLS connections (resumed), one request each: \`wrk -t $THREADS -c $NEW_CONNS -d ${DUR_S}s -H 'Connection: close'\`" ;;
    esac
}
target_line() { # target_line SCEN WHAT MIN_RATIO FIELD(rps|p99)
    local v
    if [[ $4 == rps ]]; then v=${MED[$1,isrproxy,xnginx]:-}; else v=${MED[$1,isrproxy,xnginx_p99]:-}; fi
    if [[ -z $v ]]; then
        echo "| $2 | — | not measured |"
    elif [[ $4 == rps ]]; then
        echo "| $2 | $(fmt_x "$v")${MED[$1,isrproxy,xnginx_rng]:-} | $(awk -v v="$v" -v m="$3" 'BEGIN{print (v >= m) ? "met" : "missed"}') |"
    else
        echo "| $2 | $(fmt_x "$v")${MED[$1,isrproxy,xnginx_p99_rng]:-} | $(awk -v v="$v" 'BEGIN{print (v <= 1) ? "met" : "missed"}') |"
    fi
}

cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
CMD=bench/tls.sh
[[ $QUICK == 1 ]] && CMD="QUICK=1 $CMD"
mkdir -p "$RESULTS_DIR"
{
    echo "# HTTPS hits: isrproxy, nginx and the Go TLS ceiling"
    echo
    echo "$DATE, \`$CMD\` ($ROUNDS interleaved rounds of ${DUR_S}s per scenario, the order of the systems rotated each round);"
    echo "$(nproc) cores ($cpu), $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MiB, kernel $(uname -r);"
    echo "isrproxy ${ISR_COMMIT:-—}, $(go env GOVERSION), nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(openssl version | awk '{print "OpenSSL", $2}'),"
    echo "h2load $(h2load --version | awk '{print $2}'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')."
    echo
    echo "Load average (1, 5, 15 min) before the run: $LOAD_BEFORE; after: $LOAD_AFTER."
    awk -v l="${LOAD_BEFORE%% *}" -v m="${LOAD_AFTER%% *}" -v n="$(nproc)" 'BEGIN{
        if (l > n/2 || m > n/2) print "The machine was loaded by other work: these figures are indicative only."}'
    echo
    echo "One certificate for every system (self-signed ECDSA P-256); what \`openssl s_client\` negotiated:"
    echo
    for s in "${SYS[@]}"; do echo "- $s: ${TLSINFO[$s]}"; done
    echo
    echo "Medians over rounds; ratios are medians of same-round ratios, with their lowest and highest in brackets."
    echo "B/reply: body bytes per answer over HTTP/2 (h2load's data count), bytes read per answer with the headers otherwise."
    for scen in $SCENARIOS; do
        echo
        echo "**$(scen_name "$scen")**"
        echo
        echo "| system | r/s | p99 ms | B/reply | errors | r/s × nginx | p99 × nginx | r/s × ceiling |"
        echo "|---|--:|--:|--:|--:|--:|--:|--:|"
        for s in "${SYS[@]}"; do
            echo "| $s | $(fmt_int "${MED[$scen,$s,rps]}") | $(fmt_ms "${MED[$scen,$s,p99]}") | $(fmt_int "${MED[$scen,$s,bytes]}") | ${MED[$scen,$s,err]} | $(fmt_x "${MED[$scen,$s,xnginx]:-}")${MED[$scen,$s,xnginx_rng]:-} | $(fmt_x "${MED[$scen,$s,xnginx_p99]:-}")${MED[$scen,$s,xnginx_p99_rng]:-} | $(fmt_x "${MED[$scen,$s,xceil]:-}") |"
        done
    done
    echo
    echo "Targets (evaluated, never asserted):"
    echo
    echo "| target | isrproxy / nginx | |"
    echo "|---|--:|:-:|"
    target_line h2 "HTTP/2 hit r/s ≥ 1.1× nginx" 1.1 rps
    target_line h1 "HTTP/1.1 hit r/s ≥ 1.3× nginx" 1.3 rps
    target_line h2 "HTTP/2 p99 ≤ nginx" 1 p99
    target_line h1 "HTTP/1.1 p99 ≤ nginx" 1 p99
    target_line newconn "new TLS connections/s ≥ 0.9× nginx" 0.9 rps
    if ((${#WARNINGS[@]})); then
        echo
        echo "Warnings:"
        echo
        for w in "${WARNINGS[@]}"; do echo "- $w"; done
    fi
} >"$RESULTS_DIR/results.md"
cp "$RAW" "$RESULTS_DIR/raw.tsv"
echo
cat "$RESULTS_DIR/results.md"
echo
echo "uptime before: $UPTIME_BEFORE"
echo "uptime after:  $UPTIME_AFTER"
log "results in $RESULTS_DIR"
