"""The example online shop: a deterministic, seeded generator at any scale.

Generated inside DuckDB from integer ranges and a seeded hash, so the same
`(scale, seed)` gives byte-identical files and millions of rows take seconds. Demos,
tests and benchmarks all use it. Scale 1 = 2,000 customers, 300 products, 20,000
orders, ~50,000 order lines; everything grows linearly but products.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lake.duck import connect, quote_str

STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
CATEGORIES = ("books", "garden", "kitchen", "toys", "electronics", "sports", "beauty", "grocery")
COUNTRIES = ("US", "DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "CA")
FIRST = ("Ada", "Ben", "Chloe", "Dan", "Eva", "Finn", "Gia", "Hugo", "Iris", "Jon", "Kai", "Lea")
LAST = ("Smith", "Müller", "Martin", "Rossi", "Novak", "Berg", "Lopez", "Kowalski", "Dubois")


@dataclass(frozen=True)
class ShopSize:
    customers: int
    products: int
    orders: int
    months: int

    @classmethod
    def at(cls, scale: float) -> ShopSize:
        if scale <= 0:
            raise ValueError("scale must be positive")
        return cls(
            customers=max(10, int(2_000 * scale)),
            products=max(10, min(5_000, int(300 * max(scale, 1) ** 0.5))),
            orders=max(20, int(20_000 * scale)),
            months=3,
        )


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(quote_str(v) for v in values) + "]"


def generate(out_dir: Path, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
    """Write the shop's CSV files under `out_dir/shop/`; returns rows per table."""
    size = ShopSize.at(scale)
    shop = out_dir / "shop"
    (shop / "orders").mkdir(parents=True, exist_ok=True)
    con = connect()
    # r(i, salt): a uniform number in [0, 1), the same for the same seed on every run.
    con.execute(f"CREATE MACRO r(i, salt) AS (hash(i, salt, {int(seed)}) % 1000003) / 1000003.0")
    con.execute(
        f"""
        CREATE TABLE customers AS
        SELECT i AS customer_id,
               lower({_list(FIRST)}[1 + (r(i, 'f') * {len(FIRST)})::INT % {len(FIRST)}])
                 || '.' || i || '@Example.COM' AS email,
               {_list(FIRST)}[1 + (r(i, 'f') * {len(FIRST)})::INT % {len(FIRST)}] AS first_name,
               {_list(LAST)}[1 + (r(i, 'l') * {len(LAST)})::INT % {len(LAST)}] AS last_name,
               {_list(COUNTRIES)}[1 + (r(i, 'c') * {len(COUNTRIES)})::INT % {len(COUNTRIES)}]
                 AS country,
               strftime(TIMESTAMP '2025-01-01' + to_seconds((r(i, 'ct') * 365 * 86400)::BIGINT),
                        '%Y-%m-%dT%H:%M:%S+00:00') AS created_at
        FROM range(1, {size.customers} + 1) t(i)
        """
    )
    con.execute(
        f"""
        CREATE TABLE products AS
        SELECT i AS product_id,
               'SKU-' || lpad(i::VARCHAR, 6, '0') AS sku,
               {_list(CATEGORIES)}[1 + (r(i, 'cat') * {len(CATEGORIES)})::INT % {len(CATEGORIES)}]
                 || ' item ' || i AS product_name,
               {_list(CATEGORIES)}[1 + (r(i, 'cat') * {len(CATEGORIES)})::INT % {len(CATEGORIES)}]
                 AS category,
               round(2 + r(i, 'p') * 198, 2)::DECIMAL(12, 2) AS unit_price,
               1 + (r(i, 's') * 20)::INT AS supplier_id
        FROM range(1, {size.products} + 1) t(i)
        """
    )
    con.execute(
        f"""
        CREATE TABLE orders AS
        SELECT i AS order_id,
               1 + (r(i, 'cu') * {size.customers})::BIGINT % {size.customers} AS customer_id,
               {_list(STATUSES)}[1 + (least(r(i, 'st') * 10, 9))::INT // 2] AS status,
               TIMESTAMP '2026-01-01'
                 + to_seconds((r(i, 'ts') * {size.months} * 30 * 86400)::BIGINT) AS ts,
               'EUR' AS currency,
               CASE WHEN r(i, 'sh') < 0.3 THEN 0 ELSE 4.99 END::DECIMAL(12, 2) AS shipping_amount
        FROM range(1, {size.orders} + 1) t(i)
        """
    )
    con.execute(
        f"""
        CREATE TABLE order_items AS
        SELECT row_number() OVER (ORDER BY o.order_id, n) AS order_item_id,
               o.order_id,
               1 + (r(o.order_id * 7 + n, 'pr') * {size.products})::BIGINT % {size.products}
                 AS product_id,
               1 + (r(o.order_id * 7 + n, 'q') * 3)::INT AS quantity,
               p.unit_price,
               CASE WHEN r(o.order_id * 7 + n, 'd') < 0.2
                    THEN round(p.unit_price * 0.1, 2) ELSE 0 END::DECIMAL(12, 2)
                 AS discount_amount
        FROM orders o,
             range(0, 1 + (r(o.order_id, 'n') * 4)::INT) AS lines(n),
             products p
        WHERE p.product_id
              = 1 + (r(o.order_id * 7 + n, 'pr') * {size.products})::BIGINT % {size.products}
        """
    )
    counts: dict[str, int] = {}
    for table in ("customers", "products", "order_items"):
        con.execute(
            f"COPY (SELECT * FROM {table} ORDER BY 1) TO "
            f"{quote_str(str(shop / (table + '.csv')))} (HEADER, DELIMITER ',')"
        )
    for month in range(size.months):
        # one file per month: each is one batch, as an export job would drop them
        con.execute(
            f"""COPY (SELECT order_id, customer_id, status,
                             strftime(ts, '%Y-%m-%dT%H:%M:%S+00:00') AS order_ts,
                             currency, shipping_amount
                      FROM orders
                      WHERE date_diff('month', TIMESTAMP '2026-01-01', ts) = {month}
                         OR (date_diff('month', TIMESTAMP '2026-01-01', ts) > {month}
                             AND {month} = {size.months - 1})
                      ORDER BY order_id)
                TO {quote_str(str(shop / "orders" / f"orders_2026_{month + 1:02d}.csv"))}
                (HEADER, DELIMITER ',')"""
        )
    for table in ("customers", "products", "orders", "order_items"):
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    con.close()
    return counts
