"""When a mart changed in place in the serving database is vacuumed and analyzed: as
autovacuum would (it is off for served tables), so a small change costs no full index scan."""

from pipeline.serve_postgres_delta import maintenance


def test_a_small_change_to_a_big_table_is_left_for_later() -> None:
    assert maintenance(changed=72_028, rows=24_000_000, dead=0, inserted=0, modified=0) is None


def test_dead_rows_past_a_fifth_of_the_table_are_vacuumed_and_it_is_analyzed() -> None:
    # earlier publishes left 4.9M dead rows; this one pushes them past 20% (and 10% changed)
    assert maintenance(100_000, 24_000_000, 4_900_000, 0, 2_400_000) == "VACUUM (ANALYZE)"


def test_rows_changed_past_a_tenth_are_analyzed_without_a_vacuum() -> None:
    assert maintenance(changed=70, rows=100, dead=0, inserted=0, modified=0) == "ANALYZE"


def test_inserts_alone_bring_a_vacuum_for_the_visibility_map() -> None:
    assert maintenance(changed=500, rows=1_000, dead=0, inserted=800, modified=0) == (
        "VACUUM (ANALYZE)"
    )
    assert maintenance(changed=500, rows=100_000, dead=0, inserted=20_600, modified=9_000) == (
        "VACUUM"
    )


def test_small_tables_wait_for_the_base_threshold() -> None:
    # mart_daily_kpis: one day changes a row or two of 91
    assert maintenance(changed=2, rows=91, dead=40, inserted=40, modified=40) is None
    assert maintenance(changed=2, rows=91, dead=70, inserted=70, modified=0) == "VACUUM"
