#!/usr/bin/env bash
# Cluster figures for docs/performance.md#cluster-mode (nothing is asserted):
# on this machine, revalidating PAGES pages (default 1,000) through three
# replicas sharing one redis-server, against one replica alone: origin
# requests, wall time, hit r/s and p99 on a replica during the revalidation
# against quiet, and Redis memory per stored page. Everything listens on
# 127.0.0.1; every process started is stopped by its PID at the end.
#
#   bash scripts/cluster-bench.sh          # DELAY=20ms PAGES=1000 SECONDS_WRK=8
set -euo pipefail
cd "$(dirname "$0")/.."
PAGES=${PAGES:-1000}
DELAY=${DELAY:-20ms}
SECS=${SECONDS_WRK:-8}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
go build -o "$work/isrproxy" .
go build -o "$work/origin" ./bench/origin

RP=$(freeport)
redis-server --save '' --appendonly no --port "$RP" --bind 127.0.0.1 --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
OP=$(freeport)
"$work/origin" -listen "127.0.0.1:$OP" -delay "$DELAY" >"$work/origin.log" 2>&1 &
pids+=($!)
sleep 0.5

# replica NAME REDIS_URL: starts one; sets PP (public port) and LASTPID.
replica() {
  local ap
  PP=$(freeport); ap=$(freeport)
  ORIGIN_URL="http://127.0.0.1:$OP" REVALIDATE_SECRET=bench-secret-0123456789 LOG_LEVEL=warn \
    LISTEN_ADDR="127.0.0.1:$PP" ADMIN_ADDR="127.0.0.1:$ap" REDIS_URL="$2" NODE_ID="$1" CLUSTER_NAME=bench \
    "$work/isrproxy" >"$work/$1.log" 2>&1 &
  LASTPID=$!
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ap/readyz" >/dev/null && break; sleep 0.1; done
}
origin_requests() { curl -s "http://127.0.0.1:$OP/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["page_gets"])'; }
# Every request names one site, as a load balancer passes the visitor's Host.
HOST=www.example.test
fill() { seq 0 $((PAGES - 1)) | xargs -P 16 -I{} curl -s -o /dev/null -H "Host: $HOST" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$1/page/{}"; }
body() { python3 -c "import json; print(json.dumps({'paths': ['/page/%d' % i for i in range($PAGES)]}))" >"$work/body.json"; }
revalidate() { # PORT: prints status and wall seconds
  curl -s -o "$work/answer.json" -w '%{http_code} %{time_total}\n' -X POST -H "Host: $HOST" -H 'Authorization: Bearer bench-secret-0123456789' \
    -H 'Content-Type: application/json' --data-binary @"$work/body.json" "http://127.0.0.1:$1/api/revalidate"
}
hits() { # PORT SECONDS: wrk JSON line over the stored pages
  BENCH_PAGES=$PAGES BENCH_FIRST=0 wrk -t2 -c32 -d"$2"s -s bench/wrk/bench.lua -H "Host: $HOST" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$1/" | tail -1
}
body

echo "== one replica alone (no REDIS_URL)"
replica solo ""; S=$PP
fill "$S"
before=$(origin_requests)
echo "revalidate: $(revalidate "$S")"
echo "origin requests: $(( $(origin_requests) - before ))"
kill "$LASTPID"

echo "== three replicas, one redis-server"
mem0=$(redis-cli -p "$RP" info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
replica a "redis://127.0.0.1:$RP"; A=$PP
replica b "redis://127.0.0.1:$RP"; B=$PP
replica c "redis://127.0.0.1:$RP"; C=$PP
sleep 2
fill "$A"; fill "$B"; fill "$C"
mem1=$(redis-cli -p "$RP" info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
echo "redis used_memory per stored page: $(( (mem1 - mem0) / PAGES )) B"
echo "origin page requests after filling three replicas: $(origin_requests)"
echo "quiet hits on b: $(hits "$B" "$SECS")"
before=$(origin_requests)
hits "$B" "$SECS" >"$work/during.json" &
wrkpid=$!
sleep 1
echo "revalidate on a: $(revalidate "$A")"
wait "$wrkpid"
echo "hits on b during: $(cat "$work/during.json")"
echo "origin requests: $(( $(origin_requests) - before ))"
python3 - "$work/answer.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
rs = a["results"]
print("revalidated:", a["revalidated"], "results:", len(rs), "all on 3 replicas:", all(len(r.get("replicas", [])) == 3 for r in rs))
PY
