#!/usr/bin/env bash
# Install MQTT.js (npm) into $CACHE (set by ../driver.sh), next to a copy of the driver so
# that Node resolves `mqtt` from $CACHE/node_modules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=5.16.0
command -v npm >/dev/null || { echo "install.sh: MQTT.js needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
cp "$here/driver.mjs" "$CACHE/driver.mjs"
if [ "$(node -e "console.log(require('$CACHE/node_modules/mqtt/package.json').version)" 2>/dev/null)" = "$version" ]; then
    exit 0
fi
[ -f "$CACHE/package.json" ] || echo '{"name":"mqttkit-driver-mqttjs","private":true,"type":"module"}' >"$CACHE/package.json"
npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error "mqtt@$version" >&2
