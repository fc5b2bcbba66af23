"""The price model without servers: one fair value per asset, venues a few basis points around
it, aggregators behind it, divergences kept as history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from coinstream.marketsim.fairvalue import (
    AggregatorProfile,
    Divergences,
    FairValue,
    VenueProfile,
    venue_offset,
)
from coinstream.marketsim.market import Market, Trade

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
VENUES = {  # the demo's listings: (venue, symbol)
    "binance": VenueProfile(basis_bp=2, drift_bp=1, cadence_s=0.5, jitter_bp=0.5),
    "coinbase": VenueProfile(basis_bp=3, drift_bp=1.5, cadence_s=1, jitter_bp=1),
    "kraken": VenueProfile(basis_bp=4, drift_bp=2, cadence_s=2, jitter_bp=1.5),
}
LISTED = (("binance", "BTC-USDT"), ("coinbase", "BTC-USD"), ("kraken", "BTC-USD"))


def spread_pct(prices: list[Decimal]) -> float:
    return float((max(prices) - min(prices)) / min(prices) * 100)


def run(market: Market, seconds: float, start: datetime = T0) -> list[float]:
    """Step every instrument round robin at 5 trades/s each; the cross-venue BTC spread of
    the venues' latest prints after every trade."""
    views = {v: market.venue(v, p) for v, p in VENUES.items()}
    last: dict[tuple[str, str], Decimal] = {}
    spreads = []
    symbols = list(market.instruments)
    n = int(seconds * 5 * len(symbols))
    for i in range(n):
        now = start + timedelta(seconds=i / (5 * len(symbols)))
        trade, _ = market.step(symbols[i % len(symbols)], now)
        for venue, symbol in LISTED:
            if trade.symbol == symbol:
                last[(venue, symbol)] = views[venue].trade(trade).price
        if len(last) == len(LISTED):
            spreads.append(spread_pct(list(last.values())))
    return spreads


def test_every_btc_instrument_follows_one_fair_value() -> None:
    """BTC-USDT and BTC-USD no longer wander apart: after 30 minutes of trading they are
    still within a few basis points (the USD peg basis plus one step)."""
    market = Market(rate=0, seed=11)
    for i in range(30 * 60 * 10):
        market.step(("BTC-USDT", "BTC-USD")[i % 2], T0 + timedelta(seconds=i / 10))
    usdt, usd = market.price("BTC-USDT"), market.price("BTC-USD")
    assert usdt != Decimal("67000")  # the walk moved
    assert abs(float(usd / usdt) - 1.00015) < 0.0015


def test_cross_venue_btc_spread_stays_well_under_one_percent() -> None:
    """Over 10 minutes at the demo rate, Binance BTC-USDT, Coinbase and Kraken BTC-USD never
    differ by more than 0.5%; typically by a few basis points."""
    spreads = run(Market(rate=0, seed=12), 600)
    assert len(spreads) > 10_000
    assert max(spreads) < 0.5
    assert sorted(spreads)[len(spreads) // 2] < 0.1


def test_a_push_moves_every_instrument_and_spreads_close_at_the_next_trades() -> None:
    market = Market(rate=0, seed=13)
    run(market, 10)
    market.set_price("BTC-USDT", Decimal("69000"), T0 + timedelta(seconds=10))
    assert market.price("BTC-USDT") == Decimal("69000")
    assert market.price("BTC-USD") == Decimal("69010.35")  # 69000 x 1.00015, on the tick
    assert market.fair_value("BTC") == Decimal("69000")
    spreads = run(market, 10, T0 + timedelta(seconds=10))
    assert max(spreads[10:]) < 0.5  # once each instrument has traded after the push


def test_coinbase_and_kraken_do_not_print_the_same_prices() -> None:
    """The same BTC-USD trade prints at a different price on each venue, most of the time."""
    market = Market(rate=0, seed=14)
    coinbase = market.venue("coinbase", VENUES["coinbase"])
    kraken = market.venue("kraken", VENUES["kraken"])
    trades = [market.step("BTC-USD", T0 + timedelta(seconds=i / 5))[0] for i in range(500)]
    same = sum(coinbase.trade(t).price == kraken.trade(t).price for t in trades)
    assert same < 25
    diffs = [abs(float(coinbase.trade(t).price / kraken.trade(t).price) - 1) for t in trades]
    assert max(diffs) < 0.002


def test_venue_rendering_is_a_pure_function_of_seed_venue_symbol_and_time() -> None:
    """So the stream and the REST history show a trade at one price, in every connection."""
    a, b = Market(rate=0, seed=15), Market(rate=0, seed=15)
    ta, _ = a.step("BTC-USD", T0)
    tb, _ = b.step("BTC-USD", T0)
    assert ta == tb  # same seed, same trade
    va, vb = a.venue("kraken", VENUES["kraken"]), b.venue("kraken", VENUES["kraken"])
    assert va.trade(ta) == vb.trade(tb) == va.trade(ta)
    other = Market(rate=0, seed=16).venue("kraken", VENUES["kraken"])
    assert other.trade(ta).price != va.trade(ta).price  # another seed, another basis
    profile = VENUES["kraken"]
    offsets = [venue_offset(15, "kraken", "BTC-USD", profile, 1e9 + i) for i in range(2000)]
    assert len(set(offsets)) > 1900
    assert max(abs(o) for o in offsets) < 15e-4  # basis 4 bp + drift + jitter


def test_same_seed_same_sequence_of_trades() -> None:
    def tape(seed: int) -> list[Trade]:
        market = Market(rate=0, seed=seed)
        return [market.step(s, T0)[0] for s in list(market.instruments) * 20]

    assert tape(7) == tape(7)
    assert tape(7) != tape(8)


def test_trade_ids_stay_contiguous_per_instrument() -> None:
    market = Market(rate=0, seed=17)
    for i in range(60):
        market.step(("BTC-USDT", "BTC-USD", "ETH-USD")[i % 3], T0)
    for symbol in ("BTC-USDT", "BTC-USD", "ETH-USD"):
        ids = [t.trade_id for t in market.history(symbol)]
        assert ids == list(range(ids[0], ids[0] + 20))


def test_quotes_bracket_the_trade_at_each_venue() -> None:
    market = Market(rate=0, seed=18)
    kraken = market.venue("kraken", VENUES["kraken"])
    for i in range(200):
        trade, quote = market.step("ETH-USD", T0 + timedelta(seconds=i))
        t, q = kraken.trade(trade), kraken.quote(quote)
        assert q.bid < q.ask
        assert q.bid <= t.price <= q.ask


def test_aggregators_quote_a_delayed_smoothed_fair_value() -> None:
    """Before ``delay`` nothing changes; across ``window`` the quote moves part way; after
    ``delay + window`` it is the new value exactly."""
    fair = FairValue(Decimal("100"), t=0.0)
    fair.set(Decimal("110"), 100.0)
    lag = AggregatorProfile(delay_s=4, window_s=6)
    assert lag.quote(fair, 100.0) == Decimal("100")
    assert lag.quote(fair, 103.9) == Decimal("100")
    assert lag.quote(fair, 107.0) == pytest.approx(Decimal("105"))
    assert lag.quote(fair, 110.0) == Decimal("110")
    assert lag.quote(fair, 110.0, scale=0) == Decimal("110")
    assert lag.quote(fair, 100.5, scale=0) == Decimal("110")


def test_market_aggregate_follows_set_price_after_the_lag() -> None:
    market = Market(rate=0, seed=19)
    lag = AggregatorProfile(delay_s=4, window_s=6)
    now = datetime.now(UTC)
    market.set_price("BTC-USDT", Decimal("70000"), now)
    assert market.aggregate("BTC", lag, now) == Decimal("67000")
    assert market.aggregate("BTC", lag, now + timedelta(seconds=7)) == pytest.approx(
        Decimal("68500")
    )
    assert market.aggregate("BTC", lag, now + timedelta(seconds=10)) == Decimal("70000")


def test_the_fair_value_path_stays_bounded() -> None:
    fair = FairValue(Decimal("1"), t=0.0, horizon_s=10, resolution_s=0.1)
    for i in range(100_000):  # 1,000 s at 100 changes a second
        fair.set(Decimal(1 + i % 7), i / 100)
    assert len(fair._path) <= 10 / 0.1 + 3
    assert fair.at(999.99) == fair.value


def test_divergences_render_the_past_as_it_was() -> None:
    d = Divergences()
    d.set("kraken", 2.0, t=100.0)
    d.set("kraken", -1.0, t=150.0, symbol="ETH-USD")
    d.set("kraken", None, t=200.0)  # clears the venue and its per-instrument divergences
    assert d.percent("kraken", "BTC-USD", 99.0) == 0.0
    assert d.percent("kraken", "BTC-USD", 120.0) == 2.0
    assert d.percent("kraken", "ETH-USD", 160.0) == -1.0  # its own wins over the venue's
    assert d.percent("coinbase", "BTC-USD", 160.0) == 0.0
    assert d.percent("kraken", "ETH-USD", 200.0) == 0.0
    assert [(x.venue, x.symbol, x.percent) for x in d.active(160.0)] == [
        ("kraken", None, 2.0),
        ("kraken", "ETH-USD", -1.0),
    ]
    assert d.active(250.0) == []
    with pytest.raises(ValueError):
        d.set("kraken", -100.0, t=300.0)


def test_market_diverge_moves_one_venue_and_knows_only_its_venues() -> None:
    market = Market(rate=0, seed=20)
    kraken = market.venue("kraken", VENUES["kraken"])
    coinbase = market.venue("coinbase", VENUES["coinbase"])
    before, _ = market.step("BTC-USD", T0)
    market.diverge("kraken", 2.0, now=T0 + timedelta(seconds=1))
    during, _ = market.step("BTC-USD", T0 + timedelta(seconds=2))
    ratio = kraken.trade(during).price / coinbase.trade(during).price
    assert 1.015 < ratio < 1.025
    assert abs(kraken.trade(before).price / coinbase.trade(before).price - 1) < Decimal("0.002")
    with pytest.raises(KeyError):
        market.diverge("nowhere", 2.0)
    with pytest.raises(KeyError):
        market.diverge("kraken", 2.0, symbol="NOPE-USD")


def test_an_instrument_without_an_opening_fair_value_is_refused() -> None:
    from coinstream.marketsim.market import Instrument

    with pytest.raises(ValueError, match="DOGE"):
        Market(instruments=(Instrument("DOGE-USDT", Decimal("0.0001")),))
