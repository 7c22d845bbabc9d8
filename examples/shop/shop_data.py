"""The example online shop: a deterministic, seeded generator at any scale.

Generated inside DuckDB from integer ranges and a seeded hash, so the same `(scale, seed)`
gives the same data and millions of rows take seconds. Demos, tests and benchmarks all
use it. It writes every kind of source the shop has (under `out_dir`):

    shop.sqlite                     the shop's database: customers, products, orders,
                                    order_items, inventory
    vendor/reviews.json             reviews, served as a paginated API (examples/shop/shop_api.py)
    suppliers/catalog.csv           the supplier catalog
    iot/sensor_readings_<m>.csv     cold-storage sensor readings, one file per month
    web/clickstream_<m>.jsonl       clickstream events, one file per month
    support/tickets/*.txt           support tickets
    finance/invoices/*.pdf          supplier invoices

Scale 1 = 2,000 customers, 20,000 orders (~60,000 lines), 300 products, 3 warehouses.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from duckdb import DuckDBPyConnection

from examples.shop.pdf import write_text_pdf
from lake.duck import connect, quote_str

STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
CATEGORIES = ("books", "garden", "kitchen", "toys", "electronics", "sports", "beauty", "grocery")
COUNTRIES = ("US", "DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "CA")
FIRST = ("Ada", "Ben", "Chloe", "Dan", "Eva", "Finn", "Gia", "Hugo", "Iris", "Jon", "Kai", "Lea")
LAST = ("Smith", "Müller", "Martin", "Rossi", "Novak", "Berg", "Lopez", "Kowalski", "Dubois")
SUPPLIERS = 20
WAREHOUSES = 3
MONTHS = 3
SQLITE_TYPES = {"BIGINT": "INTEGER", "INTEGER": "INTEGER", "VARCHAR": "TEXT",
                "TIMESTAMP": "TIMESTAMP", "DOUBLE": "REAL"}  # fmt: skip


@dataclass(frozen=True)
class ShopSize:
    customers: int
    products: int
    orders: int
    reviews: int
    sessions: int
    tickets: int

    @classmethod
    def at(cls, scale: float) -> ShopSize:
        if scale <= 0:
            raise ValueError("scale must be positive")
        return cls(
            customers=max(10, int(2_000 * scale)),
            products=max(10, min(5_000, int(300 * max(scale, 1) ** 0.5))),
            orders=max(20, int(20_000 * scale)),
            reviews=max(10, int(3_000 * scale)),
            sessions=max(10, int(5_000 * scale)),
            tickets=max(3, min(500, int(40 * scale))),
        )


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(quote_str(v) for v in values) + "]"


def _pick(values: tuple[str, ...], expr: str) -> str:
    return f"{_list(values)}[1 + ({expr} * {len(values)})::INT % {len(values)}]"


TABLES_SQL = {
    "customers": """
        SELECT *, created_at AS updated_at FROM (
          SELECT i AS customer_id,
                 lower({first}) || '.' || i || '@Example.COM' AS email,
                 {first} AS first_name, {last} AS last_name, {country} AS country,
                 TIMESTAMP '2025-01-01' + to_seconds((r(i, 'ct') * 365 * 86400)::BIGINT)
                   AS created_at
          FROM range(1, {customers} + 1) t(i))""",
    "products": """
        SELECT i AS product_id, 'SKU-' || lpad(i::VARCHAR, 6, '0') AS sku,
               {category} || ' item ' || i AS product_name, {category} AS category,
               round(2 + r(i, 'p') * 198, 2)::DECIMAL(12, 2)::VARCHAR AS unit_price,
               1 + (r(i, 's') * {suppliers})::INT % {suppliers} AS supplier_id,
               r(i, 'cold') < 0.15 AS needs_cold_storage
        FROM range(1, {products} + 1) t(i)""",
    "orders": """
        SELECT *, coalesce(delivered_at, shipped_at, ordered_at)
                    + to_seconds((60 + r(order_id, 'up') * 86400)::BIGINT) AS updated_at
        FROM (
          SELECT *, CASE WHEN status IN ('delivered', 'returned') THEN shipped_at
                      + to_seconds((86400 + r(order_id, 'dl') * 4 * 86400)::BIGINT) END
                      AS delivered_at
          FROM (
            SELECT i AS order_id,
                   1 + (r(i, 'cu') * {customers})::BIGINT % {customers} AS customer_id,
                   {status} AS status, ts AS ordered_at, 'EUR' AS currency,
                   (CASE WHEN r(i, 'sh') < 0.3 THEN 0 ELSE 4.99 END)::DECIMAL(12, 2)::VARCHAR
                     AS shipping_amount,
                   CASE WHEN {status} IN ('shipped', 'delivered', 'returned') THEN ts
                          + to_seconds((3600 + r(i, 'sp') * 3 * 86400)::BIGINT) END
                     AS shipped_at
            FROM (SELECT i, TIMESTAMP '2026-01-01'
                            + to_seconds((r(i, 'ts') * {months} * 30 * 86400)::BIGINT) AS ts
                  FROM range(1, {orders} + 1) t(i))))""",
    "order_items": """
        SELECT row_number() OVER (ORDER BY o.order_id, n) AS order_item_id, o.order_id,
               p.product_id, 1 + (r(o.order_id * 7 + n, 'q') * 3)::INT AS quantity,
               p.unit_price,
               (CASE WHEN r(o.order_id * 7 + n, 'd') < 0.2
                     THEN round(p.unit_price::DECIMAL(12, 2) * 0.1, 2) ELSE 0 END
               )::DECIMAL(12, 2)::VARCHAR AS discount_amount
        FROM orders o, range(0, 1 + (r(o.order_id, 'n') * 4)::INT) AS lines(n), products p
        WHERE p.product_id
              = 1 + (r(o.order_id * 7 + n, 'pr') * {products})::BIGINT % {products}""",
    "inventory": """
        SELECT p.product_id, w AS warehouse_id,
               (r(p.product_id * 10 + w, 'inv') * 200)::INT AS on_hand,
               (5 + r(p.product_id * 10 + w, 'rp') * 30)::INT AS reorder_point,
               TIMESTAMP '2026-03-31 23:00:00' AS updated_at
        FROM products p, range(1, {warehouses} + 1) t(w)""",
}


def generate(out_dir: Path, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
    """Write every source of the shop under `out_dir`; returns rows per table."""
    size = ShopSize.at(scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect()
    # r(i, salt): a uniform number in [0, 1), the same for the same seed on every run.
    con.execute(f"CREATE MACRO r(i, salt) AS (hash(i, salt, {int(seed)}) % 1000003) / 1000003.0")
    params = {
        "first": _pick(FIRST, "r(i, 'f')"), "last": _pick(LAST, "r(i, 'l')"),
        "country": _pick(COUNTRIES, "r(i, 'c')"), "category": _pick(CATEGORIES, "r(i, 'cat')"),
        "status": _pick(STATUSES, "least(r(i, 'st') * 1.0, 0.999)"),
        "customers": size.customers, "products": size.products, "orders": size.orders,
        "suppliers": SUPPLIERS, "warehouses": WAREHOUSES, "months": MONTHS,
    }  # fmt: skip
    counts: dict[str, int] = {}
    for table, sql in TABLES_SQL.items():
        con.execute(f"CREATE TABLE {table} AS {sql.format(**params)}")
    counts["reviews"] = _reviews(con, out_dir / "vendor", size)  # may adjust customers
    _write_sqlite(con, out_dir / "shop.sqlite", list(TABLES_SQL))
    for table in TABLES_SQL:
        counts[table] = _count(con, table)
    counts["catalog"] = _catalog(con, out_dir / "suppliers")
    counts["sensor_readings"] = _sensors(con, out_dir / "iot", scale)
    counts["clickstream"] = _clickstream(con, out_dir / "web", size)
    counts["tickets"] = _tickets(con, out_dir / "support" / "tickets", size)
    counts["invoices"] = _invoices(out_dir / "finance" / "invoices")
    con.close()
    return counts


PRIMARY_KEYS = {
    "customers": "customer_id", "products": "product_id", "orders": "order_id",
    "order_items": "order_item_id", "inventory": "product_id, warehouse_id",
}  # fmt: skip


def load_into_postgres(sqlite_path: Path, dsn: str, schema: str = "public") -> None:
    """Copy the generated shop database into PostgreSQL (docker-compose's source database)
    with the types and primary keys an application would declare there. Tables that
    exist are emptied (TRUNCATE: change data capture sees it) and filled again."""
    con = connect()
    con.execute(f"ATTACH {quote_str(str(sqlite_path))} AS lite (TYPE sqlite, READ_ONLY)")
    con.execute(f"ATTACH {quote_str(dsn)} AS pg (TYPE postgres)")
    money = "DECIMAL(12, 2)"
    casts = {"unit_price": money, "shipping_amount": money, "discount_amount": money,
             "created_at": "TIMESTAMPTZ", "ordered_at": "TIMESTAMPTZ",
             "updated_at": "TIMESTAMPTZ", "needs_cold_storage": "BOOLEAN"}  # fmt: skip
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'pg' "
        f"AND table_schema = {quote_str(schema)}").fetchall()}  # fmt: skip
    for table in TABLES_SQL:
        cols = [r[0] for r in con.execute(f"DESCRIBE lite.{table}").fetchall()]
        select = ", ".join(f"CAST({c} AS {casts[c]}) AS {c}" if c in casts else c for c in cols)
        target = f'"{schema}"."{table}"'
        if table in existing:
            con.execute(f"CALL postgres_execute('pg', {quote_str(f'TRUNCATE {target}')})")
        else:
            con.execute(f"CREATE TABLE pg.{schema}.{table} AS SELECT {select} FROM lite.{table} "
                        "LIMIT 0")  # fmt: skip
            ddl = f"ALTER TABLE {target} ADD PRIMARY KEY ({PRIMARY_KEYS[table]})"
            con.execute(f"CALL postgres_execute('pg', {quote_str(ddl)})")
        con.execute(f"INSERT INTO pg.{schema}.{table} SELECT {select} FROM lite.{table}")
    con.close()


def _count(con: DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _sqlite_type(column: str, duck_type: str) -> str:
    if column.endswith(("price", "amount")):
        return "NUMERIC"  # money, as an application declares it
    return SQLITE_TYPES.get(duck_type, "TEXT")


def _write_sqlite(con: DuckDBPyConnection, path: Path, tables: list[str]) -> None:
    """The shop's operational database, with the column types an application declares."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    for table in tables:
        cols = con.execute(f"DESCRIBE {table}").fetchall()
        decl = ", ".join(f"{name} {_sqlite_type(name, t)}" for name, t, *_ in cols)
        db.execute(f"CREATE TABLE {table} ({decl})")
    db.commit()
    db.close()
    con.execute(f"ATTACH {quote_str(str(path))} AS shopdb (TYPE sqlite)")
    for table in tables:
        con.execute(f"INSERT INTO shopdb.{table} SELECT * FROM {table} ORDER BY 1")
    con.execute("DETACH shopdb")


def _reviews(con: DuckDBPyConnection, out: Path, size: ShopSize) -> int:
    """Reviews, as the vendor API returns them (nested JSON)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = con.execute(f"""
        SELECT i AS review_id, 1 + (r(i, 'rp') * {size.products})::BIGINT % {size.products}
                 AS product_id,
               1 + (r(i, 'rc') * {size.customers})::BIGINT % {size.customers} AS customer_id,
               1 + (r(i, 'rr') * 5)::INT % 5 AS rating,
               'Review ' || i || CASE WHEN r(i, 'dup') < 0.05 THEN ': great product!!!'
                                     ELSE ': item ' || (r(i, 'w') * 1000)::INT END AS body,
               strftime(TIMESTAMP '2026-01-05' + to_seconds((r(i, 'rt') * 85 * 86400)::BIGINT),
                        '%Y-%m-%dT%H:%M:%SZ') AS updated_at,
               '10.0.' || (r(i, 'ip1') * 20)::INT || '.' || (r(i, 'ip2') * 250)::INT AS ip
        FROM range(1, {size.reviews} + 1) t(i) ORDER BY updated_at, review_id""").fetchall()
    reviews = [
        {"review_id": rid, "product_id": pid, "customer_id": cid, "rating": rating,
         "body": body, "updated_at": ts, "author": {"ip": ip, "verified": rid % 3 != 0}}
        for rid, pid, cid, rating, body, ts, ip in rows
    ]  # fmt: skip
    # a fraud ring, for fct_reviews to find: three accounts created the day before, six
    # 5-star reviews each within an hour, one IP, the same text, products never bought
    ring = con.execute(
        "SELECT customer_id FROM customers ORDER BY hash(customer_id, 'ring') LIMIT 3"
    ).fetchall()
    for n, (customer_id,) in enumerate(ring):
        con.execute("UPDATE customers SET created_at = TIMESTAMP '2026-03-13 09:00:00', "
                    "updated_at = TIMESTAMP '2026-03-13 09:00:00' "
                    "WHERE customer_id = ?", [customer_id])  # fmt: skip
        for k in range(6):
            reviews.append({
                "review_id": size.reviews + n * 6 + k + 1, "product_id": 1 + (n * 6 + k) * 7
                % size.products, "customer_id": customer_id, "rating": 5,
                "body": "Best product ever, buy it now!!!",
                "updated_at": f"2026-03-14T10:{n * 6 + k:02d}:00Z",
                "author": {"ip": "203.0.113.7", "verified": False},
            })  # fmt: skip
    reviews.sort(key=lambda r: (r["updated_at"], r["review_id"]))
    (out / "reviews.json").write_text(json.dumps(reviews))
    return len(reviews)


def _catalog(con: DuckDBPyConnection, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    con.execute(f"""COPY (
        SELECT supplier_id, 'Supplier ' || supplier_id AS supplier_name, sku,
               round(unit_price::DECIMAL(12, 2) * 0.6, 2) AS supplier_price,
               (2 + r(product_id, 'lt') * 20)::INT AS lead_time_days
        FROM products ORDER BY supplier_id, sku
    ) TO {quote_str(str(out / "catalog.csv"))} (HEADER, DELIMITER ';')""")
    return _count(con, "products")


def _sensors(con: DuckDBPyConnection, out: Path, scale: float) -> int:
    out.mkdir(parents=True, exist_ok=True)
    per_hour = max(1, int(4 * min(scale, 25)))  # readings per sensor and hour
    total = 0
    for month in range(1, MONTHS + 1):
        sql = f"""SELECT w AS warehouse_id, 'cold-' || w || '-' || s AS sensor_id,
                   TIMESTAMP '2026-{month:02d}-01' + to_seconds((h * 3600 / {per_hour})::BIGINT)
                     AS reading_ts,
                   round(3 + r(w * 100000 + s * 10000 + h, 't') * 2
                         + CASE WHEN r(w * 7 + h, 'exc') < 0.01 THEN 6 ELSE 0 END, 2)
                     AS temperature_c
            FROM range(1, {WAREHOUSES} + 1) a(w), range(1, 3) b(s),
                 range(0, 28 * 24 * {per_hour}) c(h)"""
        path = out / f"sensor_readings_2026_{month:02d}.csv"
        con.execute(f"COPY ({sql}) TO {quote_str(str(path))} (HEADER)")
        total += WAREHOUSES * 2 * 28 * 24 * per_hour
    return total


def _clickstream(con: DuckDBPyConnection, out: Path, size: ShopSize) -> int:
    out.mkdir(parents=True, exist_ok=True)
    con.execute(f"""CREATE TABLE clicks AS
        SELECT s AS session_no, step,
               'sess-' || s AS session_id,
               CASE WHEN r(s, 'anon') < 0.3 THEN NULL
                    ELSE 1 + (r(s, 'sc') * {size.customers})::BIGINT % {size.customers} END
                 AS customer_id,
               {_list(("view", "cart", "checkout", "purchase"))}[step + 1] AS event,
               1 + (r(s, 'sp') * {size.products})::BIGINT % {size.products} AS product_id,
               TIMESTAMP '2026-01-01' + to_seconds((r(s, 'st') * {MONTHS} * 30 * 86400
                                                    + step * 60)::BIGINT) AS ts,
               {_list(("mobile", "desktop", "tablet"))}[1 + (r(s, 'dev') * 3)::INT % 3] AS device
        FROM range(1, {size.sessions} + 1) a(s), range(0, 4) b(step)
        WHERE step <= (r(s, 'depth') * r(s, 'depth2') * 4)::INT""")
    for month in range(1, MONTHS + 1):
        path = out / f"clickstream_2026_{month:02d}.jsonl"
        con.execute(f"""COPY (
            SELECT session_id, customer_id, event, ts,
                   {{'product_id': product_id, 'device': device,
                     'page': '/p/' || product_id}} AS context
            FROM clicks WHERE month(ts) = {month} ORDER BY ts, session_id
        ) TO {quote_str(str(path))} (FORMAT json)""")
    return _count(con, "clicks")


def _tickets(con: DuckDBPyConnection, out: Path, size: ShopSize) -> int:
    out.mkdir(parents=True, exist_ok=True)
    topics = ("arrived broken", "never arrived", "wrong size", "refund request", "late delivery")
    for i in range(1, size.tickets + 1):
        row = con.execute(f"SELECT (r({i}, 'to') * {len(topics)})::INT % {len(topics)}, "
                          f"1 + (r({i}, 'o') * 1000)::INT").fetchone()  # fmt: skip
        assert row is not None
        (out / f"ticket-{i:05d}.txt").write_text(
            f"Ticket {i}\nOrder: {row[1]}\nSubject: {topics[row[0]]}\n\n"
            f"Hello, my order {row[1]} {topics[row[0]]}. Please help.\n"
        )
    return size.tickets


def _invoices(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for supplier in range(1, 6):
        for month in range(1, MONTHS + 1):
            n += 1
            write_text_pdf(out / f"invoice-{supplier:02d}-2026-{month:02d}.pdf", [
                f"INVOICE S{supplier:02d}-2026-{month:02d}", f"Supplier: Supplier {supplier}",
                f"Period: 2026-{month:02d}", f"Total: {1000 + supplier * 37 + month * 11}.00 EUR",
            ])  # fmt: skip
    (out / "invoice-corrupt-scan.pdf").write_bytes(b"%PDF-1.4\n% a scan that never finished")
    return n + 1
