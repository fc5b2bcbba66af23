"""Canonical price events straight to table rows and text COPY lines (the sink's hot path).

Validating through the pydantic models costs about 40-60 µs per price event on this machine,
and asyncpg's binary COPY encoding of the resulting ``Decimal``/``datetime`` values another
9-11 µs. Events are read with the contract's fast reader (``coinstream.schemas.fastcodec``:
msgspec, every rule of ``limits``, ``None`` when it is not certain) and this module writes the
row's text COPY line from the validated JSON strings themselves: no ``Decimal`` is built.
Consolidated prices (another table) and anything the reader defers go to the full pydantic
decoder, which then either accepts the event or names what is wrong. For canonical wire input
it sends PostgreSQL the same bytes as the model path (``copytext.copy_line``); tests compare
both.
"""

from __future__ import annotations

import re
from decimal import Decimal

from coinstream.schemas.fastcodec import decimal_fields, read_price
from coinstream.sink_postgres.copytext import NULL, escape, timestamp
from coinstream.sink_postgres.tables import PRICES, Row, Table

DECIMAL_COLUMNS = decimal_fields()
"""Columns holding decimal text in a fast-path row (the model's decimal fields)."""
# The canonical wire timestamp (what ``UtcDatetime`` serialises): reused as the COPY text as is.
_canonical_ts = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z"
).match
_special = re.compile(r"[\\\t\n\r]").search

PriceEntry = tuple[Row, str]


def price_entry_from_json(value: bytes) -> PriceEntry | None:
    """The ``prices`` row and its text COPY line for a canonical trade/quote/ticker/aggregate
    event, or ``None`` when the fast path is unsure (then decode with the models).

    In the row, timestamps are UTC ``datetime`` objects (keys, reduction and instruments need
    them) and decimal columns hold the validated number text, not ``Decimal``: the line is what
    PostgreSQL receives. Written flat on purpose: this runs once per price record.
    """
    record = read_price(value)
    if record is None:
        return None
    p = record.wire
    if p.kind == "consolidated" or p.contributors:
        return None  # the consolidated_prices table: the model path
    event_time, received_at = record.event_time, record.received_at
    et, ra = p.event_time, p.received_at
    kind, side, revision, market = p.kind, p.side, p.revision, p.market
    if market == "spot":  # stored as NULL, like an absent market
        market = None
    eid, src, sym, base, quote = p.event_id, p.source, p.symbol, p.base, p.quote
    aid, nat, tid = p.asset_id, p.native_symbol, p.trade_id
    price, size, bid, bid_size, ask, ask_size = (
        p.price,
        p.size,
        p.bid,
        p.bid_size,
        p.ask,
        p.ask_size,
    )
    vol, qvol, cap, chg = p.volume_24h, p.quote_volume_24h, p.market_cap, p.change_24h_pct
    net, con, pool, tx, qsize = (
        p.network,
        p.contract_address,
        p.pool_address,
        p.tx_hash,
        p.quote_size,
    )
    row = (
        event_time,
        eid,
        src,
        kind,
        market,
        sym,
        base,
        quote,
        aid,
        nat,
        price,
        size,
        side,
        tid,
        bid,
        bid_size,
        ask,
        ask_size,
        vol,
        qvol,
        cap,
        chg,
        net,
        con,
        pool,
        tx,
        qsize,
        revision,
        received_at,
    )
    onchain = f"{net or ''}{con or ''}{pool or ''}{tx or ''}"
    if _special(f"{eid}{src}{sym}{base}{quote}{aid or ''}{nat or ''}{tid or ''}{onchain}"):
        eid, src, sym, base, quote = (
            escape(eid),
            escape(src),
            escape(sym),
            escape(base),
            escape(quote),
        )
        aid = None if aid is None else escape(aid)
        nat = None if nat is None else escape(nat)
        tid = None if tid is None else escape(tid)
        net, con = (None if net is None else escape(net)), (None if con is None else escape(con))
        pool, tx = (None if pool is None else escape(pool)), (None if tx is None else escape(tx))
    n = NULL
    line = (
        f"{et if _canonical_ts(et) else timestamp(event_time)}\t{eid}\t{src}\t{kind}\t"
        f"{n if market is None else market}\t{sym}\t"
        f"{base}\t{quote}\t{n if aid is None else aid}\t{n if nat is None else nat}\t"
        f"{n if price is None else price}\t{n if size is None else size}\t"
        f"{n if side is None else side}\t{n if tid is None else tid}\t"
        f"{n if bid is None else bid}\t{n if bid_size is None else bid_size}\t"
        f"{n if ask is None else ask}\t{n if ask_size is None else ask_size}\t"
        f"{n if vol is None else vol}\t{n if qvol is None else qvol}\t"
        f"{n if cap is None else cap}\t{n if chg is None else chg}\t"
        f"{n if net is None else net}\t{n if con is None else con}\t"
        f"{n if pool is None else pool}\t{n if tx is None else tx}\t"
        f"{n if qsize is None else qsize}\t{revision}\t"
        f"{ra if _canonical_ts(ra) else timestamp(received_at)}\n"
    )
    return row, line


def price_rows_from_json(value: bytes) -> list[tuple[Table, Row]] | None:
    """The fast path's row in the shape and types of ``rows.event_rows`` (decimal text as
    ``Decimal``), for comparing both paths; not used on the hot path."""
    entry = price_entry_from_json(value)
    if entry is None:
        return None
    row = tuple(
        Decimal(v) if c in DECIMAL_COLUMNS and v is not None else v
        for c, v in zip(PRICES.columns, entry[0], strict=True)
    )
    return [(PRICES, row)]
