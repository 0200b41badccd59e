#!/usr/bin/env bash
# Runs the public HTTP caching test suite (github.com/http-tests/cache-tests)
# against isrproxy on loopback, with the configuration defaults, in front of
# the suite's own origin server. Not run by CI: it needs Node and the suite's
# source, and takes about a minute.
#
#   scripts/cache-tests.sh SUITE_DIR [ISRPROXY_BINARY]
#
# SUITE_DIR is a checkout of the suite (its test-engine/ and tests/ are
# used; no npm install is needed: only the suite's four "interim" tests load
# a dependency, and they then count as harness failures). Without a binary,
# the working tree is built. It writes the suite's JSON results to
# $OUT (default cache-tests-results.json) and prints a summary: every suite,
# then the group of tests that apply to a cache that keeps pages until they
# are revalidated (docs/behaviour.md#conformance).
#
# RESULTS=file.json only prints the summary of results written before.
#
# Ports: ORIGIN_PORT (default 18000) and PROXY_PORT (default 18080), both
# bound to 127.0.0.1 only.
set -euo pipefail

suite=$(cd "${1:?usage: $0 SUITE_DIR [ISRPROXY_BINARY]}" && pwd)
bin=${2:-}
origin_port=${ORIGIN_PORT:-18000}
proxy_port=${PROXY_PORT:-18080}
out=${OUT:-cache-tests-results.json}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

run_suite() {
	if [[ -z $bin ]]; then
		(cd "$here" && go build -o "$tmp/isrproxy" .)
		bin=$tmp/isrproxy
	fi

	# The suite's origin listens on every interface; this wrapper binds it to
	# loopback before loading it.
	cat >"$tmp/origin.mjs" <<-JS
	import http from 'http'
	const listen = http.Server.prototype.listen
	http.Server.prototype.listen = function (port, ...rest) { return listen.call(this, port, '127.0.0.1', ...rest) }
	await import('$suite/test-engine/server/server.mjs')
	JS
	npm_config_protocol=http npm_config_port=$origin_port npm_config_pidfile=$tmp/origin.pid \
		node "$tmp/origin.mjs" >"$tmp/origin.log" 2>&1 &
	pids+=($!)

	ORIGIN_URL=http://127.0.0.1:$origin_port REVALIDATE_SECRET=cache-tests-secret-0123456789 \
		LISTEN_ADDR=127.0.0.1:$proxy_port ADMIN_ADDR=off LOG_LEVEL=error \
		"$bin" >"$tmp/isrproxy.log" 2>&1 &
	pids+=($!)

	for port in "$origin_port" "$proxy_port"; do
		for _ in $(seq 100); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue 2; fi
			sleep 0.1
		done
		echo "nothing listens on 127.0.0.1:$port" >&2
		cat "$tmp/origin.log" "$tmp/isrproxy.log" >&2
		exit 1
	done

	npm_config_base=http://127.0.0.1:$proxy_port npm_config_id= npm_package_config_id= \
		node --no-warnings "$suite/test-engine/cli.mjs" >"$out"
}

if [[ -n ${RESULTS:-} ]]; then
	out=$RESULTS
else
	run_suite
fi

node --input-type=module - "$suite" "$(cd "$(dirname "$out")" && pwd)/$(basename "$out")" <<'JS'
const [suite, file] = process.argv.slice(2)
const { default: suites } = await import(`${suite}/tests/index.mjs`)
const { determineTestResult, resultTypes } = await import(`${suite}/test-engine/lib/results.mjs`)
const { readFileSync } = await import('fs')
const results = JSON.parse(readFileSync(file, 'utf8'))
const name = Object.fromEntries(Object.entries(resultTypes).map(([k, v]) => [v[2], k]))

// The group: suites about what a cache stores, how it chooses a variant,
// answers conditional and range requests, which headers it keeps, and what
// invalidates a page. Left out: freshness and staleness (isrproxy keeps a
// page until it is revalidated, whatever max-age, Expires or no-cache say),
// the Cache-Control, Expires and Age parsing and status-code tests built on
// them, revalidation with the origin (update304), and the "check" tests,
// which report a behaviour without passing or failing it. Dependencies are
// not honoured: nearly every test depends on "freshness-none", which a
// cache that stores pages without freshness fails by design.
const group = new Set(['vary', 'vary-parse', 'conditional-lm', 'conditional-inm', 'headers',
  'partial', 'invalidation', 'auth', 'other', 'method'])
let gTotal = 0; let gPass = 0
const failed = []
for (const s of suites) {
  const counts = {}
  for (const t of s.tests) {
    if (t.browser_only) continue
    const r = name[determineTestResult(suites, t.id, results, false)[2]]
    counts[r] = (counts[r] || 0) + 1
    if (group.has(s.id) && t.kind !== 'check') {
      gTotal++
      if (r === 'pass') gPass++
      else failed.push(`${t.id} (${r}): ${(results[t.id] || [])[1] || ''}`)
    }
  }
  console.log(`${group.has(s.id) ? '*' : ' '} ${s.id.padEnd(20)} ${JSON.stringify(counts)}`)
}
console.log(`\ngroup (*, without "check" tests): ${gPass} of ${gTotal} pass`)
for (const f of failed) console.log(`  ${f}`)
JS
