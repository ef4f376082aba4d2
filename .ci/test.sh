#!/usr/bin/env bash
# The project's test command: installs the Node packages that some end-to-end
# tests drive (npm ci in every directory with a package-lock.json), then runs
# every Go test with the race detector. Run it from anywhere in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests (e2e/browser) drive Debian's Chromium; install it when
# it is missing and we may (root with apt), and make its absence a failure
# rather than a skip.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM_PATH:-}" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "==> apt-get install chromium"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
	else
		echo "chromium is missing: install Debian's chromium package (or set CHROMIUM_PATH) for the browser tests" >&2
	fi
fi
export MLFLOW_REQUIRE_BROWSER=1

# The PostgreSQL tests (store suite, replicas) need a server: start a
# throw-away cluster unless MLFLOW_TEST_POSTGRES_URI already names one, and
# stop it at the end. CI=true makes a missing server a failure, not a skip.
if [ -z "${MLFLOW_TEST_POSTGRES_URI:-}" ]; then
	pgdir=$(mktemp -d /tmp/caddy-mlflow-pg.XXXXXX)
	echo "==> start PostgreSQL in $pgdir (bash .ci/postgres.sh)"
	eval "$(bash .ci/postgres.sh start "$pgdir")"
	trap 'bash .ci/postgres.sh stop "$pgdir"' EXIT
fi
export MLFLOW_TEST_POSTGRES_URI
export CI=true

while IFS= read -r lock; do
	dir=$(dirname "$lock")
	echo "==> npm ci in $dir"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done < <(find . -name package-lock.json -not -path '*/node_modules/*' -not -path './.git/*' | sort)

echo "==> go test -race ./..."
# Every package of ./..., the slowest first: go test starts packages in the
# order given, -p (GOMAXPROCS) at a time, so in ./...'s alphabetical order
# the browser suite (minutes under -race) started late and ran alone at the
# end. The list is only an order; packages not in it follow alphabetically.
slow=(./e2e/browser ./caddymodule ./e2e ./tracking/mlflowimport/restsource ./tracking/boltstore ./tracking/pgstore ./internal/importcmd)
existing=()
for d in "${slow[@]}"; do
	[ -d "$d" ] && existing+=("$d")
done
mapfile -t first < <(go list "${existing[@]}")
mapfile -t pkgs < <(
	printf '%s\n' "${first[@]}"
	go list ./... | grep -vxF -f <(printf '%s\n' "${first[@]}")
)
# .ci/run has run the full go vet ./... already (CI_VETTED=1): go test's
# own vet step, a subset of those checks, would only repeat it per package.
vet=()
if [ "${CI_VETTED:-}" = 1 ]; then
	vet=(-vet=off)
fi
# A generous per-package timeout: the authorization matrix and the browser
# tests take minutes under -race on a 2-core machine.
go test -race -timeout 20m "${vet[@]}" "$@" "${pkgs[@]}"

# Then every fuzz target (discovered, not listed) for a short bounded time;
# FUZZTIME sets the time per target (default 5s), FUZZ=0 skips this step.
if [ "${FUZZ:-1}" != 0 ]; then
	echo "==> fuzz (bash .ci/fuzz.sh)"
	bash .ci/fuzz.sh
fi
