#!/usr/bin/env bash
# Runs govulncheck on the module with Go's vulnerability database built
# locally from the golang.org/x/vulndb module (its OSV files), for machines
# that reach the Go module proxy but not the database's own server. Exits
# non-zero when the code calls a known vulnerability.
set -euo pipefail
cd "$(dirname "$0")/.."

VULNDB=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK=${GOVULNCHECK_VERSION:-v1.10.0}

src=$(go mod download -json "golang.org/x/vulndb@$VULNDB" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
# indexdb writes the index files govulncheck reads beside the entries.
(cd "$db" && go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB" -out "$db" -vulns "$src/data/osv")
go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK" -db "file://$db" ./...
