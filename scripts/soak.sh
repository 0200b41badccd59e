#!/usr/bin/env bash
# Soak test (docs/reliability.md#soak-test): full-speed load from wrk on stored pages
# while a revalidation of changing pages fires every 100 ms and the origin
# fails one refetch in five. Everything runs on 127.0.0.1.
#
#   bash scripts/soak.sh                 # about 60 s, as in CI
#   DURATION=10 bash scripts/soak.sh     # shorter
#
# Environment (all optional): DURATION (seconds of load, default 60),
# PAGES (stored pages wrk cycles through, default 200), CHANGING (the first
# CHANGING of them are bumped and revalidated in turn, default 20),
# BULK_RATE (64 KiB cold pages filled per second to push the store past its
# budget, default 200), WRK_THREADS (2), WRK_CONNECTIONS (64),
# GOROUTINE_SLACK (8).
#
# The origin (scripts/soakorigin) serves pages whose body carries a version
# marker at both ends, and once warm-up is over answers 503 to every fifth
# request that carries no X-Soak-Visitor header: visitors (wrk, the probes)
# send it and isrproxy forwards it on fills, its refetches carry none, so
# exactly one refetch in five fails and no visitor's fill ever does.
#
# It prints: requests served by wrk, non-2xx answers (must be 0; counted
# by a wrk Lua script, socket errors too), pages older than an acknowledged
# revalidation (must be 0), peak RSS of isrproxy (VmHWM; must stay below
# CACHE_MAX_BYTES + 128 MiB, with CACHE_MAX_BYTES=64MiB), and go_goroutines
# before the load and after it (must be back within GOROUTINE_SLACK, plus
# two for each pooled origin connection the load left open).
# It exits non-zero when any check fails.
set -euo pipefail

DURATION=${DURATION:-60}
PAGES=${PAGES:-200}
CHANGING=${CHANGING:-20}
BULK_RATE=${BULK_RATE:-200}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
GOROUTINE_SLACK=${GOROUTINE_SLACK:-8}
CACHE_MAX_BYTES=64MiB
CACHE_MAX_MIB=64
RSS_LIMIT_KIB=$(( (CACHE_MAX_MIB + 128) * 1024 ))
SECRET=soak-secret-0123456789abcdef

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '== %s\n' "$*"; }
# forget drops a process that has been waited for from the cleanup list.
forget() {
  local keep=() pid
  for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
  pids=("${keep[@]}")
}

cd "$root"
say "building isrproxy and the soak helpers"
go build -o "$tmp/isrproxy" .
go build -o "$tmp/soakorigin" ./scripts/soakorigin
go build -o "$tmp/soakcheck" ./scripts/soakcheck
check="$tmp/soakcheck"

if ! command -v wrk >/dev/null; then
  say "installing wrk"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

say "starting the origin and isrproxy on 127.0.0.1"
"$tmp/soakorigin" -listen 127.0.0.1:0 -addr-file "$tmp/origin.addr" >"$tmp/origin.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/origin.addr" ] && break; sleep 0.1; done
[ -s "$tmp/origin.addr" ] || { echo "the origin did not start"; cat "$tmp/origin.log"; exit 1; }
origin="http://$(cat "$tmp/origin.addr")"

public_port=$("$check" freeport)
admin_port=$("$check" freeport)
proxy="http://127.0.0.1:$public_port"
admin="http://127.0.0.1:$admin_port"
# GOMEMLIMIT is left unset: isrproxy then sets its own (CACHE_MAX_BYTES + 96 MiB).
env -u GOMEMLIMIT \
  ORIGIN_URL="$origin" REVALIDATE_SECRET="$SECRET" \
  LISTEN_ADDR="127.0.0.1:$public_port" ADMIN_ADDR="127.0.0.1:$admin_port" \
  CACHE_MAX_BYTES="$CACHE_MAX_BYTES" ORIGIN_TIMEOUT=5s LOG_LEVEL=warn \
  "$tmp/isrproxy" >"$tmp/isrproxy.log" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
"$check" wait -url "$admin/healthz" -timeout 15s || { cat "$tmp/isrproxy.log"; exit 1; }

say "warming $PAGES pages"
"$check" warm -proxy "$proxy" -origin "$origin" -pages "$PAGES"
# sockets counts the open sockets of a process: listeners, clients, and
# pooled origin connections.
sockets() { { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null || true; } | wc -l; }
goroutines_before=$("$check" metric -admin "$admin" -name go_goroutines)
sockets_before=$(sockets "$proxy_pid")

# wrk: every thread cycles through the stored pages and counts non-2xx.
{
  echo 'local paths = {'
  for i in $(seq 0 $((PAGES - 1))); do echo "  \"/p/$i\","; done
  echo '}'
  cat <<'LUA'
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  non2xx = 0
  responses = 0
  reqs = {}
  for i, p in ipairs(paths) do
    reqs[i] = wrk.format("GET", p, {["X-Soak-Visitor"] = "1", ["Accept-Encoding"] = "gzip"})
  end
  idx = 0
end
function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end
function done(summary, latency, requests)
  local n, r = 0, 0
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
    r = r + t:get("responses")
  end
  local e = summary.errors
  io.write(string.format("SOAKWRK requests=%d responses=%d non2xx=%d socket_errors=%d p99_ms=%.2f\n",
    summary.requests, r, n, e.connect + e.read + e.write + e.timeout, latency:percentile(99) / 1000))
end
LUA
} >"$tmp/soak.lua"

say "load: wrk for ${DURATION}s, a revalidation every 100 ms, the origin failing one refetch in five"
wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${DURATION}s" --timeout 5s -s "$tmp/soak.lua" "$proxy" >"$tmp/wrk.out" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
"$check" run -proxy "$proxy" -origin "$origin" -admin "$admin" -secret "$SECRET" \
  -duration "${DURATION}s" -interval 100ms -changing "$CHANGING" -bulk-rate "$BULK_RATE" >"$tmp/check.out" 2>&1 &
check_pid=$!
pids+=("$check_pid")
wrk_rc=0; wait "$wrk_pid" || wrk_rc=$?
check_rc=0; wait "$check_pid" || check_rc=$?
forget "$wrk_pid"
forget "$check_pid"

# Goroutines must come back to where they were, but for the origin
# connections the load left in isrproxy's idle pool (two goroutines each,
# bounded by the transport's idle limit, closed after 90 s idle): the
# allowance is GOROUTINE_SLACK plus two per socket more than before.
goroutines_ok=no
goroutines_after=unknown goroutines_allowed=unknown sockets_after=unknown
for _ in $(seq 40); do
  kill -0 "$proxy_pid" 2>/dev/null || break
  goroutines_after=$("$check" metric -admin "$admin" -name go_goroutines) || break
  sockets_after=$(sockets "$proxy_pid")
  goroutines_allowed=$(( ${goroutines_before%.*} + GOROUTINE_SLACK + 2 * (sockets_after > sockets_before ? sockets_after - sockets_before : 0) ))
  if [ "${goroutines_after%.*}" -le "$goroutines_allowed" ]; then goroutines_ok=yes; break; fi
  sleep 0.5
done
alive=yes
kill -0 "$proxy_pid" 2>/dev/null || alive=no
hwm_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$proxy_pid/status" 2>/dev/null || echo 0)
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$proxy_pid/status" 2>/dev/null || echo 0)
cache_bytes=$("$check" metric -admin "$admin" -name isrproxy_cache_bytes || echo "?")
evictions=$("$check" metric -admin "$admin" -name isrproxy_cache_evictions_total || echo "?")

field() { { grep -o "$2=[0-9.]*" "$1" || true; } | head -n1 | cut -d= -f2; }
wrk_requests=$(field "$tmp/wrk.out" requests); wrk_requests=${wrk_requests:-0}
wrk_requests=${wrk_requests%.*}
non2xx=$(field "$tmp/wrk.out" non2xx); non2xx=${non2xx:-missing}
socket_errors=$(field "$tmp/wrk.out" socket_errors); socket_errors=${socket_errors:-missing}
older=$(field "$tmp/check.out" older); older=${older:-missing}

echo
cat "$tmp/wrk.out"
cat "$tmp/check.out"
echo
say "results (DURATION=${DURATION}s, CACHE_MAX_BYTES=$CACHE_MAX_BYTES)"
printf '  requests served (wrk):                      %s (%s req/s)\n' "$wrk_requests" "$(( wrk_requests / DURATION ))"
printf '  non-2xx answers:                            %s   socket errors: %s\n' "$non2xx" "$socket_errors"
printf '  revalidations: %s acknowledged, %s failed (expected: the origin fails one in five)\n' "$(field "$tmp/check.out" acked)" "$(field "$tmp/check.out" failed)"
printf '  probes: %s; pages older than an acknowledged revalidation: %s\n' "$(field "$tmp/check.out" probes)" "$older"
printf '  peak RSS (VmHWM):                           %s MiB (limit %s MiB); RSS now %s MiB\n' "$((hwm_kib / 1024))" "$((RSS_LIMIT_KIB / 1024))" "$((rss_kib / 1024))"
printf '  stored bytes: %s, evictions: %s\n' "$cache_bytes" "$evictions"
printf '  goroutines: %s before, %s peak under load, %s after (allowed %s: isrproxy has %s sockets open now, %s before)\n' \
  "$goroutines_before" "$(field "$tmp/check.out" peak_goroutines)" "$goroutines_after" "$goroutines_allowed" "$sockets_after" "$sockets_before"

fail=0
problem() { echo "FAIL: $*"; fail=1; }
[ "$wrk_rc" -eq 0 ] || problem "wrk exited $wrk_rc"
[ "$check_rc" -eq 0 ] || problem "the revalidation checker exited $check_rc (see above)"
[ "$wrk_requests" -gt 0 ] || problem "wrk served no request"
[ "$non2xx" = 0 ] || problem "non-2xx answers: $non2xx"
[ "$socket_errors" = 0 ] || problem "socket errors: $socket_errors"
[ "$older" = 0 ] || problem "pages older than an acknowledged revalidation: $older"
[ "$alive" = yes ] || problem "isrproxy is not running any more"
[ "$hwm_kib" -gt 0 ] && [ "$hwm_kib" -lt "$RSS_LIMIT_KIB" ] || problem "peak RSS ${hwm_kib} KiB not below ${RSS_LIMIT_KIB} KiB"
[ "$goroutines_ok" = yes ] ||
  problem "goroutines did not settle: $goroutines_before before, $goroutines_after after (allowed $goroutines_allowed)"
if grep -q -i 'panic' "$tmp/isrproxy.log"; then problem "isrproxy logged a panic"; grep -i -m5 panic "$tmp/isrproxy.log"; fi

if [ "$fail" -ne 0 ]; then
  echo "-- isrproxy log (last 20 lines)"; tail -n 20 "$tmp/isrproxy.log"
  exit 1
fi
say "soak passed"
