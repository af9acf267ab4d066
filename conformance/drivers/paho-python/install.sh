#!/usr/bin/env bash
# Install paho-mqtt (PyPI) into a venv under $CACHE (set by ../driver.sh).
set -euo pipefail
version=2.2.0
if [ -x "$CACHE/venv/bin/python" ] && "$CACHE/venv/bin/python" -c "import paho.mqtt" 2>/dev/null \
    && [ "$("$CACHE/venv/bin/python" -c 'from importlib.metadata import version; print(version("paho-mqtt"))')" = "$version" ]; then
    exit 0
fi
rm -rf "$CACHE/venv"
python3 -m venv "$CACHE/venv"
"$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "paho-mqtt==$version"
