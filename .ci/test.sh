#!/usr/bin/env bash
# The project's test command: installs the Node packages that some end-to-end
# tests drive (npm ci in every directory with a package-lock.json), then runs
# every Go test with the race detector. Run it from anywhere in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

while IFS= read -r lock; do
	dir=$(dirname "$lock")
	echo "==> npm ci in $dir"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done < <(find . -name package-lock.json -not -path '*/node_modules/*' -not -path './.git/*' | sort)

echo "==> go test -race ./..."
go test -race "$@" ./...
