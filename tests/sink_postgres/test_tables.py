"""Table definitions: natural keys, guards and the generated upsert SQL (no database)."""

from __future__ import annotations

from coinstream.sink_postgres.tables import BY_NAME, CANDLES, INSTRUMENTS, PRICES, TABLES

CURRENT_STATE = {"assets", "exchanges", "dex_pairs", "instruments"}


def test_every_time_series_table_key_includes_its_time_column() -> None:
    for table in TABLES:
        if table.name in CURRENT_STATE:
            continue
        time_cols = {"event_time", "open_time"}
        assert time_cols & set(table.key), table.name


def test_current_state_tables_are_guarded_or_merged() -> None:
    """A stored row is replaced only by a later one (guard), or by the field-by-field merge of
    the stored row and the new events (entities: the merge decides, the upsert writes)."""
    for name in CURRENT_STATE:
        table = BY_NAME[name]
        guard = table.guard or ""
        assert table.merged or "event_time" in guard or "last_seen" in guard, name
    assert {t for t in CURRENT_STATE if BY_NAME[t].merged} == {"assets", "exchanges", "dex_pairs"}


def test_price_upsert_only_replaces_a_lower_revision() -> None:
    sql = PRICES.upsert_sql()
    assert sql.startswith("INSERT INTO prices (event_time, event_id, source")
    assert "SELECT event_time, event_id" in sql and "FROM stage_prices" in sql
    assert "ON CONFLICT (event_time, event_id) DO UPDATE SET" in sql
    assert sql.endswith("WHERE EXCLUDED.revision > prices.revision")
    assert "event_time = EXCLUDED.event_time" not in sql  # key columns never updated


def test_candle_guard_is_revision_then_final() -> None:
    assert CANDLES.upsert_sql().endswith(
        "WHERE (EXCLUDED.revision, EXCLUDED.final) > (candles.revision, candles.final)"
    )


def test_instrument_upsert_keeps_first_and_last_seen() -> None:
    sql = INSTRUMENTS.upsert_sql()
    assert "first_seen = LEAST(instruments.first_seen, EXCLUDED.first_seen)" in sql
    assert "last_seen = GREATEST(instruments.last_seen, EXCLUDED.last_seen)" in sql


def test_staging_table_is_a_temp_copy_emptied_at_commit() -> None:
    assert PRICES.create_staging_sql() == (
        "CREATE TEMP TABLE IF NOT EXISTS stage_prices (LIKE prices INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )


def test_key_and_rank_extraction() -> None:
    row = tuple(range(len(CANDLES.columns)))
    assert CANDLES.key_of(row) == (0, 1, 2, 3)
    assert CANDLES.rank_of(row) == (CANDLES.index("revision"), CANDLES.index("final"))
