#!/usr/bin/env bash
# record.sh SCENARIO [OUTDIR]: records scenarios/SCENARIO.py, run by an MLflow 3
# Python client, against a fresh caddy-mlflow (empty bbolt store) through
# recordproxy, into OUTDIR/mlflow3_SCENARIO.jsonl (default: the folder above).
# Run it from anywhere in the checkout with PYTHONPATH set up as the README
# says. Ports 5000 (server) and 5001 (proxy) must be free.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
scn=$1
out=$(cd "${2:-$here/..}" && pwd)
work=$(mktemp -d /tmp/mlflow3-record.XXXXXX)
(cd "$root" && go build -o "$work/caddy" ./cmd/caddy && go build -o "$work/recordproxy" ./tracking/api/replay/recordproxy)
cat > "$work/Caddyfile" <<CADDY
{
	admin off
	persist_config off
}
http://:5000 {
	bind 127.0.0.1
	mlflow {
		backend_store_uri $work/mlflow.bolt
		artifacts_destination $work/mlartifacts
	}
}
CADDY
"$work/caddy" run --config "$work/Caddyfile" > "$work/caddy.log" 2>&1 &
srv=$!
trap 'kill $srv ${prx:-} 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:5000/health >/dev/null 2>&1 && break; sleep 0.2; done
rm -f "$out/mlflow3_$scn.jsonl"
"$work/recordproxy" -listen 127.0.0.1:5001 -upstream http://127.0.0.1:5000 \
	-out "$out/mlflow3_$scn.jsonl" > "$work/proxy.log" 2>&1 &
prx=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/5001) 2>/dev/null && break; sleep 0.2; done
cd "$here"
env USER=conformance LOGNAME=conformance MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 \
	MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true /usr/bin/python3 "$scn.py"
# /version is compared by status only (the version the server reports is
# configuration; the replay test checks it is at least 3.4 separately).
/usr/bin/python3 - "$out/mlflow3_$scn.jsonl" <<'PY'
import json, sys
path = sys.argv[1]
lines = [json.loads(l) for l in open(path)]
for d in lines:
    if d["path"] == "/version":
        d["check"] = "status"
with open(path, "w") as f:
    for d in lines:
        f.write(json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n")
PY
