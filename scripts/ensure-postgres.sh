#!/usr/bin/env bash
# Make sure a PostgreSQL server (initdb, pg_ctl) and the wal2json plugin (change data
# capture) are installed for the tests; they start their own throwaway cluster on
# 127.0.0.1 with wal_level=logical. Installs Debian's packages where missing.
set -euo pipefail
have_server() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
have_wal2json() { ls /usr/lib/postgresql/*/lib/wal2json.so >/dev/null 2>&1; }
if have_server && have_wal2json; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL or wal2json is missing: run as root, or:" \
       "sudo apt-get install postgresql postgresql-15-wal2json" >&2
  exit 1
fi
apt-get update -qq
have_server || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-${version}-wal2json" >/dev/null
