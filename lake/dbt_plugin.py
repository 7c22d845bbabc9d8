"""dbt-duckdb plugin: a dbt model's catalog transaction takes the lake's commit lock.

`profiles.yml` loads it (`plugins: [{module: lake.dbt_plugin, config: {catalog: ...}}]`),
and the project's hooks call its two SQL functions around each model:
`lakehouse_hold_commits()` before the model first reads the lake (a pre-hook, and the
macros that query the lake while a model compiles), `lakehouse_release_commits()` after
its commit (a post-hook outside the transaction). Why a SQLite catalog needs the lock:
`lake.locks`. A model that fails keeps the lock until the next model's release or the
end of the dbt process. Without a `catalog` (a PostgreSQL catalog, or a plain `dbt`
outside lakehouse) both functions do nothing.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from lake.locks import hold_commits, holding_commits, release_commits


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.catalog = str(plugin_config.get("catalog") or "") or None

    def configure_connection(self, conn: Any) -> None:
        from duckdb.sqltypes import BOOLEAN

        conn.create_function("lakehouse_hold_commits", self._hold, [], BOOLEAN,
                             side_effects=True)  # fmt: skip
        conn.create_function("lakehouse_release_commits", self._release, [], BOOLEAN,
                             side_effects=True)  # fmt: skip

    def _hold(self) -> bool:
        if self.catalog is None:
            return False
        if not holding_commits(self.catalog):  # (a model holds it once, however often asked)
            hold_commits(self.catalog)
        return True

    def _release(self) -> bool:
        if self.catalog is None:
            return False
        release_commits(self.catalog)
        return True
