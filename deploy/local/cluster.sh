#!/usr/bin/env bash
# A flowwatch cluster on this machine, as separate processes on loopback: a nats-server with
# JetStream KV (deploy/local/nats-server.sh installs it), two coordinators, three workers and a
# gateway, on a PostgreSQL database of the local server (made if missing). What the cluster
# tests (cli/tests/cluster.rs) start too.
#
#   deploy/local/cluster.sh            # runs until Ctrl-C; logs in target/local-cluster/
#   deploy/local/cluster.sh --smoke    # starts, waits until the workers run every partition,
#                                      # prints the cluster (as `admin cluster` and the
#                                      # gateway's GET /api/v1/cluster show it), stops (a check
#                                      # of this script)
#
# Environment: FLOWWATCH_BIN (default: target/release/flowwatch, built if missing),
# LOCAL_CLUSTER_PORT (first of the ports used, default 7000), LOCAL_CLUSTER_DB (default
# flowwatch_local), PGURL (default postgres://root@127.0.0.1:5432), FLOWWATCH_ROOT_PASSWORD
# (default "local root password").
set -euo pipefail
cd "$(dirname "$0")/../.."

smoke=false
[ "${1:-}" = "--smoke" ] && smoke=true
base=${LOCAL_CLUSTER_PORT:-7000}
db=${LOCAL_CLUSTER_DB:-flowwatch_local}
pg=${PGURL:-postgres://root@127.0.0.1:5432}
export FLOWWATCH_ROOT_PASSWORD=${FLOWWATCH_ROOT_PASSWORD:-local root password}
bin=${FLOWWATCH_BIN:-target/release/flowwatch}
if [ ! -x "$bin" ]; then
  cargo build --release --locked -p flowwatch-cli
fi
nats_server=$(deploy/local/nats-server.sh)
dir=target/local-cluster/$base
rm -rf "$dir" && mkdir -p "$dir"

psql "$pg/postgres" -qtc "select 1 from pg_database where datname = '$db'" | grep -q 1 \
  || psql "$pg/postgres" -qc "create database $db"

pids=()
# The gateway and the workers first, NATS last: a worker stops its partitions cleanly while
# NATS and the coordinators are still there.
stop() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT

nats_url=nats://127.0.0.1:$base
"$nats_server" -a 127.0.0.1 -p "$base" -js -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$base") 2>/dev/null && break; sleep 0.1; done

coordinators=http://127.0.0.1:$((base + 1)),http://127.0.0.1:$((base + 2))
for i in 1 2; do
  "$bin" coordinator --nats-url "$nats_url" --storage "$pg/$db" --grpc "127.0.0.1:$((base + i))" --name "c$i" \
    >"$dir/c$i.out" 2>"$dir/c$i.log" &
  pids+=($!)
done
for i in 1 2 3; do
  "$bin" worker --storage "$pg/$db" --nats-url "$nats_url" --coordinator "$coordinators" \
    --grpc "127.0.0.1:$((base + 10 + i))" --name "w$i" >"$dir/w$i.out" 2>"$dir/w$i.log" &
  pids+=($!)
done
"$bin" gateway --storage "$pg/$db" --nats-url "$nats_url" --coordinator "$coordinators" \
  --http "127.0.0.1:$((base + 80))" >"$dir/gateway.out" 2>"$dir/gateway.log" &
pids+=($!)

# Settled: three live workers, every partition owned, nothing moving.
settled=false
for _ in $(seq 150); do
  if "$bin" admin cluster --coordinator "$coordinators" --json 2>/dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)
ok = len(v["members"]) == 3 and all(v["owners"]) and not v["moving"] \
    and all(m["state"] == "live" and m["appliedEpoch"] >= m["planEpoch"] for m in v["members"])
sys.exit(0 if ok else 1)'; then
    settled=true
    break
  fi
  sleep 0.2
done
"$bin" admin cluster --coordinator "$coordinators" || true
if ! $settled; then
  echo "the cluster did not settle: logs in $dir" >&2
  exit 1
fi
# The gateway shows the same cluster (--coordinator): GET /api/v1/cluster with root's key.
if ! python3 - "http://127.0.0.1:$((base + 80))" <<'EOF'
import json, os, sys, time, urllib.request

def call(method, path, body=None, key=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(sys.argv[1] + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("X-API-Key", key)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)

login = {"username": "root", "password": os.environ["FLOWWATCH_ROOT_PASSWORD"]}
for attempt in range(50):
    try:
        key = call("POST", "/api/v1/login", login)["apiKey"]
        break
    except OSError as e:
        error = e
        time.sleep(0.2)
else:
    sys.exit(f"cannot log in to the gateway as root: {error}")
v = call("GET", "/api/v1/cluster", key=key)
workers = " ".join(sorted(m["worker"] for m in v["members"]))
epoch = f"{v['epoch'] >> 32}.{v['epoch'] & 0xffffffff}"
print(f"the gateway's cluster view: leader {v['coordinator']} (epoch {epoch}): {workers}")
EOF
then
  echo "the gateway shows no cluster view: logs in $dir" >&2
  $smoke && exit 1
fi
echo "web UI and API: http://127.0.0.1:$((base + 80)) (root / \$FLOWWATCH_ROOT_PASSWORD)"
echo "coordinators: $coordinators   logs: $dir"
if $smoke; then
  exit 0
fi
echo "Ctrl-C stops every process"
wait
