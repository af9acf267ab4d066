#!/usr/bin/env bash
# Broker performance table: mqttkit-broker (release build) against mosquitto 2.0.11
# (Debian) and rumqttd 0.20 (crates.io, via conformance/peers/peer.sh), measured with
# `mqttkit bench` on 127.0.0.1 only. Every run gets a fresh broker process with its
# default configuration (mqttkit-broker: no config file; mosquitto: loopback listener,
# anonymous clients, log to stderr; rumqttd: conformance/peers/rumqttd.toml). Rounds are
# interleaved (each round runs every scenario against every broker, alternating which
# broker goes first) so that machine noise hits all alike; the table shows medians.
#
#   client-ref/bench/compare.sh                 # 3 rounds, all brokers, rewrite the README table
#   client-ref/bench/compare.sh --rounds 5      # more rounds
#   client-ref/bench/compare.sh --quick         # CI smoke: 1 short round, tiny scenarios, no README
#   client-ref/bench/compare.sh --brokers "mqttkit mosquitto" --no-readme
#
# Options: --rounds N, --quick, --brokers "mqttkit mosquitto rumqttd", --no-readme,
# --readme FILE (default: the repository's README.md, between <!-- broker-bench:begin -->
# and <!-- broker-bench:end -->; the full medians go to client-ref/bench/RESULTS.md).
# --quick uses mosquitto and rumqttd only if already installed, and never writes the
# README unless --readme is given; it checks that every run produced a report, never speed.
#
# 10,000 idle connections need 10,000 file descriptors in the generator and in the broker:
# the script raises the soft `ulimit -n` to the hard limit (at most 65,536) and stops if
# the hard limit is below 10,500 (raise it, e.g. in /etc/security/limits.conf, or run as
# root). Each run's JSON report and the broker's log are kept in target/broker-bench/.
# Takes about 20 minutes for 3 rounds on 2 cores (rumqttd's first build: 5 more minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

rounds=3
quick=0
brokers=""
readme="$repo/README.md"
write_readme=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --brokers) brokers=$2; shift 2 ;;
        --readme) readme=$2; write_readme=2; shift 2 ;;
        --no-readme) write_readme=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$quick" = 1 ]; then
    rounds=1
    [ "$write_readme" = 2 ] || write_readme=0
fi

log() { printf '%s compare.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

peer=conformance/peers/peer.sh
out=target/broker-bench/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

# ----------------------------------------------------------------------- file descriptors
idle=10000
[ "$quick" = 0 ] || idle=200
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=65536
want=$((hard < 65536 ? hard : 65536))
ulimit -n "$want" || die "cannot raise ulimit -n to $want"
[ "$(ulimit -n)" -ge $((idle + 500)) ] ||
    die "ulimit -n is $(ulimit -n) (hard limit $hard): $idle idle connections need at least $((idle + 500))"

# ----------------------------------------------------------------------- builds and peers
log "building mqttkit and mqttkit-broker (release)"
cargo build --release -q -p mqttkit-client --bin mqttkit -p mqttkit-broker --bin mqttkit-broker
mqttkit=$repo/target/release/mqttkit
mqttkit_broker=$repo/target/release/mqttkit-broker

if [ -z "$brokers" ]; then
    brokers="mqttkit"
    if [ "$quick" = 1 ]; then
        command -v mosquitto >/dev/null && brokers+=" mosquitto"
        [ -x "${MQTTKIT_PEERS_DIR:-target/peers}/rumqttd/bin/rumqttd" ] && brokers+=" rumqttd"
    else
        brokers+=" mosquitto rumqttd"
    fi
fi
for b in $brokers; do
    case "$b" in
        mqttkit) ;;
        mosquitto | rumqttd) "$peer" install "$b" ;;
        *) die "unknown broker '$b' (mqttkit, mosquitto, rumqttd)" ;;
    esac
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
alive() { [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ] && return 1; [ -r "/proc/$1/stat" ]; }
wait_port() { # PORT PID
    local deadline=$((SECONDS + 20))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        alive "$2" || return 1
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# start_broker KIND VERSION LOG: sets broker_pid and broker_port.
start_broker() {
    local kind=$1 version=$2 logf=$3 attempt
    for attempt in 1 2 3; do
        case "$kind" in
            mqttkit)
                broker_port=$(free_port)
                "$mqttkit_broker" --listen "127.0.0.1:$broker_port" >"$logf" 2>&1 </dev/null &
                broker_pid=$! ;;
            mosquitto)
                broker_port=$(free_port)
                printf 'listener %s 127.0.0.1\nallow_anonymous true\nlog_dest stderr\n' "$broker_port" >"$logf.conf"
                mosquitto -c "$logf.conf" >"$logf" 2>&1 </dev/null &
                broker_pid=$! ;;
            rumqttd)
                local vars
                vars=$("$peer" start rumqttd 2>>"$logf") || continue
                eval "$vars"
                broker_pid=$PEER_PID
                if [ "$version" = 5 ]; then broker_port=$PEER_PORT5; else broker_port=$PEER_PORT; fi
                return 0 ;;
        esac
        wait_port "$broker_port" "$broker_pid" && return 0
        stop_broker "$kind"
        log "$kind did not start on 127.0.0.1:$broker_port (attempt $attempt); log: $logf"
    done
    return 1
}

stop_broker() {
    if [ "$1" = rumqttd ]; then
        "$peer" stop "$broker_pid"
        return
    fi
    kill -TERM "$broker_pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while alive "$broker_pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    alive "$broker_pid" && kill -KILL "$broker_pid" 2>/dev/null
    wait "$broker_pid" 2>/dev/null || true
}

# ----------------------------------------------------------------------- scenarios
# name|protocol version|mqttkit bench arguments. Payloads of 64 bytes, publishers' window
# 20 (mosquitto_pub's); the generator runs publishers on one thread and subscribers on
# another.
if [ "$quick" = 0 ]; then
    scenarios=(
        "p2p-q0|3.1.1|p2p -n 1 -q 0 --duration 5"
        "p2p-q1|3.1.1|p2p -n 1 -q 1 --duration 5"
        "p2p-q2|3.1.1|p2p -n 1 -q 2 --duration 5"
        # QoS 0 fan-out has no flow control: a flat-out publisher would queue minutes of
        # deliveries. A burst of 1,000,000 deliveries instead, timed to the last one.
        "fanout100-q0|3.1.1|fan-out -n 100 -q 0 -C 10000 --drain 3"
        "fanout100-q1|3.1.1|fan-out -n 100 -q 1 --duration 5"
        "fanout1000-q0|3.1.1|fan-out -n 1000 -q 0 -C 1000 --drain 3"
        "fanout1000-q1|3.1.1|fan-out -n 1000 -q 1 --duration 5"
        "fanin100-q1|3.1.1|fan-in -n 100 -q 1 --duration 5"
        "fanin100-shared-q1-v5|5|fan-in -n 100 -q 1 --shared g --subscribers 2 --duration 5"
        "rate1000-q0|3.1.1|p2p -n 1 -q 0 --rate 1000 --duration 20"
        "idle10k|3.1.1|conn -n $idle --hold 5 --settle 3"
    )
else
    scenarios=(
        "p2p-q0|3.1.1|p2p -n 1 -q 0 --duration 1 --drain 1"
        "p2p-q1|3.1.1|p2p -n 1 -q 1 --duration 1 --drain 1"
        "p2p-q2|3.1.1|p2p -n 1 -q 2 --duration 1 --drain 1"
        "fanout100-q1|3.1.1|fan-out -n 10 -q 1 --duration 1 --drain 1"
        "fanin100-q1|3.1.1|fan-in -n 10 -q 1 --duration 1 --drain 1"
        "fanin100-shared-q1-v5|5|fan-in -n 10 -q 1 --shared g --subscribers 2 --duration 1 --drain 1"
        "rate1000-q0|3.1.1|p2p -n 1 -q 0 --rate 1000 --duration 2 --drain 1"
        "idle10k|3.1.1|conn -n $idle --hold 0.5 --settle 0.5"
    )
fi

# ----------------------------------------------------------------------- runs
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
python3 - "$out/meta.json" "$rounds" "$quick" "$brokers" "${cpu:-unknown CPU}" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$(mosquitto -h 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)" \
    "$( (echo "$brokers" | grep -q rumqttd && "$peer" version rumqttd) || true)" \
    "$(rustc --version)" <<'PY'
import json, sys, datetime
keys = ["rounds", "quick", "brokers", "cpu", "cores", "load_at_start", "commit", "mosquitto", "rumqttd", "rustc"]
meta = dict(zip(keys, sys.argv[2:]))
meta["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
json.dump(meta, open(sys.argv[1], "w"), indent=1)
PY

failures=0
read -r -a broker_list <<<"$brokers"
for round in $(seq "$rounds"); do
    for s in "${scenarios[@]}"; do
        IFS='|' read -r name version args <<<"$s"
        order=("${broker_list[@]}")
        # Alternate which broker goes first.
        if [ $((round % 2)) = 0 ]; then
            order=()
            for ((i = ${#broker_list[@]} - 1; i >= 0; i--)); do order+=("${broker_list[i]}"); done
        fi
        for kind in "${order[@]}"; do
            base=$out/$round-$name-$kind
            if ! start_broker "$kind" "$version" "$base.broker.log"; then
                log "round $round $name $kind: broker did not start"
                failures=$((failures + 1))
                continue
            fi
            status=0
            # shellcheck disable=SC2086
            timeout 300 "$mqttkit" bench $args -V "$version" -h 127.0.0.1 -p "$broker_port" \
                --broker-pid "$broker_pid" --json --no-progress >"$base.json" 2>"$base.stderr" || status=$?
            stop_broker "$kind"
            if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$base.json" 2>/dev/null; then
                summary=$(python3 - "$base.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m, b = d["messages"], d.get("broker") or {}
mem = d.get("memory") or {}
if d["scenario"] == "conn":
    print(f"{d['connections']['connected']} connected, {mem.get('kib_per_connection')} KiB each, "
          f"after close {mem.get('after_close_vs_baseline')}x baseline")
else:
    print(f"{m['delivered_per_s']:.0f} deliveries/s ({m['delivered_pct']}%), "
          f"broker {b.get('cpu_us_per_message')} us/msg, p50 {d['latency_us'].get('p50')} us, "
          f"disconnects {d['disconnects']['total']}")
PY
)
                log "round $round $name $kind: $summary (exit $status)"
            else
                log "round $round $name $kind: no report (exit $status): $(tail -n 3 "$base.stderr" | tr '\n' ' ')"
                rm -f "$base.json"
                failures=$((failures + 1))
            fi
        done
    done
done

# ----------------------------------------------------------------------- table
table_args=("$out")
if [ "$write_readme" != 0 ]; then
    table_args+=(--readme "$readme" --results "$repo/client-ref/bench/RESULTS.md")
fi
python3 client-ref/bench/table.py "${table_args[@]}"
log "reports in $out"
if [ "$failures" -gt 0 ]; then
    die "$failures runs produced no report"
fi
