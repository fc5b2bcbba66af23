"""``FastPrice``: the hot-path writer of ``PriceEvent`` (``fastcodec.read_price`` reads it).

Trades and quotes are most of the traffic. Building a pydantic model per record and dumping it
costs more than everything else a producer does, so producers build this plain object and
``to_json()`` writes exactly the bytes ``PriceEvent.to_json()`` would (same field order,
decimals as plain strings, times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, ``None`` omitted).
The field order and kinds come from the model itself (``PriceEvent.model_fields``): a field
added to the model is accepted, written and checked here without another change, and the
equivalence tests take their fields from the model. ``to_event()`` gives the validated
``PriceEvent``; ``check()`` applies the contract (``limits``) without building it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from hashlib import blake2b
from typing import Any

import orjson
from pydantic import ValidationError

from coinstream.schemas import limits
from coinstream.schemas.codec import describe_error
from coinstream.schemas.events import SCHEMA_VERSION, PriceEvent, onchain_market, price_key

_MODEL_FIELDS = tuple(PriceEvent.model_fields)
_IDENTITY_END = _MODEL_FIELDS.index("native_symbol") + 1
_VALUES = _MODEL_FIELDS[_IDENTITY_END:]
"""The fields after the identity (``source`` .. ``native_symbol``), in wire order: written
one by one when set (decimals as plain strings, text as JSON strings, tuples as lists)."""
_TUPLES = frozenset(
    n for n, f in PriceEvent.model_fields.items() if isinstance(f.get_default(), tuple)
)
_KNOWN_VALUES = frozenset(
    ("price", "size", "side", "trade_id", "bid", "bid_size", "ask", "ask_size", "volume_24h",
     "quote_volume_24h", "market_cap", "change_24h_pct", "contributors")
)  # fmt: skip
"""Value fields ``check()`` knows the rules of; any other set field is checked by the model."""
_FIELD_SET = frozenset(_MODEL_FIELDS)
_REQUIRED = frozenset(
    ("event_id", "event_time", "received_at", "source", "kind", "symbol", "base", "quote")
)
_HOT_FIELDS = (
    _KNOWN_VALUES
    | _REQUIRED
    | frozenset(
        (
            "market",
            "asset_id",
            "native_symbol",
            "wire",
            "checked",
            "type",
            "revision",
            "schema_version",
        )
    )
)


_POSITIVE = ("price", "bid", "ask")
_NON_NEGATIVE = ("size", "bid_size", "ask_size", "volume_24h", "quote_volume_24h", "market_cap")
_checked_identity: set[tuple[str | None, ...]] = set()
_check_decimal = limits.check_decimal
_MINUS_100 = Decimal(-100)
_EARLIEST = limits.EARLIEST_EVENT_TIME
_MARKETS = (None, "spot", "perpetual", "future")

_VERSION = str(SCHEMA_VERSION)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_quoted: dict[str, str] = {}


def quoted(text: str) -> str:
    """``text`` as a JSON string literal (cached: symbols, sources and ids repeat)."""
    cached = _quoted.get(text)
    if cached is None:
        cached = orjson.dumps(text).decode()
        if len(_quoted) < 50_000 and len(text) < 64:
            _quoted[text] = cached
    return cached


_middles: dict[tuple[str | None, ...], str] = {}


def _middle(
    source: str,
    kind: str,
    symbol: str,
    base: str,
    quote: str,
    asset_id: str | None,
    native: str | None,
    market: str | None = None,
    revision: int = 0,
) -> str:
    """The JSON between ``received_at`` and the numbers: constant per instrument and kind
    (only revision-0 middles, the hot path's, are cached)."""
    text = (
        f'","source":{quoted(source)},"revision":{int(revision)},"type":"price"'
        f',"kind":{quoted(kind)}'
    )
    if market is not None:
        text += f',"market":{quoted(market)}'
    text += f',"symbol":{quoted(symbol)},"base":{quoted(base)},"quote":{quoted(quote)}'

    if asset_id is not None:
        text += f',"asset_id":{quoted(asset_id)}'
    if native is not None:
        text += f',"native_symbol":{quoted(native)}'
    if len(_middles) < 50_000 and not revision:
        _middles[(source, kind, symbol, base, quote, asset_id, native, market)] = text
    return text


def _plain_or_quoted(text: str) -> str:
    """Ids (uuid form, numeric trade ids) need no escaping and are never worth caching."""
    if text.replace("-", "").isalnum() and text.isascii():
        return f'"{text}"'
    return quoted(text)


def utc_text(t: datetime) -> str:
    """``PriceEvent``'s time form: UTC, always six fractional digits, ``Z``."""
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    text = t.isoformat()  # "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00"
    return text[:26] + "Z" if len(text) == 32 else text[:19] + ".000000Z"


def decimal_text(d: Decimal) -> str:
    """Plain positional notation, as ``ExactDecimal`` serializes (``1E-12`` -> ``0.000000000001``)."""
    text = str(d)
    if "E" in text:
        text = format(d, "f")
    return "0" if text in ("-0", "0") else text


class FastPrice:
    """A price event's fields; attributes not set default to ``None`` (class defaults, so the
    hot-path builders set only what a trade or quote has). ``wire`` holds ``to_json()``'s
    bytes when a builder already wrote them (``trade()``/``quote()`` below)."""

    type = "price"
    revision = 0
    market: str | None = None
    asset_id: str | None = None
    native_symbol: str | None = None
    price: Decimal | None = None
    size: Decimal | None = None
    side: str | None = None
    trade_id: str | None = None
    bid: Decimal | None = None
    bid_size: Decimal | None = None
    ask: Decimal | None = None
    ask_size: Decimal | None = None
    volume_24h: Decimal | None = None
    quote_volume_24h: Decimal | None = None
    market_cap: Decimal | None = None
    change_24h_pct: Decimal | None = None
    contributors: tuple[str, ...] = ()
    wire: bytes | None = None
    checked: bool = False
    """``trade()``/``quote()`` found the event within the contract while building it (their
    values at hand): ``check()`` has nothing left to do."""
    event_id: str
    event_time: datetime
    received_at: datetime
    source: str
    kind: str
    symbol: str
    base: str
    quote: str

    def __init__(self, **fields: Any) -> None:
        """Any ``PriceEvent`` fields by name (``event_id``, ``event_time``, ``received_at``,
        ``source``, ``kind``, ``symbol``, ``base`` and ``quote`` are required)."""
        missing = _REQUIRED.difference(fields)
        if missing:
            raise TypeError(f"FastPrice needs {sorted(missing)}")
        unknown = fields.keys() - _FIELD_SET
        if unknown:
            raise TypeError(f"FastPrice: {sorted(unknown)} are not PriceEvent fields")
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def key(self) -> bytes:
        """``PriceEvent.key``: the symbol, qualified for derivatives, on-chain markets and
        assets the registry lacks."""
        asset_id = self.asset_id
        extra = self.__dict__
        if (
            self.market is None
            and (asset_id is None or ":" not in asset_id)
            and ("network" not in extra)
        ):
            return self.symbol.encode()
        onchain = onchain_market(
            extra.get("network"), extra.get("pool_address"), extra.get("contract_address")
        )
        return price_key(self.symbol, self.market, asset_id, onchain).encode()

    def to_json(self) -> bytes:
        if self.wire is not None:
            return self.wire
        # Hand-built for speed; byte-identical to PriceEvent.to_json() (pinned by tests).
        ident = (
            self.source,
            self.kind,
            self.symbol,
            self.base,
            self.quote,
            self.asset_id,
            self.native_symbol,
            self.market,
        )
        revision = self.revision
        middle = _middles.get(ident) if not revision else None
        if middle is None:
            middle = _middle(*ident, revision)
        parts = [
            '{"schema_version":', _VERSION, ',"event_id":', _plain_or_quoted(self.event_id),
            ',"event_time":"', utc_text(self.event_time),
            '","received_at":"', utc_text(self.received_at), middle,
        ]  # fmt: skip
        for name in _VALUES:
            value = getattr(self, name, None)
            if value is None:
                continue
            if name in _TUPLES:
                text = orjson.dumps(list(value)).decode()
            elif type(value) is str:
                text = _plain_or_quoted(value)
            else:
                text = f'"{decimal_text(value)}"'
            parts += (',"', name, '":', text)
        parts.append("}")
        return "".join(parts).encode()

    def to_event(self) -> PriceEvent:
        return PriceEvent.model_validate_json(self.to_json())

    def check(self) -> None:
        """Raise ``ValueError`` naming the problem unless this event meets the contract
        (``coinstream.schemas.limits``): exactly what ``PriceEvent`` validation refuses."""
        if self.checked:
            return
        ident = (
            self.source,
            self.symbol,
            self.base,
            self.quote,
            self.asset_id,
            self.native_symbol,
        )
        if ident not in _checked_identity:
            _check_identity(*ident)
            if len(_checked_identity) < 50_000:
                _checked_identity.add(ident)
        eid = self.event_id
        if len(eid) != 36 or not eid.replace("-", "").isalnum() or not eid.isascii():
            limits.check_identifier(eid, "event_id")
        if self.trade_id is not None:
            limits.check_trade_id(self.trade_id)
        for name in _POSITIVE:
            value = getattr(self, name)
            if value is not None:
                limits.check_positive(value, name)
        for name in _NON_NEGATIVE:
            value = getattr(self, name)
            if value is not None:
                limits.check_non_negative(value, name)
        change = self.change_24h_pct
        if change is not None:
            _check_decimal(change, "change_24h_pct")
            if change < _MINUS_100:
                raise ValueError(f"change_24h_pct {change} is below -100")
        for contributor in self.contributors:
            limits.check_identifier(contributor, "contributor")
        if self.market not in _MARKETS:
            raise ValueError(f"market {self.market!r} is not spot, perpetual or future")
        limits.check_event_time(self.event_time, self.received_at)
        if self.__dict__.keys() - _HOT_FIELDS:  # a field the hot path does not check itself
            try:
                self.to_event()
            except ValidationError as exc:
                raise ValueError(describe_error(exc)) from None

    def __repr__(self) -> str:
        return f"FastPrice({self.kind} {self.source} {self.symbol} {self.event_id})"


def _check_identity(
    source: str | None,
    symbol: str | None,
    base: str | None,
    quote: str | None,
    asset_id: str | None,
    native: str | None,
) -> None:
    limits.check_source(source or "")
    limits.check_symbol(symbol or "")
    limits.check_code(base or "", "base")
    limits.check_code(quote or "", "quote")
    if symbol != f"{base}-{quote}":
        raise ValueError(f"symbol {symbol!r} does not match base {base!r} and quote {quote!r}")
    if asset_id is not None:
        limits.check_identifier(asset_id, "asset_id")
    if native is not None:
        limits.check_display(native, "native_symbol")


_new = object.__new__
_seconds: dict[int, tuple[datetime, str]] = {}
_UUID_CUTS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))


def hashed_id(text: str) -> str:
    """The uuid-form id of already joined parts (``event_id`` without the joining)."""
    h = blake2b(text.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_MILLIS = tuple(timedelta(milliseconds=i) for i in range(1000))


def epoch_ms(ms: int) -> tuple[datetime, str]:
    """``EPOCH + timedelta(milliseconds=ms)`` and its ``utc_text`` for ``ms >= 0`` (per-second
    parts cached: consecutive trades share the second)."""
    sec, rest = divmod(ms, 1000)
    cached = _seconds.get(sec)
    if cached is None:
        start = _EPOCH + timedelta(seconds=sec)
        cached = (start, start.isoformat()[:19])
        if len(_seconds) > 10_000:
            _seconds.clear()
        _seconds[sec] = cached
    return cached[0] + _MILLIS[rest], f"{cached[1]}.{rest:03d}000Z"


def middle_of(
    kind: str, source: str, symbol: str, base: str, quote: str,
    asset_id: str | None, native: str | None,
) -> str:  # fmt: skip
    """The constant JSON of one instrument and kind (see ``_middle``)."""
    ident = (source, kind, symbol, base, quote, asset_id, native, None)
    middle = _middles.get(ident)
    return _middle(*ident) if middle is None else middle


def _times_ok(event_time: datetime, received_at: datetime) -> bool:
    return (
        event_time >= _EARLIEST
        and received_at >= _EARLIEST
        and event_time - received_at <= limits.max_future_skew()
    )


def _identity(
    kind: str, source: str, symbol: str, base: str, quote: str, asset_id: str | None,
    native: str | None, ident: str, event_time: datetime, received_at: datetime,
) -> FastPrice:  # fmt: skip
    """A ``FastPrice`` of ``kind`` with the fields every builder sets."""
    p = _new(FastPrice)
    p.event_id = ident
    p.event_time = event_time
    p.received_at = received_at
    p.source = source
    p.kind = kind
    p.symbol = symbol
    p.base = base
    p.quote = quote
    p.asset_id = asset_id
    p.native_symbol = native
    return p


def _context_ok(p: FastPrice, event_time: datetime, received_at: datetime) -> bool:
    """The contract's time bounds, and an instrument identity checked once before."""
    return (
        _times_ok(event_time, received_at)
        and (p.source, p.symbol, p.base, p.quote, p.asset_id, p.native_symbol) in _checked_identity
    )


def trade(
    middle: str, source: str, symbol: str, base: str, quote: str, asset_id: str | None,
    native: str | None, ident: str, event_time: datetime, event_time_text: str, received_at: datetime,
    received_text: str, price: Decimal, size: Decimal, side: str, trade_id: str,
) -> FastPrice:  # fmt: skip
    """A trade ``FastPrice`` with its wire bytes written directly (same bytes as ``to_json``).

    ``side`` must be ``buy``/``sell`` and ``trade_id`` plain (digits, ``-``); the time texts
    must be ``utc_text`` of the times and ``middle`` the ``middle_of()`` of the instrument.
    Callers check that and fall back to ``FastPrice``.
    """
    p = _identity(
        "trade", source, symbol, base, quote, asset_id, native, ident, event_time, received_at
    )
    p.price = price
    p.size = size
    p.side = side
    p.trade_id = trade_id
    pt, st = decimal_text(price), decimal_text(size)
    p.checked = (
        len(pt) <= 78 and len(st) <= 78 and price.is_finite() and size.is_finite()
        and price > 0 and size >= 0
        and trade_id[:1].isalnum() and trade_id.replace("-", "").isalnum()
        and len(trade_id) <= 64 and trade_id.isascii()
        and _context_ok(p, event_time, received_at)
    )  # fmt: skip
    p.wire = (
        f'{{"schema_version":{_VERSION},"event_id":"{ident}","event_time":"{event_time_text}"'
        f',"received_at":"{received_text}'
        f"{middle}"
        f',"price":"{pt}","size":"{st}","side":"{side}"'
        f',"trade_id":"{trade_id}","contributors":[]}}'
    ).encode()
    return p


def quote(
    middle: str, source: str, symbol: str, base: str, quote: str, asset_id: str | None,
    native: str | None, ident: str, event_time: datetime, event_time_text: str, received_at: datetime,
    received_text: str, bid: Decimal, bid_size: Decimal, ask: Decimal, ask_size: Decimal,
) -> FastPrice:  # fmt: skip
    """A quote (best bid/ask) ``FastPrice`` with its wire bytes written directly."""
    p = _identity(
        "quote", source, symbol, base, quote, asset_id, native, ident, event_time, received_at
    )
    p.bid = bid
    p.bid_size = bid_size
    p.ask = ask
    p.ask_size = ask_size
    texts = (decimal_text(bid), decimal_text(bid_size), decimal_text(ask), decimal_text(ask_size))
    p.checked = (
        max(map(len, texts)) <= 78
        and all(d.is_finite() for d in (bid, ask, bid_size, ask_size))
        and bid > 0 and ask > 0 and bid_size >= 0 and ask_size >= 0
        and _context_ok(p, event_time, received_at)
    )  # fmt: skip
    bt, bst, at, ast = texts
    p.wire = (
        f'{{"schema_version":{_VERSION},"event_id":"{ident}","event_time":"{event_time_text}"'
        f',"received_at":"{received_text}'
        f"{middle}"
        f',"bid":"{bt}","bid_size":"{bst}"'
        f',"ask":"{at}","ask_size":"{ast}","contributors":[]}}'
    ).encode()
    return p


def event_id(kind: str, *parts: object) -> str:
    """``coinstream.schemas.deterministic_id`` without building a ``uuid.UUID`` (same output)."""
    text = "\x1f".join([kind, *(str(p) for p in parts)])
    h = blake2b(text.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
