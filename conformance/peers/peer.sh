#!/usr/bin/env bash
# Install, start and stop real MQTT brokers on 127.0.0.1 (never another address), for
# conformance runs and CI.
#
#   conformance/peers/peer.sh install NAME             # install into the cache if missing
#   conformance/peers/peer.sh start NAME [PORT [PORT5]] # start on 127.0.0.1, free ports if not given
#   conformance/peers/peer.sh stop PID...              # stop brokers started by `start`
#   conformance/peers/peer.sh version NAME             # installed version
#
# NAME is mosquitto (Debian's package, apt-get), aedes (npm, 1.x), amqtt (PyPI, 0.12) or
# rumqttd (crates.io, 0.20; `cargo install`, about 5 minutes on 2 cores). Everything but
# mosquitto is cached under target/peers/ (MQTTKIT_PEERS_DIR overrides it).
#
# `start` waits until the broker accepts TCP connections (polling the port; it gives up
# after MQTTKIT_PEER_START_TIMEOUT seconds, 60 by default, or as soon as the process dies,
# printing its log), then prints shell assignments for `eval`:
#   PEER_NAME=rumqttd PEER_VERSION=0.20.0 PEER_PID=1234 PEER_PORT=40001 PEER_PORT5=40002
#   PEER_LOG=target/peers/run/rumqttd-40001.log
# PEER_PORT serves every version the broker speaks (3.1.1 and 5.0 for mosquitto; 3.1.1 only
# for aedes and amqtt, which answer a 5.0 CONNECT with the 3.1.1 CONNACK 20 02 00 01).
# rumqttd has one listener per version: PEER_PORT is its 3.1.1 listener, PEER_PORT5 its 5.0
# listener (PORT5 sets it); it refuses CONNECT with Keep Alive 0.
#
#   eval "$(conformance/peers/peer.sh start aedes)"
#   mqttkit-conformance "mqtt://127.0.0.1:$PEER_PORT"
#   conformance/peers/peer.sh stop "$PEER_PID"
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${MQTTKIT_PEERS_DIR:-$repo/target/peers}
run_dir=$cache/run

# Pinned versions: a verdict is about one version of someone else's software.
aedes_spec=aedes@~1.2.0
amqtt_spec='amqtt~=0.12.1'
rumqttd_version=0.20.0

die() { echo "peer.sh: $*" >&2; exit 1; }
log() { echo "peer.sh: $*" >&2; }

# Installs serialise on a per-peer lock, so parallel starts never install twice at once.
with_lock() {
    local name=$1
    shift
    mkdir -p "$cache"
    exec 9>"$cache/$name.lock"
    flock 9
    "$@"
    exec 9>&-
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_mosquitto() {
    command -v mosquitto >/dev/null && return
    log "installing mosquitto (apt-get)"
    # Another apt-get may hold the dpkg lock (CI images, other agents): wait for it.
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        mosquitto mosquitto-clients >/dev/null
}

install_aedes() {
    local dir=$cache/aedes
    [ -f "$dir/node_modules/aedes/package.json" ] && return
    command -v npm >/dev/null || die "aedes needs node and npm"
    log "installing $aedes_spec (npm) into $dir"
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"name":"mqttkit-peer-aedes","private":true,"type":"module"}' >"$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$aedes_spec" >&2
}

install_amqtt() {
    local dir=$cache/amqtt
    [ -x "$dir/bin/amqtt" ] && return
    log "installing $amqtt_spec (PyPI) into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$dir/bin/pip" install -q --disable-pip-version-check "$amqtt_spec" >&2
}

install_rumqttd() {
    local root=$cache/rumqttd
    [ -x "$root/bin/rumqttd" ] && return
    log "installing rumqttd $rumqttd_version (cargo install, several minutes) into $root"
    # Not --locked: the crate's lock file no longer builds with current toolchains. No TLS or
    # websocket features: the listeners here are plain TCP, and the build is shorter.
    # Parallelism follows CARGO_BUILD_JOBS (set it to 1 on a machine shared with other builds).
    cargo install -q --root "$root" --version "$rumqttd_version" --no-default-features rumqttd >&2
}

install() {
    case "$1" in
        mosquitto | aedes | amqtt | rumqttd) with_lock "$1" "install_$1" ;;
        *) die "unknown peer '$1' (mosquitto, aedes, amqtt, rumqttd)" ;;
    esac
}

version() {
    case "$1" in
        mosquitto) mosquitto -h 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true ;;
        aedes) node -p "require('$cache/aedes/node_modules/aedes/package.json').version" ;;
        amqtt) "$cache/amqtt/bin/python" -c 'import importlib.metadata as m; print(m.version("amqtt"))' ;;
        rumqttd) grep -oE 'rumqttd [0-9.]+' "$cache/rumqttd/.crates.toml" | cut -d' ' -f2 ;;
        *) die "unknown peer '$1'" ;;
    esac
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

alive() {
    # A zombie (exited, not yet reaped) counts as stopped.
    [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat")" != Z ]
}

# Writes conformance/peers/TEMPLATE with @PORT@/@PORT5@ replaced to FILE.
render() {
    sed -e "s/@PORT@/$3/g" -e "s/@PORT5@/${4:-}/g" "$here/$1" >"$2"
}

# launch NAME PORT PORT5: starts the broker in the background and waits until it listens.
# Sets pid and logf. Returns 0 when every port accepts connections, 2 when a port could not be
# bound (taken since it was chosen: free ports are also handed out as clients' ephemeral ports),
# 1 when the broker died or timed out.
launch() {
    local name=$1 port=$2 port5=$3 cmd
    logf=$run_dir/$name-$port.log
    case "$name" in
        mosquitto)
            render mosquitto.conf "$run_dir/mosquitto-$port.conf" "$port"
            cmd=(mosquitto -c "$run_dir/mosquitto-$port.conf") ;;
        aedes)
            cp "$here/aedes-server.mjs" "$cache/aedes/aedes-server.mjs"
            cmd=(node "$cache/aedes/aedes-server.mjs" "$port") ;;
        amqtt)
            render amqtt.yaml "$run_dir/amqtt-$port.yaml" "$port"
            cmd=("$cache/amqtt/bin/amqtt" -c "$run_dir/amqtt-$port.yaml") ;;
        rumqttd)
            render rumqttd.toml "$run_dir/rumqttd-$port.toml" "$port" "$port5"
            cmd=("$cache/rumqttd/bin/rumqttd" -q -c "$run_dir/rumqttd-$port.toml") ;;
    esac
    "${cmd[@]}" >"$logf" 2>&1 </dev/null &
    pid=$!
    local deadline=$((SECONDS + ${MQTTKIT_PEER_START_TIMEOUT:-60})) p
    for p in $port $port5; do
        until port_open "$p"; do
            # rumqttd logs a failed bind and keeps running without that listener.
            if grep -qiE 'address already in use|EADDRINUSE|AddrInUse' "$logf"; then
                stop "$pid"
                return 2
            fi
            if ! alive "$pid"; then
                log "$name exited during start-up; its log ($logf):"
                tail -n 30 "$logf" >&2
                return 1
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                stop "$pid"
                log "$name did not listen on 127.0.0.1:$p within ${MQTTKIT_PEER_START_TIMEOUT:-60} s (log: $logf)"
                return 1
            fi
            sleep 0.05
        done
    done
}

start() {
    local name=$1 given_port=${2:-} given_port5=${3:-} port port5 attempt pid logf status
    install "$name"
    mkdir -p "$run_dir"
    for attempt in 1 2 3 4 5; do
        port=${given_port:-$(free_port)}
        port5=$given_port5
        if [ "$name" = rumqttd ] && [ -z "$port5" ]; then
            port5=$(free_port)
            while [ "$port5" = "$port" ]; do port5=$(free_port); done
        fi
        for p in $port $port5; do
            port_open "$p" && die "127.0.0.1:$p is already in use"
        done
        status=0
        launch "$name" "$port" "$port5" || status=$?
        [ "$status" = 2 ] || break
        # Ports someone asked for are not replaced by others.
        if [ -n "$given_port" ] || [ -n "$given_port5" ]; then
            die "127.0.0.1:$port${port5:+ or $port5} could not be bound (log: $logf)"
        fi
        log "a port was taken before $name could bind it; trying other ports (attempt $attempt)"
    done
    [ "$status" != 2 ] || die "no free port could be bound after 5 attempts (log: $logf)"
    [ "$status" = 0 ] || exit 1
    echo "PEER_NAME=$name"
    echo "PEER_VERSION=$(version "$name")"
    echo "PEER_PID=$pid"
    echo "PEER_PORT=$port"
    [ -z "$port5" ] || echo "PEER_PORT5=$port5"
    echo "PEER_LOG=$logf"
}

stop() {
    local pid
    for pid in "$@"; do
        alive "$pid" || continue
        kill -TERM "$pid" 2>/dev/null || continue
        local deadline=$((SECONDS + 10))
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
        if alive "$pid"; then
            log "pid $pid ignored SIGTERM for 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
    install) [ $# -ge 1 ] || usage; for name in "$@"; do install "$name"; done ;;
    start) [ $# -ge 1 ] && [ $# -le 3 ] || usage; start "$@" ;;
    stop) [ $# -ge 1 ] || usage; stop "$@" ;;
    version) [ $# -eq 1 ] || usage; version "$1" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
