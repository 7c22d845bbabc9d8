# docker-compose's PostgreSQL: the official image plus the wal2json logical decoding
# plugin that `cdc: true` tables are read through (the server runs with wal_level=logical).
FROM postgres:15
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-wal2json \
 && rm -rf /var/lib/apt/lists/*
