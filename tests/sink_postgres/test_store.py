"""The PostgreSQL adapter against the real server: idempotence, revisions, history, poison."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest

from coinstream.devstack.ports import free_port
from coinstream.schemas import AssetMetadataEvent, Event, PriceEvent, decode_event
from coinstream.sink_postgres.batch import Batch
from coinstream.sink_postgres.errors import DatabaseUnavailable
from coinstream.sink_postgres.store import Store, WriteResult

from . import events

pytestmark = pytest.mark.postgres


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


def batch(*evts: Event | bytes, start: int = 0) -> Batch:
    b = Batch()
    for i, e in enumerate(evts):
        value = e if isinstance(e, bytes) else e.to_json()
        b.add(Rec("t.prices.v1", 0, start + i, value))
    return b


async def write(url: str, *evts: Event | bytes) -> WriteResult:
    async with Store(url) as store:
        return await store.write(batch(*evts).reduced())


async def query(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_replayed_batch_changes_nothing(migrated_url: str) -> None:
    trades = [events.trade(i) for i in range(100)]
    first = await write(migrated_url, *trades)
    again = await write(migrated_url, *trades, *trades[:10])  # replay plus in-batch duplicates
    assert first.changed["prices"] == 100
    assert again.staged["prices"] == 100 and again.changed["prices"] == 0
    [row] = await query(
        migrated_url, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM prices"
    )
    assert (row["n"], row["d"]) == (100, 100)


async def test_micro_prices_and_timestamps_survive_exactly(migrated_url: str) -> None:
    tiny = "0.000000000000123456789012345678901234567890"
    await write(migrated_url, events.trade(1, symbol="PEPE-USDT", price=tiny))
    [row] = await query(migrated_url, "SELECT price, event_time FROM prices")
    assert row["price"] == Decimal(tiny)
    assert row["event_time"] == events.trade(1).event_time


async def test_text_copy_stores_exactly_what_the_models_read(migrated_url: str) -> None:
    """Fast-path lines and model-path lines share one text COPY; escapes, NULLs, micro
    decimals and offsets arrive exactly as the models read them."""
    fast = events.trade(1).model_copy(update={"trade_id": "t-1", "native_symbol": "\\N c\\d"})
    slow = json.loads(events.trade(2).to_json())
    slow.update(price="+0.000000000000123456789", event_time="2026-03-01T13:00:00.5+01:00")
    wire = json.dumps(slow).encode()
    b = batch(fast, wire)
    assert len(b.tables["prices"].lines or []) == 2
    await write(migrated_url, fast, wire)
    rows = await query(
        migrated_url,
        "SELECT event_id, event_time, price, size, bid, trade_id, native_symbol FROM prices",
    )
    stored = {r["event_id"]: r for r in rows}
    for event in (fast, decode_event(wire)):
        assert isinstance(event, PriceEvent)
        r = stored[event.event_id]
        assert r["event_time"] == event.event_time
        assert (r["price"], r["size"], r["bid"]) == (event.price, event.size, None)
        assert (r["trade_id"], r["native_symbol"]) == (event.trade_id, event.native_symbol)


async def test_candle_revisions_only_move_forward(migrated_url: str) -> None:
    await write(migrated_url, events.candle(0, revision=2, close="102"))
    await write(migrated_url, events.candle(0, revision=1, close="101"))  # late, older
    [row] = await query(migrated_url, "SELECT revision, close, final FROM candles")
    assert (row["revision"], row["close"]) == (2, Decimal("102"))
    await write(migrated_url, events.candle(0, revision=2, close="102", final=True))
    await write(migrated_url, events.candle(0, revision=3, close="103"))
    [row] = await query(migrated_url, "SELECT revision, close, trade_count FROM candles")
    assert (row["revision"], row["close"], row["trade_count"]) == (3, Decimal("103"), 10)


async def test_metadata_change_updates_the_asset_and_keeps_history(migrated_url: str) -> None:
    v1 = events.asset(0, name="Bitcoin", description="Peer-to-peer cash")
    v2 = events.asset(60, name="Bitcoin", description="Digital gold")
    await write(migrated_url, v1)
    await write(migrated_url, v2)
    await write(migrated_url, v1)  # an old version replayed: ignored
    await write(migrated_url, v2)  # the same version again: no new history
    [asset] = await query(migrated_url, "SELECT name, description, event_time FROM assets")
    assert (asset["description"], asset["event_time"]) == ("Digital gold", v2.event_time)
    history = await query(
        migrated_url, "SELECT description, valid_from, valid_to, entity FROM metadata_history"
    )
    assert [(h["description"], h["valid_from"], h["valid_to"], h["entity"]) for h in history] == [
        ("Peer-to-peer cash", v1.event_time, v2.event_time, "asset")
    ]
    versions = await query(
        migrated_url, "SELECT description, current FROM asset_versions ORDER BY valid_from"
    )
    assert [(v["description"], v["current"]) for v in versions] == [
        ("Peer-to-peer cash", False),
        ("Digital gold", True),
    ]


async def test_two_versions_in_one_batch_both_reach_history_in_order(migrated_url: str) -> None:
    v1 = events.asset(0, name="Bitcoin", description="one")
    v2 = events.asset(1, name="Bitcoin (BTC)", description="two")
    await write(migrated_url, v2, v1)  # out of order within the batch
    [asset] = await query(migrated_url, "SELECT name, description FROM assets")
    assert (asset["name"], asset["description"]) == ("Bitcoin (BTC)", "two")
    history = await query(migrated_url, "SELECT name, description FROM metadata_history")
    assert [(h["name"], h["description"]) for h in history] == [("Bitcoin", "one")]


def _meta(source: str, minute: int, **fields: object) -> AssetMetadataEvent:
    t = events.T0 + timedelta(minutes=minute)
    return AssetMetadataEvent(
        event_id=f"{source}-{minute}",
        event_time=t,
        received_at=t,
        source=source,
        entity="asset",
        entity_id="asset:bitcoin",
        **fields,  # type: ignore[arg-type]
    )


async def test_the_current_row_is_the_best_known_value_of_every_field(migrated_url: str) -> None:
    """Rich /coins/{id}, thin /coins/markets and CMC /info in every order: the row keeps the
    description, slug and links; CMC fills only what CoinGecko never said; no flip-flops."""
    rich = events.asset(0, name="Bitcoin", description="Peer-to-peer cash")
    sequence = [
        _meta("coinmarketcap", 1, name="Bitcoin (BTC)", slug="btc", description="From CMC",
              links={"explorer": ("https://mempool.space",)}, max_supply=Decimal(21_000_000)),
        rich,
        _meta("coingecko", 2, name="Bitcoin", symbol="BTC", circulating_supply=Decimal(19_800_001)),
        _meta("coinmarketcap", 3, name="Bitcoin (BTC)", circulating_supply=Decimal(19_800_002)),
        _meta("coingecko", 4, name="Bitcoin", symbol="BTC", circulating_supply=Decimal(19_800_003)),
    ]  # fmt: skip
    for event in sequence:
        await write(migrated_url, event)
    [row] = await query(
        migrated_url,
        "SELECT name, slug, description, links, max_supply, circulating_supply, changed_by,"
        " field_sources FROM assets",
    )
    assert (row["name"], row["slug"], row["description"]) == (
        "Bitcoin",
        "bitcoin",
        "Peer-to-peer cash",
    )
    assert set(json.loads(row["links"])) == {"homepage", "explorer"}
    assert row["max_supply"] == Decimal(21_000_000)  # only CMC knew it
    assert row["circulating_supply"] == Decimal(19_800_003)
    assert json.loads(row["field_sources"])["description"][0] == "coingecko"
    history = await query(
        migrated_url, "SELECT name, changed_by, changed_fields FROM metadata_history"
    )
    # CMC described it first; CoinGecko's richer record is the one real change after that
    assert [(h["name"], h["changed_by"]) for h in history] == [("Bitcoin (BTC)", "coinmarketcap")]
    await write(migrated_url, *sequence)  # everything replayed in one batch: nothing changes
    assert len(await query(migrated_url, "SELECT 1 FROM metadata_history")) == 1


async def test_a_real_rename_is_one_version_with_its_source(migrated_url: str) -> None:
    await write(migrated_url, events.asset(0, name="Bitcoin"))
    await write(migrated_url, events.asset(5, name="Bitcoin Core"))
    await write(migrated_url, _meta("coinmarketcap", 6, name="Bitcoin"))  # lower rank: ignored
    versions = await query(
        migrated_url,
        "SELECT name, changed_by, changed_fields, current FROM asset_versions ORDER BY valid_from",
    )
    assert [(v["name"], v["changed_by"], v["current"]) for v in versions] == [
        ("Bitcoin", "coingecko", False),
        ("Bitcoin Core", "coingecko", True),
    ]
    assert versions[1]["changed_fields"] == ["name"]


async def test_instruments_never_share_a_row(migrated_url: str) -> None:
    """Two coins with one ticker, and a spot and a perpetual market, are four instruments;
    an instrument entity lands on its prices' row."""
    await write(
        migrated_url,
        events.trade(1, source="coingecko", symbol="UNI-USD", asset_id="uniswap"),
        events.trade(2, source="coingecko", symbol="UNI-USD", asset_id="coingecko:universe-2"),
        events.trade(3, symbol="BTC-USDT", asset_id="bitcoin"),
        events.trade(4, symbol="BTC-USDT", asset_id="bitcoin", market="perpetual"),
        events.instrument(),
        events.trade(5, source="kraken", symbol="BTC-USD", asset_id="bitcoin"),
    )
    rows = await query(
        migrated_url,
        "SELECT venue, instrument_key, symbol, market, base_asset_id, entity_id FROM instruments"
        " ORDER BY venue, instrument_key",
    )
    assert [(r["venue"], r["instrument_key"], r["market"]) for r in rows] == [
        ("binance", "BTC-USDT", None),
        ("binance", "BTC-USDT|perpetual", "perpetual"),
        ("coingecko", "UNI-USD", None),
        ("coingecko", "UNI-USD|coingecko:universe-2", None),
        ("kraken", "BTC-USD", None),
    ]
    kraken = rows[-1]
    assert (kraken["entity_id"], kraken["base_asset_id"]) == (
        "instrument:kraken:BTC-USD",
        "bitcoin",
    )
    latest = await query(migrated_url, "SELECT venue, symbol, market FROM latest_prices")
    assert len(latest) == 5


POOL_A = "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f"
POOL_B = "0x11950d141ecb863f01007add7d1a342041227b58"


async def test_on_chain_pools_are_markets_of_their_own(migrated_url: str) -> None:
    """Swaps and candles of two pools of one pair: two instruments, two latest prices, two
    candle rows; network, pool, transaction and both amounts stored (through the fast path)."""
    onchain = {"source": "coingecko-ws", "symbol": "PEPE-WETH", "asset_id": "pepe"}
    swaps = [
        events.trade(i, **onchain, network="ethereum", pool_address=pool,
                     tx_hash=f"0x{i:064x}", quote_size=Decimal("0.5"))
        for i, pool in ((1, POOL_A), (2, POOL_B))
    ]  # fmt: skip
    candles = [
        events.candle(0, venue="coingecko-ws", symbol="PEPE-WETH").model_copy(
            update={"network": "ethereum", "pool_address": pool, "estimated": ("vwap",)}
        )
        for pool in (POOL_A, POOL_B)
    ]
    b = batch(*swaps, *candles)
    assert len(b.tables["prices"].lines or []) == 2  # the fast path took both swaps
    async with Store(migrated_url) as store:
        await store.write(b.reduced())
    rows = await query(
        migrated_url,
        "SELECT network, pool_address, tx_hash, quote_size FROM prices ORDER BY pool_address",
    )
    assert [(r["pool_address"], r["tx_hash"], r["quote_size"]) for r in rows] == [
        (POOL_B, f"0x{2:064x}", Decimal("0.5")),
        (POOL_A, f"0x{1:064x}", Decimal("0.5")),
    ]
    keys = await query(migrated_url, "SELECT instrument_key FROM instruments ORDER BY 1")
    assert [k["instrument_key"] for k in keys] == [
        f"PEPE-WETH|ethereum:{POOL_B}",  # 0x1... sorts first
        f"PEPE-WETH|ethereum:{POOL_A}",
    ]
    assert len(await query(migrated_url, "SELECT 1 FROM latest_prices")) == 2
    venues = await query(migrated_url, "SELECT venue, estimated FROM candles ORDER BY venue")
    assert [(v["venue"], v["estimated"]) for v in venues] == [
        (f"coingecko-ws@ethereum:{POOL_B}", ["vwap"]),
        (f"coingecko-ws@ethereum:{POOL_A}", ["vwap"]),
    ]
    assert len({s.key for s in swaps}) == len({c.key for c in candles}) == 2


def _entity(i: int, **fields: object) -> AssetMetadataEvent:
    """An exchange entity the contract accepts (attributes and links are free JSON)."""
    return AssetMetadataEvent(
        event_id=f"x-{i}",
        event_time=events.T0,
        received_at=events.T0,
        source="coingecko",
        entity="exchange",
        entity_id=f"exchange:e{i}",
        name=f"Exchange {i}",
        **fields,  # type: ignore[arg-type]
    )


async def test_poison_rows_are_isolated_and_batch_mates_stored(migrated_url: str) -> None:
    """Rows the contract lets through but PostgreSQL refuses (NUL in jsonb and in text[]) are
    isolated and reported; their batch-mates are stored."""
    good = [events.trade(i) for i in range(50)]
    jsonb_nul = _entity(1, attributes={"note": "a\x00b"})  # jsonb cannot hold \u0000
    text_nul = _entity(2, links={"homepage": ("https://x\x00y",)})  # text cannot hold NUL
    fine = _entity(3)
    evts = [*good[:20], jsonb_nul, *good[20:40], text_nul, fine, *good[40:]]
    result = await write(migrated_url, *evts)
    rejected = {f.record.offset: f for f in result.rejected}
    assert set(rejected) == {20, 41}
    assert "22P05" in rejected[20].reason and "exchanges" in rejected[20].reason
    assert "SQLSTATE 22" in rejected[41].reason
    [row] = await query(migrated_url, "SELECT count(*) AS n FROM prices")
    assert row["n"] == 50
    names = await query(migrated_url, "SELECT name FROM exchanges ORDER BY name")
    assert [r["name"] for r in names] == ["Exchange 3"]


async def test_contract_violations_never_reach_the_database(migrated_url: str) -> None:
    """What the contract refuses is rejected while decoding, with the reason, not written."""
    bad = json.loads(events.trade(7).to_json())
    bad["price"] = "1e400000"
    b = batch(events.trade(1), json.dumps(bad).encode(), events.trade(2))
    [rejected] = b.rejected
    assert rejected.record.offset == 1 and "price" in rejected.reason
    assert "too large" in rejected.reason
    result = await write(migrated_url, events.trade(1), json.dumps(bad).encode())
    assert result.rejected == []


async def test_every_event_type_lands_in_its_table(migrated_url: str) -> None:
    await write(
        migrated_url,
        events.trade(1),
        events.quote(2),
        events.consolidated(1),
        events.candle(0),
        events.sentiment(0),
        events.asset(0),
        events.exchange(),
        events.dex_pair(),
        events.instrument(),
        events.feed_status(1),
        events.health(1),
        events.alert(1),
    )
    counts = {
        t: (await query(migrated_url, f"SELECT count(*) AS n FROM {t}"))[0]["n"]
        for t in (
            "prices",
            "consolidated_prices",
            "candles",
            "sentiment",
            "assets",
            "exchanges",
            "dex_pairs",
            "instruments",
            "feed_status",
            "service_health",
            "alert_events",
        )
    }
    assert counts == {
        "prices": 2,
        "consolidated_prices": 1,
        "candles": 1,
        "sentiment": 1,
        "assets": 1,
        "exchanges": 1,
        "dex_pairs": 1,
        "instruments": 2,  # binance BTC-USDT from prices, kraken BTC-USD from metadata
        "feed_status": 1,
        "service_health": 1,
        "alert_events": 1,
    }
    [inst] = await query(
        migrated_url, "SELECT native_symbol, base_asset_id FROM instruments WHERE venue='kraken'"
    )
    assert (inst["native_symbol"], inst["base_asset_id"]) == ("XBT/USD", "bitcoin")


async def test_views_answer_latest_price_daily_ohlcv_and_sentiment_history(
    migrated_url: str,
) -> None:
    await write(
        migrated_url,
        events.trade(1, price="100"),
        events.trade(2, price="101"),
        events.trade(3, symbol="ETH-USDT", price="3000"),
        events.quote(4),
        *(events.candle(m, close=str(100 + m), high=str(110 + m), low="90") for m in range(3)),
        events.sentiment(0, "20", "Extreme Fear"),
        events.sentiment(1, "55", "Greed"),
    )
    latest = await query(migrated_url, "SELECT venue, symbol, price FROM latest_prices ORDER BY 2")
    assert [(r["venue"], r["symbol"], r["price"]) for r in latest] == [
        ("binance", "BTC-USDT", Decimal("101")),
        ("binance", "ETH-USDT", Decimal("3000")),
    ]
    [q] = await query(migrated_url, "SELECT bid, ask FROM latest_quotes")
    assert (q["bid"], q["ask"]) == (Decimal("63999.9"), Decimal("64000.1"))
    [day] = await query(migrated_url, "SELECT * FROM daily_ohlcv")
    assert (day["open"], day["high"], day["low"], day["close"], day["volume"]) == (
        Decimal("100"),
        Decimal("112"),
        Decimal("90"),
        Decimal("102"),
        Decimal("9"),
    )
    assert day["candles"] == 3 and day["trade_count"] == 21
    hist = await query(
        migrated_url,
        "SELECT value, change, classification FROM sentiment_history ORDER BY event_time",
    )
    assert [(h["value"], h["change"]) for h in hist] == [
        (Decimal("20"), None),
        (Decimal("55"), Decimal("35")),
    ]


async def test_unreachable_database_is_retriable_not_a_row_error() -> None:
    store = Store(f"postgresql://postgres@127.0.0.1:{free_port()}/none", connect_timeout_s=1)
    async with store:
        with pytest.raises(DatabaseUnavailable) as info:
            await store.write(batch(events.trade(1)).reduced())
    assert info.value.retriable
