#!/usr/bin/env bash
# Interleaved comparison of mqttkit-broker and mosquitto with examples/load.rs, on
# 127.0.0.1 only: each round runs every scenario against each broker in turn (a fresh
# broker process per run, default configuration), so machine noise hits both alike.
#
#   broker-ref/examples/compare.sh [ROUNDS]        # default 3; prints one line per run
#
# Needs `mosquitto` on PATH (Debian: apt-get install mosquitto). With RUMQTTD=/path/to/rumqttd
# (`cargo install rumqttd`) rumqttd 0.20 runs too (its 3.1.1 listener; 5.0 scenarios are
# skipped for it). Medians: see the `summary` lines at the end (ratio = mqttkit / peer).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
cargo build --release -q -p mqttkit-broker --bin mqttkit-broker --example load
broker=target/release/mqttkit-broker
load=target/release/examples/load
out=$(mktemp)
port=19300

scenarios=(
  "p2p-q0|--secs 3 p2p"
  "p2p-q1|--secs 3 --qos 1 p2p"
  "p2p-q2|--secs 3 --qos 2 p2p"
  "fanout100-q0|--secs 3 fanout --subs 100"
  "fanout100-q1|--secs 3 --qos 1 fanout --subs 100"
  "fanout1000-q0|--secs 3 --size 64 fanout --subs 1000"
  "fanin100-q1|--secs 3 --qos 1 fanin --pubs 100"
  "fanin100-q1-v5|--secs 3 --qos 1 --v5 fanin --pubs 100"
  "rate1000|--secs 20 --rate 1000 p2p"
  "idle10k|conn --count 10000"
)

rumqttd_config() { # port
  cat <<TOML
id = 0
[router]
id = 0
max_connections = 20010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "127.0.0.1:$1"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 1048576
max_inflight_count = 100
dynamic_filters = true
TOML
}

run() { # name broker-kind args...
  local name=$1 kind=$2; shift 2
  port=$((port + 1))
  if [ "$kind" = mosquitto ]; then
    mosquitto -p $port >/dev/null 2>&1 & pid=$!
  elif [ "$kind" = rumqttd ]; then
    rumqttd_config $port > "$out.rumqttd.toml"
    "$RUMQTTD" -q -c "$out.rumqttd.toml" >/dev/null 2>&1 & pid=$!
  else
    RUST_LOG=warn $broker --listen 127.0.0.1:$port >/dev/null 2>&1 & pid=$!
  fi
  sleep 0.5
  line=$($load --addr 127.0.0.1:$port --pid $pid "$@" 2>&1 | tail -n 1 || true)
  kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  echo "$name $kind $line" | tee -a "$out"
}

for round in $(seq "$rounds"); do
  for s in "${scenarios[@]}"; do
    name=${s%%|*}; args=${s#*|}
    # Alternate which broker goes first.
    if [ $((round % 2)) = 1 ]; then order="mqttkit mosquitto"; else order="mosquitto mqttkit"; fi
    if [ -n "${RUMQTTD:-}" ] && [[ "$args" != *--v5* ]]; then order="$order rumqttd"; fi
    for kind in $order; do
      # shellcheck disable=SC2086
      run "$name" "$kind" $args
    done
  done
done

python3 - "$out" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 3: continue
    kv = dict(p.split('=', 1) for p in parts[2:] if '=' in p)
    runs[(parts[0], parts[1])].append(kv)
keys = ['msgs_per_s', 'delivered_pct', 'broker_cpu_us_per_msg', 'lat_p50_us', 'lat_p99_us', 'kb_per_conn', 'after_close_vs_baseline', 'disconnects']
for name in dict.fromkeys(n for n, _ in runs):
    cells = []
    for k in keys:
        vals = {}
        for kind in ('mqttkit', 'mosquitto', 'rumqttd'):
            xs = [float(r[k]) for r in runs.get((name, kind), []) if k in r]
            if xs: vals[kind] = statistics.median(xs)
        if 'mqttkit' not in vals or len(vals) < 2:
            continue
        peers = [p for p in ('mosquitto', 'rumqttd') if p in vals]
        text = f"{k}={vals['mqttkit']:g}"
        for p in peers:
            ratio = vals['mqttkit'] / vals[p] if vals[p] else float('nan')
            text += f" {p}={vals[p]:g} ({ratio:.2f}x)"
        cells.append(text)
    print(f"summary {name}: " + "  ".join(cells))
PY
rm -f "$out" "$out.rumqttd.toml"
