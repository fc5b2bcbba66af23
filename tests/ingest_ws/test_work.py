"""Sharing the streams between replicas, without I/O: the venues' jobs, plans for a subset of
them, the split over work partitions, and a checkpoint book that keeps only owned streams."""

from __future__ import annotations

from typing import Any

from coinstream.ingest_ws.checkpoints import CheckpointBook, Position
from coinstream.ingest_ws.venues.binance import BinanceProtocol, BinanceSettings
from coinstream.ingest_ws.venues.coingecko_ws import CoinGeckoWsProtocol, CoinGeckoWsSettings
from coinstream.ingest_ws.venues.coinmarketcap_ws import (
    CoinMarketCapWsProtocol,
    CoinMarketCapWsSettings,
)
from coinstream.ingest_ws.venues.kraken import KrakenProtocol, KrakenSettings
from coinstream.ingest_ws.work import StreamJobs
from coinstream.runtime.leases import partition_for


def binance(**kw: Any) -> BinanceProtocol:
    kw.setdefault("symbols", ["BTC-USDT", "ETH-USDT", "SOL-USDT", "PEPE-USDT"])
    return BinanceProtocol(BinanceSettings(url="ws://sim/binance", **kw))


def kraken() -> KrakenProtocol:
    return KrakenProtocol(KrakenSettings(url="ws://sim/kraken", symbols=["BTC-USD", "ETH-USD"]))


def coingecko() -> CoinGeckoWsProtocol:
    return CoinGeckoWsProtocol(
        CoinGeckoWsSettings(enabled=True, url="ws://sim/cg", api_key="k", coin_ids=["bitcoin"])
    )


def cmc() -> CoinMarketCapWsProtocol:
    return CoinMarketCapWsProtocol(
        CoinMarketCapWsSettings(enabled=True, url="ws://sim/cmc", api_key="k", crypto_ids=[1])
    )


def test_exchange_jobs_are_one_per_symbol_and_aggregators_one_per_venue() -> None:
    assert binance().job_keys() == (
        "binance/BTC-USDT",
        "binance/ETH-USDT",
        "binance/SOL-USDT",
        "binance/PEPE-USDT",
    )
    assert kraken().job_keys() == ("kraken/BTC-USD", "kraken/ETH-USD")
    assert coingecko().job_keys() == ("coingecko-ws/*",)
    assert cmc().job_keys() == ("coinmarketcap-ws/*",)


def test_checkpointed_streams_belong_to_their_symbols_job() -> None:
    assert binance().job_of_stream("trade:BTC-USDT") == "binance/BTC-USDT"
    assert binance().job_of_stream("aggTrade:ETH-USDT") == "binance/ETH-USDT"
    assert coingecko().job_of_stream("OnchainOHLCV:eth:0xab:1m:base") == "coingecko-ws/*"


def test_a_plan_for_some_jobs_connects_only_their_symbols() -> None:
    p = binance(channels=["trade", "bookTicker"])
    (plan,) = p.plan({"binance/ETH-USDT", "binance/PEPE-USDT", "kraken/BTC-USD"})
    assert plan.symbols == ("ETH-USDT", "PEPE-USDT")
    assert {s for _, s in plan.streams} == {"ETH-USDT", "PEPE-USDT"}
    assert "btcusdt" not in plan.url
    assert p.plan(set()) == []
    assert len(p.plan(None)[0].symbols) == 4  # None: every stream, as before sharing


def test_aggregators_are_planned_whole_or_not_at_all() -> None:
    assert coingecko().plan({"binance/BTC-USDT"}) == []
    assert coingecko().plan({"coingecko-ws/*"}) == coingecko().plan()
    assert cmc().plan(set()) == []
    assert len(cmc().plan({"coinmarketcap-ws/*"})) == 1


def test_two_replicas_split_every_job_exactly_once() -> None:
    """Partitions 0-5 and 6-11 (what the range assignor gives two members): disjoint, and
    together every job; one member with every partition owns everything."""
    jobs = StreamJobs([binance(), kraken(), coingecko()])
    assert jobs.total == 7

    def member(partitions: set[int]) -> frozenset[str]:
        return jobs.owned(lambda key: partition_for(key, 12) in partitions)

    a, b = member(set(range(6))), member(set(range(6, 12)))
    assert not a & b and a | b == jobs.all()
    assert member(set(range(12))) == jobs.all()
    assert sum(jobs.per_venue(a).values()) == len(a)


def test_the_checkpoint_book_keeps_and_writes_only_owned_streams() -> None:
    """A stream that moved away is forgotten, and its late acknowledgements are not written
    (they would overwrite the new owner's checkpoint)."""
    jobs = StreamJobs([binance(), kraken()])
    book = CheckpointBook()
    book.acked("binance", {"trade:BTC-USDT": (10, 1.0, b"k")}, 0, 5)
    book.acked("binance", {"trade:ETH-USDT": (20, 1.0, b"k")}, 0, 6)
    book.retain(jobs.keeper({"binance/ETH-USDT"}))
    assert set(book.positions) == {("binance", "trade:ETH-USDT")}
    assert [k for k, _ in book.drain()] == [b"binance:trade:ETH-USDT"]
    book.acked("binance", {"trade:BTC-USDT": (11, 2.0, b"k")}, 0, 7)
    book.open_hole("binance", "trade:BTC-USDT", 3, 4, None, 1.0)
    assert book.drain() == [] and ("binance", "trade:BTC-USDT") not in book.positions


def test_merging_keeps_the_newer_position() -> None:
    book = CheckpointBook()
    book.acked("kraken", {"trade:BTC-USD": (50, 1.0, b"k")}, 0, 5)
    book.merge("kraken", "trade:BTC-USD", Position(40))
    assert book.positions[("kraken", "trade:BTC-USD")].last == 50
    book.merge("kraken", "trade:BTC-USD", Position(60))
    assert book.positions[("kraken", "trade:BTC-USD")].last == 60
