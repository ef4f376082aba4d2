#!/usr/bin/env bash
# bench_replicas.sh — the same MLflow load against three deployments, on one
# machine, in one run:
#
#   bolt   one caddy, tracking data in a bbolt file (the embedded default)
#   pg1    one caddy, tracking data in PostgreSQL
#   pg2    two caddy replicas on one PostgreSQL database behind a third caddy
#          running Caddyfile.balancer.example (round robin, health checks)
#
# Each deployment gets a fresh store (a new bolt file, a new database) and
# cmd/mlflow-bench runs OPS against it; then one table gives req/s per
# operation and deployment, and, per PostgreSQL deployment, the statements
# that took the most time (pg_stat_statements, preloaded by
# .ci/postgres.sh).
#
# Usage (from anywhere in the repo), with a PostgreSQL server:
#   export MLFLOW_TEST_POSTGRES_URI='postgres://postgres@/postgres?host=/tmp/pgdev&sslmode=disable'
#   e2e/bench_replicas.sh
#   C=32 DURATION=20s OPS=get-run,search-runs DEPLOYMENTS=pg1,pg2 e2e/bench_replicas.sh
#
# Environment:
#   MLFLOW_TEST_POSTGRES_URI  admin URI of the server (a role that may create databases)
#   C               concurrent clients                  (default 16)
#   DURATION        measured duration per operation     (default 10s)
#   OPS             operations, comma-separated         (default log-batch,create-run,search-runs,get-history,get-run)
#   DEPLOYMENTS     which of bolt,pg1,pg2               (default all three)
#   SEED_RUNS       runs seeded for search-runs         (default 10000)
#   HISTORY_POINTS  points seeded for get-history       (default 100000)
#   MAX_CONNS       postgres { max_conns } per replica  (default 16)
#   TOP             statements listed per deployment    (default 8; 0: none)
#   KEEP=1          keep the temp dir and the databases
#
# Everything listens on 127.0.0.1 only. Client, servers and PostgreSQL share
# the machine's CPUs: the numbers compare the deployments with each other,
# they are not absolute.
set -euo pipefail

C=${C:-16}
DURATION=${DURATION:-10s}
OPS=${OPS:-log-batch,create-run,search-runs,get-history,get-run}
DEPLOYMENTS=${DEPLOYMENTS:-bolt,pg1,pg2}
SEED_RUNS=${SEED_RUNS:-10000}
HISTORY_POINTS=${HISTORY_POINTS:-100000}
MAX_CONNS=${MAX_CONNS:-16}
TOP=${TOP:-8}
PG=${MLFLOW_TEST_POSTGRES_URI:-}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/caddy-mlflow-bench-replicas.XXXXXX")
pids=()
dbs=()
suffix=$(date +%s)_$$

psql_admin() { psql "$PG" -v ON_ERROR_STOP=1 -qAtX "$@"; }
db_uri() { # db_uri NAME: the admin URI with its database replaced
	local base=${PG%%\?*} query=
	[[ "$PG" == *\?* ]] && query="?${PG#*\?}"
	echo "${base%/*}/$1$query"
}

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [[ "${KEEP:-0}" == 1 ]]; then
		echo "kept $work and databases ${dbs[*]:-}" >&2
		return
	fi
	for d in "${dbs[@]}"; do
		psql_admin -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
	done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [[ ",$DEPLOYMENTS," == *,pg* && -z "$PG" ]]; then
	echo "MLFLOW_TEST_POSTGRES_URI is not set (eval \"\$(bash .ci/postgres.sh start)\" sets it)" >&2
	exit 2
fi

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

echo "building cmd/caddy and cmd/mlflow-bench ..." >&2
(cd "$root" && go build -o "$work/caddy" ./cmd/caddy && go build -o "$work/mlflow-bench" ./cmd/mlflow-bench)
mkdir -p "$work/home"

# start_caddy NAME CADDYFILE [ENV=VALUE...]: runs caddy in the background.
start_caddy() {
	local name=$1 cfg=$2
	shift 2
	env HOME="$work/home" XDG_DATA_HOME="$work/home/data" XDG_CONFIG_HOME="$work/home/config" "$@" \
		"$work/caddy" run --config "$cfg" --adapter caddyfile >"$work/$name.log" 2>&1 &
	pids+=($!)
}

# wait_ok URL LOG
wait_ok() {
	for _ in $(seq 1 600); do
		if "$work/mlflow-bench" -op raw -url "$1" -raw-url "$1/health" -n 1 -c 1 >/dev/null 2>&1; then
			return
		fi
		sleep 0.1
	done
	echo "timed out waiting for $1/health; log:" >&2
	tail -n 50 "$2" >&2
	exit 1
}

stop_all() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=()
}

# replica_conf PORT BACKEND DIR: a replica without auth (the benchmark
# measures the store and the proxy, not credential checks).
replica_conf() {
	local pgblock=
	if [[ "$2" == postgres* ]]; then
		pgblock="postgres {
			max_conns $MAX_CONNS
		}"
	fi
	cat <<EOF
{
	admin off
	persist_config off
}
http://127.0.0.1:$1 {
	mlflow {
		backend_store_uri $2
		$pgblock
		artifacts_destination $3/artifacts
	}
}
EOF
}

new_db() { # new_db NAME: creates the database, enables pg_stat_statements, sets $uri
	local name="bench_${1}_$suffix"
	psql_admin -c "CREATE DATABASE $name" >/dev/null
	dbs+=("$name") # not in a $(...) subshell, so cleanup sees it
	uri=$(db_uri "$name")
	psql "$uri" -qAtX -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
	psql "$uri" -qAtX -c "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)" >/dev/null
}

top_statements() { # top_statements URI
	[[ "$TOP" -gt 0 ]] || return 0
	psql "$1" -qX -P pager=off -c "
SELECT calls, round(total_exec_time) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms,
       rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC LIMIT $TOP"
}

declare -A rps
run_bench() { # run_bench DEPLOYMENT URL
	echo "== $1: $2" >&2
	"$work/mlflow-bench" -url "$2" -op "$OPS" -c "$C" -d "$DURATION" \
		-seed-runs "$SEED_RUNS" -history-points "$HISTORY_POINTS" | tee "$work/$1.txt"
	while read -r op _ r _; do
		rps[$1,$op]=$r
	done < <(awk '$1 ~ /^[a-z-]+$/ && $3 ~ /^[0-9.]+$/ {print $1, $2, $3}' "$work/$1.txt")
	echo
}

echo "$(nproc 2>/dev/null || echo '?') CPUs; client, servers and PostgreSQL share them; $C clients, $DURATION per op" >&2

IFS=, read -ra deps <<<"$DEPLOYMENTS"
for dep in "${deps[@]}"; do
	case "$dep" in
	bolt)
		p=$(pick_port)
		mkdir -p "$work/bolt"
		replica_conf "$p" "$work/bolt/mlflow.bolt" "$work/bolt" >"$work/bolt/Caddyfile"
		start_caddy bolt "$work/bolt/Caddyfile"
		wait_ok "http://127.0.0.1:$p" "$work/bolt.log"
		run_bench bolt "http://127.0.0.1:$p"
		stop_all
		;;
	pg1)
		new_db one
		p=$(pick_port)
		mkdir -p "$work/pg1"
		replica_conf "$p" "$uri" "$work/pg1" >"$work/pg1/Caddyfile"
		start_caddy pg1 "$work/pg1/Caddyfile"
		wait_ok "http://127.0.0.1:$p" "$work/pg1.log"
		run_bench pg1 "http://127.0.0.1:$p"
		echo "-- pg1: statements by total time" >&2
		top_statements "$uri"
		stop_all
		;;
	pg2)
		new_db two
		p1=$(pick_port)
		p2=$(pick_port)
		while [[ "$p2" == "$p1" ]]; do p2=$(pick_port); done
		pf=$(pick_port)
		while [[ "$pf" == "$p1" || "$pf" == "$p2" ]]; do pf=$(pick_port); done
		mkdir -p "$work/pg2"
		replica_conf "$p1" "$uri" "$work/pg2" >"$work/pg2/Caddyfile.r1"
		replica_conf "$p2" "$uri" "$work/pg2" >"$work/pg2/Caddyfile.r2"
		start_caddy pg2-r1 "$work/pg2/Caddyfile.r1"
		start_caddy pg2-r2 "$work/pg2/Caddyfile.r2"
		wait_ok "http://127.0.0.1:$p1" "$work/pg2-r1.log"
		wait_ok "http://127.0.0.1:$p2" "$work/pg2-r2.log"
		start_caddy pg2-balancer "$root/Caddyfile.balancer.example" \
			MLFLOW_SITE="http://127.0.0.1:$pf" MLFLOW_REPLICAS="127.0.0.1:$p1 127.0.0.1:$p2"
		wait_ok "http://127.0.0.1:$pf" "$work/pg2-balancer.log"
		run_bench pg2 "http://127.0.0.1:$pf"
		echo "-- pg2: statements by total time" >&2
		top_statements "$uri"
		stop_all
		;;
	*)
		echo "unknown deployment $dep (want bolt, pg1, pg2)" >&2
		exit 2
		;;
	esac
done

echo "== req/s ($C clients, $DURATION per op)"
{
	printf "op"
	for dep in "${deps[@]}"; do printf "\t%s" "$dep"; done
	[[ ",$DEPLOYMENTS," == *,pg1,* && ",$DEPLOYMENTS," == *,pg2,* ]] && printf "\tpg2/pg1"
	printf "\n"
	IFS=, read -ra oplist <<<"$OPS"
	for op in "${oplist[@]}"; do
		printf "%s" "$op"
		for dep in "${deps[@]}"; do printf "\t%s" "${rps[$dep,$op]:--}"; done
		if [[ -n "${rps[pg1,$op]:-}" && -n "${rps[pg2,$op]:-}" ]]; then
			awk -v a="${rps[pg2,$op]}" -v b="${rps[pg1,$op]}" 'BEGIN { if (b > 0) printf "\t%.2fx", a / b; else printf "\t-" }'
		fi
		printf "\n"
	done
} | column -t -s $'\t'
