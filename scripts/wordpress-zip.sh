#!/usr/bin/env bash
# Builds the WordPress plugin's zip, as Plugins → Add New → Upload Plugin takes it:
# one folder, isrproxy/, at the top. Usage: scripts/wordpress-zip.sh [OUT.zip]
# (default: isrproxy-wordpress.zip in the current directory).
set -euo pipefail
src="$(cd "$(dirname "$0")/../examples/wordpress" && pwd)"
out="$(realpath -m "${1:-isrproxy-wordpress.zip}")"
rm -f "$out"
cd "$src"
if command -v zip >/dev/null; then
  zip -qr -X "$out" isrproxy
elif command -v python3 >/dev/null; then
  python3 -m zipfile -c "$out" isrproxy/
else
  echo "wordpress-zip.sh: needs zip or python3" >&2
  exit 1
fi
echo "$out"
