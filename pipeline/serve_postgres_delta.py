"""Bringing a served PostgreSQL table up to date by the rows its mart changed, and the
vacuum and analyze that autovacuum would have run after it (autovacuum is off on served
tables). `pipeline.serve_postgres` decides which marts go this way and runs the swap."""

from __future__ import annotations

import logging
import time
from typing import Any

import duckdb

from lake.diff import MartDiff

log = logging.getLogger("lakehouse.serve_postgres")

DELTA_MAX_SHARE = 0.25
"""A mart whose rows lost + gained exceed this share of its rows is copied whole instead."""


def delta_tables(mart: str) -> tuple[str, str]:
    """Names of the load schema's tables of a mart's lost keys and gained rows."""
    return f"{mart[:50]}__lost", f"{mart[:50]}__gained"


class Drifted(Exception):
    """A served table did not hold what its recorded snapshot says (edited by hand?)."""

    def __init__(self, mart: str, found: str) -> None:
        super().__init__(f"{mart}: {found}; copied whole instead")
        self.mart = mart


def apply_delta(
    pg: Any, target: str, load_schema: str, mart: str, key: tuple[str, ...], lost_rows: int,
    timings: dict[str, float] | None = None,
) -> int:  # fmt: skip
    """Delete the rows the mart lost by key, insert those it gained. Every lost key must be
    served once and no gained key yet, else `Drifted`: a check of the rows the change
    touches, at no cost beyond the change (a count of the whole table would cost a scan of
    it: 1.9 s of 24M order lines). `timings` gets each statement's seconds."""
    from psycopg import errors, sql

    timings = {} if timings is None else timings
    t0 = time.monotonic()

    lost, gained = (sql.Identifier(load_schema, t) for t in delta_tables(mart))
    table = sql.Identifier(target, mart)
    match = sql.SQL(" AND ").join(sql.SQL("t.{0} = l.{0}").format(sql.Identifier(c)) for c in key)
    deleted = pg.execute(
        sql.SQL("DELETE FROM {} t USING {} l WHERE {}").format(table, lost, match)
    ).rowcount
    timings["delete"], t0 = round(time.monotonic() - t0, 3), time.monotonic()
    if deleted != lost_rows:
        raise Drifted(mart, f"{deleted} of the {lost_rows} rows it lost were served")
    names = [r[0] for r in pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = %s ORDER BY ordinal_position",
        [load_schema, delta_tables(mart)[1]])]  # fmt: skip
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in names)
    try:
        inserted = pg.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(table, cols, cols, gained)
        ).rowcount
    except errors.UniqueViolation:
        raise Drifted(mart, "a row it gained was served already") from None
    timings["insert"] = round(time.monotonic() - t0, 3)
    return int(deleted) + int(inserted)


def plan_deltas(
    con: duckdb.DuckDBPyConnection, candidates: dict[str, tuple[int, int]],
    keys: dict[str, tuple[str, ...]], timings: dict[str, dict[str, float]] | None = None,
) -> dict[str, MartDiff]:  # fmt: skip
    """For each mart of `candidates` (mart -> (snapshot served, snapshot now)) worth
    bringing up to date by its changed rows, those rows (`lake.diff`; `keys`: each mart's
    primary key; `timings`: each mart's diff seconds)."""
    from lake.diff import mart_diff

    out: dict[str, MartDiff] = {}
    for n, (mart, (old, new)) in enumerate(sorted(candidates.items())):
        t0 = time.monotonic()
        try:
            diff = mart_diff(con, mart, old, new, f"_serving_delta_{n}", key=keys[mart],
                             max_share=DELTA_MAX_SHARE)  # fmt: skip
        except duckdb.Error as exc:  # the served snapshot expired (`lakehouse maintain`)
            log.info("serving: %s copied whole (%s)", mart, str(exc).splitlines()[0])
            continue
        seconds = time.monotonic() - t0
        if timings is not None:
            timings.setdefault(mart, {})["diff"] = round(seconds, 3)
        if diff is None:
            log.info("serving: %s copied whole: over %d%% of its rows changed (%.1fs)", mart,
                     DELTA_MAX_SHARE * 100, seconds)  # fmt: skip
            continue
        if diff.rows_then - diff.lost_rows + diff.gained_rows != diff.rows_now:
            log.warning("serving: %s copied whole: %d rows - %d lost + %d gained is not its "
                        "%d rows", mart, diff.rows_then, diff.lost_rows, diff.gained_rows,
                        diff.rows_now)  # fmt: skip
            diff.drop(con)
            continue
        how = "change feed" if diff.by_feed else "compared"
        log.info("serving: %s: %d rows lost, %d gained of %d (%s, %.1fs)", mart,
                 diff.lost_rows, diff.gained_rows, diff.rows_now, how, seconds)  # fmt: skip
        out[mart] = diff
    return out


VACUUM_SHARE = 0.2
"""A mart changed in place is vacuumed when its dead rows, or the rows inserted since its
last vacuum, pass this share of its rows (autovacuum's own defaults,
`autovacuum_vacuum_scale_factor` and `autovacuum_vacuum_insert_scale_factor`, with their
base thresholds of 50 and 1,000 rows)."""
ANALYZE_SHARE = 0.1
"""... and analyzed when the rows changed since its statistics pass this share
(`autovacuum_analyze_scale_factor`, base threshold 50)."""


def maintenance(changed: int, rows: int, dead: int, inserted: int, modified: int) -> str | None:
    """What autovacuum would run on a served table (autovacuum is off for them: its lock
    held up swaps) after a publish changed `changed` rows of its `rows` in place, given
    PostgreSQL's counts from before (`pg_stat_user_tables`: `n_dead_tup`,
    `n_ins_since_vacuum`, `n_mod_since_analyze`; they may already hold this publish's
    changes, which only brings the vacuum forward): "VACUUM (ANALYZE)", "VACUUM",
    "ANALYZE" or nothing. A small change costs no vacuum of the whole table's indexes."""
    vacuum = (dead + changed > 50 + VACUUM_SHARE * rows
              or inserted + changed > 1000 + VACUUM_SHARE * rows)  # fmt: skip
    analyze = modified + changed > 50 + ANALYZE_SHARE * rows
    if vacuum:
        return "VACUUM (ANALYZE)" if analyze else "VACUUM"
    return "ANALYZE" if analyze else None


def vacuum_changed(pg: Any, schema: str, changed: dict[str, int], rows: dict[str, int]) -> None:
    """The marts changed in place vacuumed (dead rows reclaimed, the visibility map that
    index-only scans read brought up to date) and analyzed as autovacuum would
    (`maintenance`). It takes no lock readers wait on."""
    from psycopg import sql

    stats = {
        r[0]: (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0))
        for r in pg.execute(
            "SELECT relname, n_dead_tup, n_ins_since_vacuum, n_mod_since_analyze"
            " FROM pg_stat_user_tables WHERE schemaname = %s",
            [schema],
        ).fetchall()
    }
    for mart, n in sorted(changed.items()):
        how = maintenance(n, rows.get(mart, 0), *stats.get(mart, (0, 0, 0)))
        log.info("serving: %s: %d rows changed in place; %s", mart, n, how or "no vacuum yet")
        if how:
            pg.execute(sql.SQL("{} {}").format(sql.SQL(how), sql.Identifier(schema, mart)))
