"""The hot paths (typed decode, wire bytes written directly) give exactly the general output."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from types import ModuleType

import pytest

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import binance, coinbase, kraken
from coinstream.normalizer.values import from_epoch
from coinstream.schemas.fastprice import epoch_ms, utc_text

from .normalizer_helpers import env

NUMBERS = ["100.5", "0.00000001", "1E-5", "0", "00.5", "-0.0", "1_000.5", " 7.25 ", "7.6e20",
           "12345678901234567890.123456789", "NaN", "Infinity", "", "abc", 5, 0.25]  # fmt: skip


def _frames(n: int, seed: int) -> list[tuple[str, object]]:
    rnd = random.Random(seed)
    frames: list[tuple[str, object]] = []
    for i in range(n):
        t_ms = 1_704_067_200_000 + rnd.randint(0, 10**9)
        num = rnd.choice(NUMBERS) if rnd.random() < 0.4 else f"{rnd.random() * 1000:.8f}"
        sym = rnd.choice(["BTCUSDT", "ETHUSDT", "PEPEUSDT", "XYZ"])
        roll = rnd.random()
        if roll < 0.6:
            kind, id_field = ("trade", "t") if roll < 0.4 else ("aggTrade", "a")
            d: dict[str, object] = {
                "e": kind, "E": t_ms, "s": sym, id_field: rnd.choice([i, str(i), -i, 2**64 + i]),
                "p": num, "q": rnd.choice(["0.5", num]), "m": rnd.choice([True, False, None, 1]),
                "T": rnd.choice([t_ms, t_ms * 1000, t_ms // 1000, str(t_ms), t_ms + 0.5]),
            }  # fmt: skip
            stream = f"{sym.lower()}@{kind}"
        else:
            d = {"u": rnd.choice([i, str(i)]), "s": sym, "b": num, "B": "1.5", "a": "2", "A": num}
            stream = f"{sym.lower()}@bookTicker"
        for k in list(d):
            if rnd.random() < 0.03:
                del d[k]
        frames.append((stream, {"stream": stream, "data": d}))
    return frames


def _outcome(f: object) -> object:
    try:
        return [e.to_json() for e in f()]  # type: ignore[operator]
    except ParseError as exc:
        return (type(exc).__name__, exc.reason)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_binance_fast_path_output_equals_the_general_parser(seed: int) -> None:
    """Trades and bookTickers: same bytes or the same error, whichever path runs."""
    registry = Registry()
    fast_hits = 0
    for stream, frame in _frames(400, seed):
        e = env("binance", stream, json.dumps(frame))
        fast = _outcome(lambda: binance.parse(e, registry, "BTC-USDT"))  # noqa: B023
        general = _outcome(lambda: binance._parse(e, registry, "BTC-USDT"))  # noqa: B023
        assert fast == general
        try:
            fast_hits += binance._fast(e, registry, "BTC-USDT") is not None
        except Exception:
            pass
    assert fast_hits > 25  # the typed path really ran (on the well-formed frames)


def test_binance_errors_are_the_general_parsers_errors() -> None:
    e = env("binance", "btcusdt@trade", {"stream": "btcusdt@trade", "data": {"s": "BTCUSDT"}})
    with pytest.raises(ParseError, match="trade has no 't' field"):
        binance.parse(e, Registry(), None)


@pytest.mark.parametrize(
    "ms", [0, 999, 1000, 1_704_067_200_000, 1_704_067_200_123, 99_999_999_999_999]
)
def test_epoch_ms_equals_from_epoch_and_utc_text(ms: int) -> None:
    when, text = epoch_ms(ms)
    assert when == from_epoch(ms, "ms")
    assert text == utc_text(when)


def _coinbase_trades(n: int, seed: int) -> list[object]:
    rnd = random.Random(seed)
    msgs: list[object] = []
    for i in range(n):
        if rnd.random() < 0.4:  # the documented form
            msgs.append({"channel": "market_trades", "timestamp": "2023-02-09T20:32:50Z",
                "events": [{"type": "update", "trades": [{"trade_id": str(i), "product_id": "BTC-USD",
                "price": f"{rnd.random() * 1e5:.2f}", "size": "0.00012", "side": rnd.choice(["BUY", "SELL"]),
                "time": "2023-02-09T20:32:50.714964855Z"}]}]})  # fmt: skip
            continue
        trades = [
            {
                "trade_id": rnd.choice([str(i * 3 + j), f"t-{i}", 'x"y', "é", i]),
                "product_id": rnd.choice(["BTC-USD", "ETH-USDT", "BAD"]),
                "price": rnd.choice([*NUMBERS, "101.25", "101.25"]),
                "size": rnd.choice(["0.5", "0.5", "NaN", 2]),
                "side": rnd.choice(["BUY", "SELL", "buy", "x", None]),
                "time": rnd.choice([
                    "2019-08-14T20:42:27.265Z", "2023-02-09T20:32:50.714964855Z",
                    "2024-04-07T18:50:00+02:00", "bad", 1712508600,
                ]),
            }
            for j in range(rnd.randint(1, 3))
        ]  # fmt: skip
        for t in trades:
            for k in list(t):
                if rnd.random() < 0.03:
                    del t[k]
        msg: dict[str, object] = {
            "channel": rnd.choice(["market_trades"] * 8 + ["heartbeats"]),
            "client_id": "",
            "timestamp": "2023-02-09T20:32:50.714964855Z",
            "sequence_num": i,
            "events": [{"type": rnd.choice(["snapshot", "update"]), "trades": trades}],
        }
        if rnd.random() < 0.05:
            msg["type"] = rnd.choice(["error", "subscriptions", None])
        msgs.append(msg)
    return msgs


def _kraken_trades(n: int, seed: int) -> list[object]:
    rnd = random.Random(seed)
    msgs: list[object] = []
    for i in range(n):
        if rnd.random() < 0.4:  # the documented form
            msgs.append({"channel": "trade", "type": "update", "data": [{"symbol": "BTC/USD",
                "side": rnd.choice(["buy", "sell"]), "price": rnd.random() * 1e5, "qty": 0.0001,
                "ord_type": "market", "trade_id": i, "timestamp": "2024-04-07T16:50:00.123456Z"}]})  # fmt: skip
            continue
        data = [
            {
                "symbol": rnd.choice(["BTC/USD", "XBT/USD", "ETH/EUR", "BAD"]),
                "side": rnd.choice(["buy", "sell", "sell", "Buy", None]),
                "price": rnd.choice([*NUMBERS, 68000.1, 1e-7, 42, "68000.1"]),
                "qty": rnd.choice([0.0001, "0.25", 3, 1.5e3]),
                "ord_type": "limit",
                "trade_id": rnd.choice([i * 2 + j, str(i), "a b", 1.5]),
                "timestamp": rnd.choice([
                    "2024-04-07T16:50:00.123456Z", "2024-04-07T16:50:00.1Z", "nope",
                ]),
            }
            for j in range(rnd.randint(1, 2))
        ]  # fmt: skip
        for d in data:
            for k in list(d):
                if rnd.random() < 0.03:
                    del d[k]
        msg: dict[str, object] = {"channel": "trade", "type": "update", "data": data}
        if rnd.random() < 0.05:
            msg["method"] = rnd.choice([None, "pong"])
        msgs.append(msg)
    return msgs


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    ("module", "channel", "make"),
    [(coinbase, "market_trades", _coinbase_trades), (kraken, "trade", _kraken_trades)],
)
def test_coinbase_and_kraken_trade_fast_paths_equal_the_general_parsers(
    module: ModuleType, channel: str, make: Callable[[int, int], list[object]], seed: int
) -> None:
    """Same bytes or the same error, and the typed path really runs on documented frames."""
    registry = Registry()
    source = module.VENUE
    fast_hits = 0
    for msg in make(300, seed):
        e = env(source, channel, json.dumps(msg))
        fast = _outcome(lambda: module.parse(e, registry, None))  # noqa: B023
        general = _outcome(lambda: module._parse(e, registry))  # noqa: B023
        assert fast == general
        try:
            fast_hits += module._fast_trades(e, registry) is not None
        except Exception:
            pass
    assert fast_hits > 60  # the documented form (40 %) takes the typed path
