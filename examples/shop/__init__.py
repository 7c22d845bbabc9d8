"""The example online shop's own code: its data generator (`shop_data`), a next day of
business (`shop_day`), the review API it serves (`shop_api`), the PDF invoices it writes
(`pdf`) and the live demo (`live_demo`). Its sources, dbt models and suites are the
project at the repository's root (`lakehouse.yml`, `dbt_project/`, `expectations/suites/`)."""
