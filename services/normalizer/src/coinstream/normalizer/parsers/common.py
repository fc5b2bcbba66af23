"""What every parser shares: the decoded envelope, the parser signature, event builders."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Instrument, Registry
from coinstream.schemas import Event, SentimentEvent, deterministic_id, limits
from coinstream.schemas.fastenvelope import Envelope, EnvelopeError
from coinstream.schemas.fastenvelope import decode_envelope as _decode
from coinstream.schemas.fastprice import FastPrice, event_id, middle_of


def decode_envelope(value: bytes | str) -> Envelope:
    """Decode a raw record value (``coinstream.schemas.fastenvelope``); ``ParseError`` with
    the reason if it is not a raw envelope."""
    try:
        return _decode(value)
    except EnvelopeError as exc:
        raise ParseError(str(exc)) from None


def hot_instrument(
    registry: Registry,
    venue: str,
    native: str,
    hint: str | None,
    codes: Mapping[str, str] | None = None,
) -> tuple[Instrument, str, str]:
    """``registry.instrument()`` plus the instrument's trade and quote JSON middles
    (``fastprice.middle_of``), memoized per registry. The registry resolves a venue symbol once
    and caches it, so the memo holds exactly what it would return."""
    memo = registry.memo.get((venue, native))
    if memo is None:
        inst = registry.instrument(venue, native, hint, codes)
        parts = (venue, inst.symbol, inst.base, inst.quote, inst.asset_id, inst.native)
        memo = (inst, middle_of("trade", *parts), middle_of("quote", *parts))
        if len(registry.memo) < 10_000:
            registry.memo[(venue, native)] = memo
    return memo  # type: ignore[no-any-return]


def sequence_id(value: Any, where: str) -> str:
    """A venue trade id that is a sequence number (Binance, Coinbase, Kraken): a JSON integer
    or a string of ASCII digits, zero or more. Anything else is refused with the reason."""
    if type(value) is int and value >= 0:
        return str(value)
    if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 30:
        return value
    raise ParseError(
        f"{where} {value!r} is not a trade id of this venue (a non-negative integer sequence "
        "number)"
    )


PriceKind = Literal["trade", "quote", "ticker", "aggregate", "consolidated"]

AnyEvent = Event | FastPrice
"""What parsers return: canonical events (price events in their hot-path form)."""

Parser = Callable[[Envelope, Registry, "str | None"], list[AnyEvent]]
"""``parse(envelope, registry, key_symbol_hint) -> events`` (empty for ignored frames)."""


@dataclass(frozen=True, slots=True)
class ParserPlugin:
    """A source's parser and what its events are: the value of its entry point in
    ``coinstream.normalizer.parsers``.

    ``venue_trades``: its ``trade`` events are executions on the source's own order book (an
    exchange's spot market), so they feed the 1-minute candles and the consolidated price.
    Aggregators, DEX trade feeds priced through a pool and history replays of another
    source leave it False: their prices are published, never consolidated. The core decides
    from this declaration only; it never names a source.
    """

    parse: Parser
    venue_trades: bool = False

    def __call__(self, env: Envelope, registry: Registry, hint: str | None) -> list[AnyEvent]:
        return self.parse(env, registry, hint)


def venue_price(
    env: Envelope,
    venue: str,
    inst: Instrument,
    kind: str,
    *id_parts: object,
    event_time: datetime,
    **fields: Any,
) -> FastPrice:
    """A price event for one venue instrument, with the identity fields every venue shares:
    ``event_id(kind, venue, symbol, *id_parts)``, receipt time, symbol, base, quote, asset id
    and native symbol. ``fields`` carries the prices, sizes and side."""
    return FastPrice(
        kind=kind,
        source=venue,
        event_id=event_id(kind, venue, inst.symbol, *id_parts),
        event_time=event_time,
        received_at=env.received_at,
        symbol=inst.symbol,
        base=inst.base,
        quote=inst.quote,
        asset_id=inst.asset_id,
        native_symbol=inst.native,
        **fields,
    )


_SIDES = (("price", None), ("bid", "bid_size"), ("ask", "ask_size"))


def real_quote(
    event_time: datetime | None, received_at: datetime, **fields: Decimal | None
) -> tuple[datetime, dict[str, Decimal | None]] | None:
    """A ticker or quote without its placeholders, or ``None`` when nothing real is left.

    Venues fill an empty book or an instrument with no trade yet with zeros (Kraken sends bid
    and ask 0, quantities 0 and times at the Unix epoch): a price of zero is "no price", its
    size goes with it, and a time before the contract's earliest event time is "no time" (the
    receipt time stands in when real prices remain). With no price, bid or ask left the record
    says nothing and yields no event."""
    out = dict(fields)
    for name, size in _SIDES:
        value = out.get(name)
        if value is not None and value.is_zero():
            out[name] = None
            if size is not None:
                out[size] = None
    if all(out.get(name) is None for name, _ in _SIDES):
        return None
    if event_time is None or event_time < limits.EARLIEST_EVENT_TIME:
        event_time = received_at
    return event_time, out


def price(**fields: Any) -> FastPrice:
    """A price event from already-validated values (exact Decimals, UTC datetimes).

    Returns the hot-path ``FastPrice`` (same wire bytes as ``PriceEvent``); see fastprice.py.
    """
    return FastPrice(**fields)


def sentiment(
    env: Envelope,
    source: str,
    subject: str,
    metric: str,
    value: Decimal,
    event_time: datetime,
    classification: str | None = None,
    unit: str | None = None,
) -> SentimentEvent:
    return SentimentEvent(
        event_id=deterministic_id("sentiment", source, subject, metric, event_time.isoformat()),
        event_time=event_time,
        received_at=env.received_at,
        source=source,
        subject=subject,
        metric=metric,
        value=value,
        classification=classification,
        unit=unit,
    )


def content_id(kind: str, *parts: object, content: Any = None) -> str:
    """An id from identity parts plus a digest of ``content`` (same content, same id)."""
    digest = hashlib.blake2b(
        msgspec.json.encode(content, order="sorted", enc_hook=str), digest_size=8
    ).hexdigest()
    return deterministic_id(kind, *parts, digest)


def channel_error(env: Envelope) -> ParseError:
    from coinstream.normalizer.errors import UnsupportedChannelError

    return UnsupportedChannelError(
        f"no parser for source {env.source!r} channel {env.channel!r}; "
        "add one or stop publishing this channel"
    )


def json_safe(value: Any) -> Any:
    """A JSON-safe copy for ``attributes``: decimals, and integers beyond 2**53 (which
    JavaScript and float-based readers would round), as plain strings."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if type(value) is int and abs(value) > 2**53:
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def links_of(urls: Any) -> dict[str, tuple[str, ...]]:
    """Flatten a provider's link map: lists keep their non-empty strings, nested maps get
    dotted keys (``repos_url.github``); empty entries are dropped."""
    out: dict[str, tuple[str, ...]] = {}
    if not isinstance(urls, dict):
        return out
    for name, value in urls.items():
        if isinstance(value, str):
            values: tuple[str, ...] = (value,) if value else ()
        elif isinstance(value, list):
            values = tuple(v for v in value if isinstance(v, str) and v)
        elif isinstance(value, dict):
            for sub, nested in links_of(value).items():
                out[f"{name}.{sub}"] = nested
            continue
        else:
            continue
        if values:
            out[str(name)] = values
    return out
