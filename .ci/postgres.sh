#!/usr/bin/env bash
# Starts (or stops) a throw-away PostgreSQL cluster for the tests: its own
# data directory, listening only on a unix socket in that directory, owned by
# the `postgres` user because the server refuses to run as root.
#
#   eval "$(bash .ci/postgres.sh start [DIR])"   # exports MLFLOW_TEST_POSTGRES_URI
#   bash .ci/postgres.sh stop [DIR]
#
# It installs Debian's postgresql package when the server binaries are
# missing and it may (root with apt-get). DIR defaults to /tmp/caddy-mlflow-pg.
set -euo pipefail
cmd=${1:-start}
dir=${2:-/tmp/caddy-mlflow-pg}

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	[ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case "$cmd" in
start)
	if [ -z "$(bindir)" ]; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
			echo "==> apt-get install postgresql" >&2
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -q >/dev/null
			apt-get install -y -q --no-install-recommends postgresql postgresql-contrib >/dev/null
		else
			echo "postgresql is missing: install Debian's postgresql package" >&2
			exit 1
		fi
	fi
	bin=$(bindir)
	if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
		useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
	fi
	if [ -s "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		echo "export MLFLOW_TEST_POSTGRES_URI='postgres://postgres@/postgres?host=$dir&sslmode=disable'"
		exit 0
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	# Fast and throw-away: no fsync (the durability tests kill Caddy, not
	# the machine), pg_stat_statements for the benchmarks' explanation.
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
		-o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_preload_libraries=pg_stat_statements" >&2 ||
		{ cat "$dir/server.log" >&2; exit 1; }
	echo "export MLFLOW_TEST_POSTGRES_URI='postgres://postgres@/postgres?host=$dir&sslmode=disable'"
	;;
stop)
	bin=$(bindir) || exit 0
	if [ -d "$dir/data" ]; then
		as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop [DIR]" >&2
	exit 2
	;;
esac
