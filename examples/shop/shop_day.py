"""A day of business on the example shop `shop_data.generate` wrote: new orders and
lines, shipments, cancellations, moved and deleted customers in its database, new and
bursty reviews at its vendor, new and late clickstream events. The tests and benchmarks
play days with it to check that incremental builds equal full ones."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from lake.duck import connect, quote_str


def next_day(
    db_path: Path,
    fraction: float = 0.01,
    seed: int = 7,
    deletes: int = 0,
    cancels: int = 0,
    reviews: int = 0,
    clicks: int = 0,
) -> dict[str, int]:
    """A day of business on an existing shop database (SQLite): `fraction` more orders
    (with their lines), as many placed orders shipped, as many customers who moved
    country, `cancels` placed orders cancelled, `deletes` customers deleted (accounts
    with no order and no review), and `reviews` new reviews at the vendor (`vendor/
    reviews.json` beside it), by people who reviewed before, some in bursts, some with a
    text already written, and `clicks` clickstream events in a new file (`web/`): new
    sessions, later steps of old ones, and late events that move an old session to an
    earlier day.
    Every change is stamped later than anything already there, as the shop's application
    would, so incremental extracts and full dumps both pick it up."""
    con = connect()
    con.execute(f"CREATE MACRO r(i, salt) AS (hash(i, salt, {int(seed)}) % 1000003) / 1000003.0")
    con.execute(f"ATTACH {quote_str(str(db_path))} AS shop (TYPE sqlite)")
    row = con.execute("""
        SELECT (SELECT max(order_id) FROM shop.orders), (SELECT count(*) FROM shop.orders),
               (SELECT max(order_item_id) FROM shop.order_items),
               (SELECT max(updated_at)::TIMESTAMP FROM shop.orders),
               (SELECT max(updated_at)::TIMESTAMP FROM shop.customers),
               (SELECT count(*) FROM shop.customers)""").fetchone()
    assert row is not None
    last_order, orders, last_item, orders_at, customers_at, customers = row
    n = max(1, int(orders * fraction))
    con.execute(f"""CREATE TEMP TABLE new_orders AS
        SELECT {last_order} + i AS order_id,
               1 + (r(i, 'cu') * {customers})::BIGINT % {customers} AS customer_id,
               'placed' AS status, ts AS ordered_at, 'EUR' AS currency,
               '4.99' AS shipping_amount, NULL::TIMESTAMP AS shipped_at,
               NULL::TIMESTAMP AS delivered_at, ts AS updated_at
        FROM (SELECT i, TIMESTAMP '{orders_at}' + to_seconds(i) AS ts
              FROM range(1, {n} + 1) t(i))""")
    con.execute(f"""INSERT INTO shop.order_items
        SELECT {last_item} + row_number() OVER (ORDER BY o.order_id, n), o.order_id,
               p.product_id, 1 + (r(o.order_id * 7 + n, 'q') * 3)::INT, p.unit_price, '0'
        FROM new_orders o, range(0, 1 + (r(o.order_id, 'n') * 4)::INT) AS lines(n),
             (SELECT product_id, unit_price, row_number() OVER (ORDER BY product_id) AS k,
                     count(*) OVER () AS products FROM shop.products) p
        WHERE p.k = 1 + (r(o.order_id * 7 + n, 'pr') * p.products)::BIGINT % p.products""")
    con.execute("INSERT INTO shop.orders SELECT * FROM new_orders")
    items = con.execute(
        f"SELECT count(*) FROM shop.order_items WHERE order_item_id > {last_item}"
    ).fetchone()
    con.close()
    moved = max(1, int(customers * fraction))
    db = sqlite3.connect(db_path)  # (DuckDB's SQLite scanner cannot UPDATE timestamp rows)
    with db:
        shipped_at = str(orders_at + timedelta(days=1))
        db.execute(
            "UPDATE orders SET status = 'shipped', shipped_at = ?, updated_at = ? WHERE order_id"
            " IN (SELECT order_id FROM orders WHERE status = 'placed' AND order_id <= ?"
            "     ORDER BY (order_id * 7919 + ?) % 10007 LIMIT ?)",
            (shipped_at, shipped_at, last_order, seed, n),
        )
        db.execute(
            "UPDATE customers SET country = CASE WHEN country = 'DE' THEN 'FR' ELSE 'DE' END,"
            " updated_at = ? WHERE customer_id IN"
            " (SELECT customer_id FROM customers"
            "  ORDER BY (customer_id * 7919 + ?) % 10007 LIMIT ?)",
            (str(customers_at + timedelta(days=1)), seed, moved),
        )
        db.execute(
            "UPDATE orders SET status = 'cancelled', updated_at = ? WHERE order_id IN"
            " (SELECT order_id FROM orders WHERE status = 'placed' AND order_id <= ?"
            "  ORDER BY (order_id * 7907 + ?) % 10009 LIMIT ?)",
            (shipped_at, last_order, seed, cancels),
        )
        if deletes:
            written = json.loads((db_path.parent / "vendor" / "reviews.json").read_text())
            db.execute("CREATE TEMP TABLE reviewers (customer_id INTEGER PRIMARY KEY)")
            db.executemany("INSERT OR IGNORE INTO reviewers VALUES (?)",
                           [(r["customer_id"],) for r in written])  # fmt: skip
            db.execute(
                "DELETE FROM customers WHERE customer_id IN (SELECT customer_id FROM customers"
                " WHERE customer_id NOT IN (SELECT customer_id FROM orders)"
                " AND customer_id NOT IN (SELECT customer_id FROM reviewers)"
                " ORDER BY (customer_id * 7919 + ?) % 10007 LIMIT ?)",
                (seed, deletes),
            )
    db.close()
    if reviews:
        _new_reviews(db_path.parent / "vendor" / "reviews.json", reviews, seed)
    if clicks:
        _new_clicks(db_path.parent / "web", clicks, seed)
    return {"orders": n, "order_items": int(items[0]) if items else 0, "shipped": n,
            "moved": moved, "cancelled": cancels, "deleted": deletes,
            "reviews": reviews, "clicks": clicks}  # fmt: skip


def _new_clicks(folder: Path, count: int, seed: int) -> None:
    """Write `count` events as `clickstream_day<seed>.jsonl`: a third new sessions a day
    after the newest event, a third later steps of old sessions, a third a `view` a day
    before an old session's first event (it now starts that day)."""
    old = [json.loads(line) for f in sorted(folder.glob("clickstream_*.jsonl"))
           for line in f.read_text().splitlines() if line]  # fmt: skip
    newest = max(datetime.fromisoformat(e["ts"]) for e in old)
    steps = ("view", "cart", "checkout", "purchase")
    events = []
    for i in range(count):
        model = old[(i * 7919 + seed) % len(old)]
        at = datetime.fromisoformat(model["ts"])
        if i % 3 == 0:
            session, event, at = f"sess-d{seed}-{i}", steps[i % 4], newest + timedelta(days=1)
        elif i % 3 == 1:
            session, event, at = model["session_id"], steps[(i + 1) % 4], at + timedelta(hours=1)
        else:
            session, event, at = model["session_id"], "view", at - timedelta(days=1)
        events.append({**model, "session_id": session, "event": event,
                       "ts": at.strftime("%Y-%m-%d %H:%M:%S")})  # fmt: skip
    out = folder / f"clickstream_day{seed}.jsonl"
    out.write_text("".join(json.dumps(e) + "\n" for e in events))


def _new_reviews(path: Path, count: int, seed: int) -> None:
    """Append `count` reviews to the vendor's file, stamped after the newest: each by an
    earlier reviewer, every third one an hour's burst of the one before, every fifth with
    a text already written."""
    rows = json.loads(path.read_text())
    last_id = max(r["review_id"] for r in rows)
    last_at = max(datetime.fromisoformat(r["updated_at"].replace("Z", "+00:00")) for r in rows)
    for i in range(1, count + 1):
        model = rows[(i * 7919 + seed) % len(rows)]
        previous = rows[-1]
        burst = i % 3 == 0
        rows.append({
            "review_id": last_id + i,
            "product_id": model["product_id"],
            "customer_id": previous["customer_id"] if burst else model["customer_id"],
            "rating": 1 + (i + seed) % 5,
            "body": model["body"] if i % 5 == 0 else f"Review {last_id + i}: day {seed}",
            "updated_at": (last_at + timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "author": previous["author"] if burst else model["author"],
        })  # fmt: skip
    path.write_text(json.dumps(rows))
