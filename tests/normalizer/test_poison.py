"""Bad input never stops the core: each record is refused with a reason a person can read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from coinstream.normalizer.core import Normalizer
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.schemas import Topics

from .normalizer_helpers import binance_trade, raw

TOPIC = "p.raw.binance.v1"
NOW = datetime.now(UTC).replace(microsecond=0)
T_MS = int(NOW.timestamp() * 1000) - 5_000


def core() -> Normalizer:
    return Normalizer(NormalizerSettings(), Topics("p"), Registry())


def frame(**data: object) -> str:
    base: dict[str, object] = {
        "e": "trade", "E": T_MS, "s": "BTCUSDT", "t": 1, "p": "100.5", "q": "0.1",
        "T": T_MS, "m": False, "M": True,
    }  # fmt: skip
    base.update(data)
    return json.dumps({"stream": "btcusdt@trade", "data": base})


def letter_reason(value: bytes | None, topic: str = TOPIC) -> str:
    out, letter = core().process(topic, 0, 7, b"k", value)
    assert out == [], "nothing of a refused record is published"
    assert letter is not None and letter.origin_offset == 7
    return letter.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"p": "1e400000"}, "price is too large"),
        ({"p": "1e-400000"}, "digits after the decimal point"),
        ({"p": "1" * 20_000}, "price is too large"),
        ({"p": "-5"}, "price must be positive"),
        ({"p": "0"}, "price must be positive"),
        ({"q": "1e308"}, "size is too large"),
        ({"p": "NaN"}, "must be finite"),
        ({"t": "x"}, "not a trade id of this venue"),
        ({"t": -1}, "not a trade id of this venue"),
        ({"t": 1.5}, "not a trade id of this venue"),
        ({"T": 4_102_444_800_000}, "years after received_at"),  # 2100
        ({"T": 100_000_000_000_000_000}, "before 2009-01-03"),  # read as ns: 1973
        ({"T": -1000}, "before 2009-01-03"),
        ({"s": "BTC\u202eUSDT"}, "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ({"s": "\u0412\u0422\u0421USDT"}, "CYRILLIC"),
        ({"s": "\uff22\uff34\uff23USDT"}, "FULLWIDTH"),
        ({"s": "🚀USDT"}, "ROCKET"),
        ({"s": "A" * 800 + "USDT"}, "longer than 32 characters"),
    ],
)
def test_poisoned_binance_trades_are_dead_lettered_with_a_reason(
    data: dict[str, object], reason: str
) -> None:
    received = datetime.fromtimestamp(T_MS / 1000, UTC) + timedelta(milliseconds=3)
    assert reason in letter_reason(raw("binance", "btcusdt@trade", frame(**data), received))


def test_tombstone_is_refused_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert "tombstone" in letter_reason(None)
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe not utf-8", "not a raw envelope"),
        (b'{"source": "binance"}', "not a raw envelope"),
        (b"[]", "not a raw envelope"),
        (b'"\\ud800"', "not a raw envelope"),
    ],
)
def test_undecodable_values_are_refused(value: bytes, reason: str) -> None:
    assert reason in letter_reason(value)


def test_envelope_with_unknown_schema_version_is_refused() -> None:
    doc = json.loads(raw("binance", "btcusdt@trade", frame()))
    doc["schema_version"] = "one"
    assert "schema_version" in letter_reason(json.dumps(doc).encode())
    doc["schema_version"] = 2
    assert "schema_version" in letter_reason(json.dumps(doc).encode())


def test_envelope_from_another_source_on_a_raw_topic_is_refused() -> None:
    reason = letter_reason(raw("coinbase", "market_trades", "{}"))
    assert "does not match its topic" in reason


def test_envelope_received_in_the_future_is_refused() -> None:
    future = datetime.now(UTC) + timedelta(days=365)
    assert "in the future" in letter_reason(raw("binance", "btcusdt@trade", frame(), future))


def test_one_bad_item_of_a_rest_page_spares_the_others() -> None:
    """A page of 3 coins with one absurd price: 2 events published, the record dead-lettered."""
    coins = [
        {"id": "bitcoin", "symbol": "btc", "current_price": 70000, "last_updated": None},
        {"id": "ethereum", "symbol": "eth", "current_price": "1e400000"},
        {"id": "solana", "symbol": "sol", "current_price": 150},
    ]
    value = raw("coingecko", "/coins/markets", coins, params={"vs_currency": "usd"})
    out, letter = core().process("p.raw.coingecko.v1", 0, 3, None, value)
    prices = [json.loads(o.value) for o in out if o.topic == "p.prices.v1"]
    assert {p["base"] for p in prices} == {"BTC", "SOL"}
    assert letter is not None and "price is too large" in letter.reason


def test_valid_trades_after_poison_still_flow() -> None:
    n = core()
    received = datetime.fromtimestamp(T_MS / 1000, UTC)
    bad = raw("binance", "btcusdt@trade", frame(p="1e400000"), received)
    good = raw("binance", "btcusdt@trade", frame(t=2), received)
    assert n.process(TOPIC, 0, 0, None, bad)[1] is not None
    out, letter = n.process(TOPIC, 0, 1, None, good)
    assert letter is None and next(o.topic for o in out) == "p.prices.v1"


def test_reference_binance_trade_is_still_accepted() -> None:
    received = datetime.fromtimestamp(T_MS / 1000, UTC)
    value = raw("binance", "btcusdt@trade", binance_trade("BTCUSDT", 5, "1", "1", T_MS), received)
    out, letter = core().process(TOPIC, 0, 0, None, value)
    assert letter is None and out
