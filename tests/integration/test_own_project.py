"""Your own project, as a new user starts one: a folder of CSV files becomes published
marts and a report through `lakehouse init`, `dbt-sources` and one SQL file, without
editing Python or copying anything from the example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.config import load_project
from pipeline.serve import query


def lakehouse(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, run in the project's folder as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "lakehouse"), *args], cwd=folder, env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_a_folder_of_csvs_becomes_marts_and_a_report(tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "orders_2026_01.csv").write_text(
        "order_id,customer,amount,ordered_at\n1,ann,10.50,2026-01-03\n2,bob,4.25,2026-01-04\n"
    )
    (folder / "data" / "orders_2026_02.csv").write_text(  # order 2 again, corrected
        "order_id,customer,amount,ordered_at\n2,bob,5.25,2026-01-04\n3,ann,7.00,2026-02-01\n"
    )
    (folder / "data" / "customers.csv").write_text("customer,country\nann,FR\nbob,NL\n")

    init = lakehouse(folder, "init", ".")
    assert init.returncode == 0, init.stderr
    for made in ("lakehouse.yml", ".env.example", "README.md", ".gitignore",
                 "dbt/dbt_project.yml", "dbt/profiles.yml", "dbt/packages.yml",
                 "expectations/suites/raw"):  # fmt: skip
        assert (folder / made).exists(), made
    spec = yaml.safe_load((folder / "lakehouse.yml").read_text())
    tables = {t["name"]: t["path"] for t in spec["sources"][0]["tables"]}
    assert tables == {"customers": "data/customers.csv", "orders": "data/orders*.csv"}
    assert "kind: mqtt" in (folder / "lakehouse.yml").read_text()  # commented examples
    again = lakehouse(folder, "init", ".")
    assert again.returncode == 1 and "exists" in again.stderr

    # the one edit a user makes to the YAML: orders have a key
    text = (folder / "lakehouse.yml").read_text()
    (folder / "lakehouse.yml").write_text(text.replace(
        "{name: orders, path: data/orders*.csv}",
        "{name: orders, path: data/orders*.csv, primary_key: order_id}"))  # fmt: skip
    ingest = lakehouse(folder, "ingest")
    assert ingest.returncode == 0, ingest.stderr
    gen = lakehouse(folder, "dbt-sources")
    assert gen.returncode == 0, gen.stderr
    staging = folder / "dbt" / "models" / "staging" / "files"
    assert (staging / "_files__sources.yml").exists()
    assert "primary_key=['order_id']" in (staging / "stg_files__orders.sql").read_text()
    assert "nothing to write" in lakehouse(folder, "dbt-sources").stdout  # edits are kept

    (folder / "dbt" / "models" / "marts" / "revenue_by_country.sql").write_text(
        "select c.country, count(*) as orders, sum(o.amount::decimal(12, 2)) as revenue\n"
        "from {{ ref('stg_files__orders') }} o\n"
        "join {{ ref('stg_files__customers') }} c using (customer)\n"
        "group by 1\n"
    )
    run = lakehouse(folder, "run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fct_orders" not in run.stdout  # the summary suggests this project's marts
    assert "revenue_by_country" in run.stdout
    project = load_project(folder / "lakehouse.yml", env={})
    _, rows = query(project, "SELECT country, orders, revenue FROM revenue_by_country "
                             "ORDER BY 1")  # fmt: skip
    # order 2 once, at its corrected amount: the latest version per primary key
    assert [(c, n, float(r)) for c, n, r in rows] == [("FR", 2, 17.5), ("NL", 1, 5.25)]
    report = lakehouse(folder, "report")
    assert report.returncode == 0, report.stderr
    assert (folder / "data" / "warehouse" / "report.html").exists()
