#!/usr/bin/env bash
# bench.sh — throughput of caddy-mlflow against Caddy's own ceiling.
#
# Builds ./cmd/caddy and ./cmd/mlflow-bench, starts ONE caddy process with two
# sites on 127.0.0.1:
#   - the mlflow site (bbolt store + artifacts in a temp dir), and
#   - a ceiling site that only does `respond "ok" 200`,
# then runs mlflow-bench: `raw` against the ceiling site and the MLflow
# operations against the mlflow site, and prints the table plus log-batch
# req/s as a fraction of the ceiling.
#
# Usage (from anywhere in the repo):
#   e2e/bench.sh                     # defaults below
#   C=32 DURATION=20s OPS=log-batch e2e/bench.sh
#
# Environment:
#   C               concurrent clients                  (default 16)
#   DURATION        measured duration per operation     (default 10s)
#   OPS             MLflow operations, comma-separated  (default log-batch,create-run,search-runs,get-history)
#   SEED_RUNS       runs seeded for search-runs         (default 10000)
#   HISTORY_POINTS  points seeded for get-history       (default 100000)
#   MLFLOW_PORT, CEILING_PORT   ports on 127.0.0.1      (default: picked at random among free ones)
#   KEEP=1          keep the temp dir (store, Caddyfile, caddy log)
#
# Everything listens on and targets 127.0.0.1 only; the loops are bounded by
# DURATION and the seed sizes. Exits non-zero if any request failed.
set -euo pipefail

C=${C:-16}
DURATION=${DURATION:-10s}
OPS=${OPS:-log-batch,create-run,search-runs,get-history}
SEED_RUNS=${SEED_RUNS:-10000}
HISTORY_POINTS=${HISTORY_POINTS:-100000}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/caddy-mlflow-bench.XXXXXX")
caddy_pid=

cleanup() {
	if [[ -n "$caddy_pid" ]] && kill -0 "$caddy_pid" 2>/dev/null; then
		kill "$caddy_pid" 2>/dev/null || true
		wait "$caddy_pid" 2>/dev/null || true
	fi
	if [[ "${KEEP:-0}" == 1 ]]; then
		echo "kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		if port_free "$p"; then
			echo "$p"
			return
		fi
	done
	echo "no free port found" >&2
	exit 1
}
MLFLOW_PORT=${MLFLOW_PORT:-$(pick_port)}
CEILING_PORT=${CEILING_PORT:-$(pick_port)}
while [[ "$CEILING_PORT" == "$MLFLOW_PORT" ]]; do CEILING_PORT=$(pick_port); done

echo "building cmd/caddy and cmd/mlflow-bench ..." >&2
(cd "$root" && go build -o "$work/caddy" ./cmd/caddy && go build -o "$work/mlflow-bench" ./cmd/mlflow-bench)

cat >"$work/Caddyfile" <<EOF
{
	admin off
	persist_config off
}

http://127.0.0.1:$MLFLOW_PORT {
	mlflow {
		backend_store_uri $work/mlflow.bolt
		artifacts_destination $work/artifacts
		serve_artifacts on
	}
}

http://127.0.0.1:$CEILING_PORT {
	respond "ok" 200
}
EOF

mkdir -p "$work/home"
HOME="$work/home" XDG_DATA_HOME="$work/home/data" XDG_CONFIG_HOME="$work/home/config" \
	"$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!

# wait_ok PORT PATH: until GET http://127.0.0.1:PORT/PATH answers 200
# (checked with the bench tool's raw op, so curl is not needed).
wait_ok() {
	local url="http://127.0.0.1:$1$2"
	for _ in $(seq 1 300); do
		if ! kill -0 "$caddy_pid" 2>/dev/null; then
			echo "caddy exited; log:" >&2
			cat "$work/caddy.log" >&2
			exit 1
		fi
		if "$work/mlflow-bench" -op raw -url "http://127.0.0.1:$1" -raw-url "$url" -n 1 -c 1 >/dev/null 2>&1; then
			return
		fi
		sleep 0.1
	done
	echo "timed out waiting for $url; log:" >&2
	cat "$work/caddy.log" >&2
	exit 1
}
wait_ok "$MLFLOW_PORT" /health
wait_ok "$CEILING_PORT" /

echo "mlflow site  http://127.0.0.1:$MLFLOW_PORT  (store $work/mlflow.bolt)" >&2
echo "ceiling site http://127.0.0.1:$CEILING_PORT  (respond \"ok\" 200)" >&2
echo "$(nproc 2>/dev/null || echo '?') CPUs; client and server share them" >&2
echo >&2

"$work/mlflow-bench" \
	-url "http://127.0.0.1:$MLFLOW_PORT" \
	-raw-url "http://127.0.0.1:$CEILING_PORT/" \
	-op "raw,$OPS" \
	-c "$C" -d "$DURATION" \
	-seed-runs "$SEED_RUNS" -history-points "$HISTORY_POINTS"
