"""`python -m pipeline.metabase`: point a fresh Metabase at the PostgreSQL serving
database (docker-compose's `metabase-setup` runs it once).

Metabase keeps its connections in its own application database, not in environment
variables, so a new Metabase is set up through its API: wait for `/api/health`, read
the one-time setup token (`/api/session/properties`), then `POST /api/setup` with the
first admin and the serving database (schema `marts` only, as the read-only BI role).
A Metabase that is already set up is left alone.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import requests
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed


def setup_payload(env: dict[str, str], token: str) -> dict[str, Any]:
    return {
        "token": token,
        "user": {
            "email": env["MB_ADMIN_EMAIL"],
            "password": env["MB_ADMIN_PASSWORD"],
            "first_name": "Lakehouse",
            "last_name": "Admin",
            "site_name": "lakehouse",
        },
        "prefs": {"site_name": "lakehouse", "allow_tracking": False},
        "database": {
            "engine": "postgres",
            "name": env.get("MB_DATABASE_NAME", "lakehouse marts"),
            "details": {
                "host": env.get("SERVING_HOST", "postgres"),
                "port": int(env.get("SERVING_PORT", "5432")),
                "dbname": env.get("SERVING_DB", "serving"),
                "user": env.get("BI_READER_ROLE", "lakehouse_bi"),
                "password": env["BI_READER_PASSWORD"],
                "ssl": False,
                "schema-filters-type": "inclusion",
                "schema-filters-patterns": env.get("SERVING_SCHEMA", "marts"),
            },
        },
    }


def set_up(url: str, env: dict[str, str], wait_s: float = 600) -> str:
    """Returns what it did: `set up` or `already set up`."""
    session = requests.Session()

    @retry(retry=retry_if_exception_type(requests.RequestException),
           stop=stop_after_delay(wait_s), wait=wait_fixed(2), reraise=True)  # fmt: skip
    def properties() -> dict[str, Any]:
        session.get(f"{url}/api/health", timeout=10).raise_for_status()
        response = session.get(f"{url}/api/session/properties", timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    props = properties()
    if props.get("has-user-setup") or not props.get("setup-token"):
        return "already set up"
    response = session.post(f"{url}/api/setup", json=setup_payload(env, props["setup-token"]),
                            timeout=120)  # fmt: skip
    if response.status_code >= 400:
        raise RuntimeError(f"Metabase setup failed: HTTP {response.status_code}: "
                           f"{response.text[:300]}")  # fmt: skip
    return "set up"


def main() -> int:
    url = os.environ.get("MB_URL", "http://metabase:3000").rstrip("/")
    done = set_up(url, dict(os.environ))
    print(f"Metabase at {url}: {done} (the serving database's marts, read-only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
