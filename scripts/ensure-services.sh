#!/usr/bin/env bash
# Make sure the servers the tests start on 127.0.0.1 are installed: PostgreSQL (initdb,
# pg_ctl) with the wal2json plugin (change data capture; each test cluster runs with
# wal_level=logical), the Mosquitto MQTT broker (the IoT source), and Chromium (the
# report's test renders it headless). Installs Debian's packages where missing.
set -euo pipefail
have_server() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
have_wal2json() { ls /usr/lib/postgresql/*/lib/wal2json.so >/dev/null 2>&1; }
have_mosquitto() { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; }
have_chromium() { command -v chromium >/dev/null 2>&1; }
if have_server && have_wal2json && have_mosquitto && have_chromium; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL, wal2json, Mosquitto or Chromium is missing: run as root, or:" \
       "sudo apt-get install postgresql postgresql-15-wal2json mosquitto chromium" >&2
  exit 1
fi
apt-get update -qq
have_server || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
have_wal2json || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-${version}-wal2json" >/dev/null
have_mosquitto || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
have_chromium || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
