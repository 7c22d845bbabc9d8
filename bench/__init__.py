"""Benchmarks: `make bench` runs them all, `make bench ONLY=<name>` one.

Each prints its figures and writes `bench/results/<name>.json` with `name`, `value`,
`unit`, `reference` (the bare engine doing the same job, measured in the same run),
`ratio` (value / reference) and `peak_rss_mb`.
"""
