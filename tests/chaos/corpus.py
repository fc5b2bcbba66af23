"""The poison corpus: records no stage may choke on, for every raw and canonical topic.

Each ``Poison`` is a value (``None`` for a tombstone) with a name saying what is wrong. Raw
items are wrapped in real raw envelopes where the poison is inside the payload, so they reach
the source's parser; canonical items are bytes a subscriber-facing topic might carry.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from coinstream.schemas import RawEnvelope

BIG = 1_200_000
"""A record bigger than Kafka's default 1 MB limits."""


@dataclass(frozen=True)
class Poison:
    name: str
    value: bytes | None
    key: bytes | None = b"poison"
    huge: bool = False  # over 1 MB: only brokers configured for it accept it


def envelope(source: str, channel: str, payload: str, received: datetime | None = None) -> bytes:
    return RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source=source,
        channel=channel,
        received_at=received or datetime.now(UTC),
        payload=payload,
    ).to_json()


def _binance(**data: Any) -> str:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    base: dict[str, Any] = {
        "e": "trade", "E": now_ms, "s": "BTCUSDT", "t": 777, "p": "67000.5", "q": "0.01",
        "T": now_ms, "m": False, "M": True,
    }  # fmt: skip
    base.update(data)
    return json.dumps({"stream": "btcusdt@trade", "data": base})


def binance_payloads() -> list[tuple[str, str]]:
    """(name, payload) of Binance trades that are wrong in one way each."""
    ms_2100 = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)
    return [
        ("price 1e400000", _binance(p="1e400000")),
        ("price 1e-400000", _binance(p="1e-400000")),
        ("price with 20,000 digits", _binance(p="9" * 20_000)),
        ("price NaN", _binance(p="NaN")),
        ("negative price", _binance(p="-67000")),
        ("size 1e308", _binance(q="1e308")),
        ("trade id x", _binance(t="x")),
        ("trade id -1", _binance(t=-1)),
        ("trade id 1.5", _binance(t=1.5)),
        ("event time 1969", _binance(T=-86_400_000)),
        ("event time 2100", _binance(T=ms_2100)),
        ("event time 5138", _binance(T=99_999_999_999_999)),
        ("symbol with U+202E", _binance(s="BTC\u202eUSDT")),
        ("Cyrillic look-alike symbol", _binance(s="\u0412\u0422\u0421USDT")),
        ("full-width symbol", _binance(s="\uff22\uff34\uff23USDT")),
        ("emoji symbol", _binance(s="\U0001f680USDT")),
        ("800-character symbol", _binance(s="A" * 796 + "USDT")),
        ("price of the wrong type", _binance(p={"x": 1})),
        ("data is a list", json.dumps({"stream": "btcusdt@trade", "data": [1, 2]})),
        ("lone surrogate in the payload", '{"stream":"btcusdt@trade","data":"\\ud800"}'),
    ]


def source_payloads(source: str) -> list[tuple[str, str, str]]:
    """(name, channel, payload) of payloads that are wrong for ``source``'s parser."""
    if source == "binance":
        return [(n, "btcusdt@trade", p) for n, p in binance_payloads()]
    if source == "coinbase":
        trades = {
            "channel": "market_trades", "timestamp": "2026-01-01T00:00:00Z", "sequence_num": 1,
            "events": [{"type": "update", "trades": [{
                "trade_id": "-5", "product_id": "BTC-USD", "price": "1e400000", "size": "x",
                "side": "BUY", "time": "5138-01-01T00:00:00Z"}]}],
        }  # fmt: skip
        return [
            ("market trade with absurd fields", "market_trades", json.dumps(trades)),
            ("events of the wrong type", "market_trades", '{"channel":"market_trades","events":7}'),
        ]
    if source == "kraken":
        trade = {
            "channel": "trade", "type": "update", "data": [{
                "symbol": "BTC/USD", "side": "buy", "price": "1e400000", "qty": 1e308,
                "ord_type": "limit", "trade_id": "1.5", "timestamp": "1969-07-20T20:17:00Z"}],
        }  # fmt: skip
        return [("trade with absurd fields", "trade", json.dumps(trade))]
    if source == "coingecko":
        markets = [{"id": "bitcoin", "symbol": "btc", "current_price": "1e400000"}]
        return [
            ("market price 1e400000", "/coins/markets", json.dumps(markets)),
            ("simple price not an object", "/simple/price", "[]"),
        ]
    if source == "coinmarketcap":
        return [("listing of the wrong shape", "/v1/cryptocurrency/listings/latest", '{"data": 5}')]
    if source == "cmc-dex":
        return [("pair list of numbers", "/v4/dex/spot-pairs/latest", "[1, 2, 3]")]
    if source == "feargreed":
        fng = {"data": [{"value": "1e400000", "value_classification": "\u202e", "timestamp": "x"}]}
        return [("index value 1e400000", "/fng/", json.dumps(fng))]
    if source == "coingecko-ws":
        pool = "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f"
        return [
            ("simple price 1e400000 in 5138", "CGSimplePrice",
             '{"c":"C1","i":"bitcoin","vs":"usd","p":1e400000,"t":99999999999}'),
            ("swap with a negative amount", "OnchainTrade",
             f'{{"c":"G2","n":"eth","pa":"{pool}","tx":"0x1","ty":"b","to":-5,"toq":1,"t":1}}'),
            ("candle whose low is above its high", "OnchainOHLCV",
             f'{{"ch":"G3","n":"eth","pa":"{pool}","to":"base","i":"1m","o":1,"h":1,"l":2,'
             '"c":1,"v":1,"t":1780841100}'),
            ("token price of a token without address", "OnchainSimpleTokenPrice", '{"c":"G1"}'),
        ]  # fmt: skip
    if source == "coinmarketcap-ws":
        return [
            ("market price not a number", "market@crypto_latest_price",
             '{"type":"data","data":{"cid":1,"p":"lots"},"ts":1778663880111}'),
            ("swap of zero-width tickers in 1969", "onchain@transaction",
             '{"type":"data","data":{"pid":1,"tx":"0x1","t0a":"0xa","t1a":"0xb",'
             '"t0s":"\u200b","t1s":"X","a0":1,"a1":1,"ts":-1000}}'),
            ("kline without a token", "onchain@kline", '{"type":"data","data":{"o":1}}'),
            ("error frame", "error", '{"type":"error","status":{"error_code":"5001"}}'),
        ]  # fmt: skip
    return []


def _with(doc: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({**doc, **fields}).encode()


def oversized_metadata() -> Poison:
    """A valid CoinGecko ``/coins/{id}`` response whose metadata event is larger than 300 kB
    (the chaos stack lowers the normalizer's KAFKA_MAX_RECORD_BYTES to that): the event is
    refused by the producer limit and its raw record dead-lettered in bounded form."""
    coin = {
        "id": "bitcoin", "symbol": "btc", "name": "Bitcoin",
        "links": {"homepage": [f"https://example.com/{i}/" + "a" * 90 for i in range(4000)]},
        "last_updated": datetime.now(UTC).isoformat(),
    }  # fmt: skip
    value = envelope("coingecko", "/coins/{id}", json.dumps(coin))
    return Poison("event larger than the producer limit", value)


def raw_corpus(source: str, topic_source_mismatch: str, seed: int = 11) -> list[Poison]:
    """Everything wrong a raw topic of ``source`` may carry (``topic_source_mismatch`` is
    another source's name, for an envelope on the wrong topic)."""
    rng = random.Random(seed)
    good = json.loads(envelope(source, "x", "{}"))
    items = [
        Poison("tombstone", None),
        Poison("invalid UTF-8", b"\xff\xfe\xfa not text"),
        Poison("lone surrogate", b'"\\udc80"'),
        Poison("not JSON", b"{this is not json"),
        Poison("JSON array", b"[1, 2, 3]"),
        Poison("JSON number", b"42"),
        Poison("empty value", b""),
        Poison(
            "envelope schema_version 'one'", json.dumps({**good, "schema_version": "one"}).encode()
        ),
        Poison("envelope schema_version 2", json.dumps({**good, "schema_version": 2}).encode()),
        Poison("envelope of another source", envelope(topic_source_mismatch, "x", "{}")),
        Poison(
            "envelope received in 2100",
            json.dumps({**good, "received_at": "2100-01-01T00:00:00.000000Z"}).encode(),
        ),
        Poison("huge record", envelope(source, "x", "A" * BIG), huge=True),
    ]
    for i in range(6):  # fuzzed envelopes: a valid one with random bytes flipped or cut
        data = bytearray(envelope(source, "btcusdt@trade", _binance(t=i)))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if i % 2:
            data = data[: rng.randrange(1, len(data))]
        items.append(Poison(f"fuzzed envelope {i}", bytes(data)))
    for name, channel, payload in source_payloads(source):
        items.append(Poison(name, envelope(source, channel, payload)))
    return items


def _price(**fields: Any) -> bytes:
    now = datetime.now(UTC)
    doc: dict[str, Any] = {
        "schema_version": 1, "event_id": str(uuid.uuid4()), "type": "price", "kind": "trade",
        "event_time": (now - timedelta(seconds=1)).isoformat(), "received_at": now.isoformat(),
        "source": "binance", "symbol": "BTC-USDT", "base": "BTC", "quote": "USDT",
        "price": "67000", "size": "1", "side": "buy", "trade_id": "1",
    }  # fmt: skip
    doc.update(fields)
    return json.dumps(doc).encode()


def canonical_corpus(topic_kind: str) -> list[Poison]:
    """Records a subscriber-facing topic may receive that no consumer may choke on."""
    items = [
        Poison("tombstone", None),
        Poison("not JSON", b"{nope"),
        Poison("invalid UTF-8", b"\xc3\x28"),
        Poison("unknown event type", b'{"type": "surprise"}'),
        Poison("huge record", b'{"type": "price", "pad": "' + b"x" * BIG + b'"}', huge=True),
    ]
    if topic_kind == "prices":
        items += [
            Poison("price 1e400000", _price(price="1e400000")),
            Poison("price NaN", _price(price="NaN")),
            Poison("price -5", _price(price="-5")),
            Poison("size 1e308", _price(size="1e308")),
            Poison("symbol with U+202E", _price(symbol="BTC\u202e-USDT", base="BTC\u202e")),
            Poison("schema_version 'one'", _price(schema_version="one")),
            Poison("event time 5138", _price(event_time="5138-01-01T00:00:00Z")),
            Poison("trade id with a space", _price(trade_id="1 2")),
        ]
    return items


def internal_corpus() -> list[Poison]:
    """Records the internal trades-by-asset topic may receive that the consolidator must
    dead-letter (it reads single trades and JSON arrays of them)."""
    return [
        *canonical_corpus("prices"),
        Poison("a quote, not a trade", _price(kind="quote", size=None)),
        Poison("array with a broken element", b'[{"type": "price"}]'),
        Poison("array cut short", b'[{"type": "price", "kind": "trade"'),
        Poison("array of numbers", b"[1, 2, 3]"),
    ]
