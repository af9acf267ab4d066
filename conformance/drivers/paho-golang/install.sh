#!/usr/bin/env bash
# Build the paho.mqtt.golang driver into $CACHE/driver (set by ../driver.sh): Debian's Go and
# the library's Debian package, GOPATH mode, so no module proxy is needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
package=golang-github-eclipse-paho.mqtt.golang-dev
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v go >/dev/null || ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq golang-go "$package" >/dev/null
fi
version=$(dpkg-query -W -f='${Version}' "$package")
stamp="$CACHE/driver.version"
if [ -x "$CACHE/driver" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version $(sha256sum "$here/main.go" | cut -c1-16)" ]; then
    exit 0
fi
src="$CACHE/gopath/src/mqttkit-paho-driver"
mkdir -p "$src"
cp "$here/main.go" "$src/main.go"
GO111MODULE=off GOPATH="$CACHE/gopath:/usr/share/gocode" GOCACHE="$CACHE/gocache" \
    go build -ldflags "-X main.libraryVersion=${version%%-*}" -o "$CACHE/driver" mqttkit-paho-driver
echo "$version $(sha256sum "$here/main.go" | cut -c1-16)" >"$stamp"
