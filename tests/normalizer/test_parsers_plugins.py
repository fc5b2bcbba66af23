"""Parsers are plugins: the ``coinstream.normalizer.parsers`` entry-point group drives dispatch."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from coinstream.normalizer.core import Normalizer
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import BUILTIN, GROUP, ParserPlugin, load_parsers
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.runtime import KafkaSettings
from coinstream.schemas import PriceEvent, decode_event

from .normalizer_helpers import raw

PLUGIN = """
from coinstream.schemas.fastprice import event_id
from coinstream.normalizer.parsers.common import price
from coinstream.normalizer.values import loads, to_decimal


def parse(env, registry, hint=None):
    d = loads(env.payload)
    inst = registry.instrument("examplex", d["pair"], hint)
    return [price(
        kind="trade", source="examplex", event_id=event_id("trade", "examplex", d["id"]),
        event_time=env.received_at, received_at=env.received_at, symbol=inst.symbol,
        base=inst.base, quote=inst.quote, asset_id=inst.asset_id, native_symbol=inst.native,
        price=to_decimal(d["px"]), trade_id=str(d["id"]),
    )]
"""


@pytest.fixture
def plugin_dist(tmp_path: Path) -> Iterator[str]:
    """An installed distribution (dist-info metadata on sys.path) registering source
    ``examplex`` in the parser group, as ``pip install`` of a plugin package would."""
    module = f"examplex_parser_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(PLUGIN)
    info = tmp_path / "examplex_parser-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: examplex-parser\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nexamplex = {module}:parse\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield module
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)


def test_builtin_parsers_are_registered_in_the_entry_point_group() -> None:
    """The installed package registers every built-in source through the group itself."""
    registered = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    assert set(BUILTIN) <= set(registered)
    assert registered["cmc-dex"] == "coinstream.normalizer.parsers.cmc_dex:PLUGIN"
    assert load_parsers()["binance"] is BUILTIN["binance"]


def test_plugins_declare_whether_their_trades_feed_candles() -> None:
    """Exchanges declare venue trades; aggregators do not (the core reads only this)."""
    declared = {name: p.venue_trades for name, p in BUILTIN.items()}
    assert {name for name, v in declared.items() if v} == {"binance", "coinbase", "kraken"}
    assert all(isinstance(p, ParserPlugin) for p in BUILTIN.values())


def test_a_bare_parse_callable_declares_no_venue_trades() -> None:
    """A plugin registering only ``parse`` publishes its trades but feeds no candles."""
    settings = NormalizerSettings(
        kafka=KafkaSettings(bootstrap_servers="localhost:1", topic_prefix="t")
    )
    core = Normalizer(
        settings, settings.kafka.topics, Registry(), parsers={"binance": BUILTIN["binance"].parse}
    )
    out = []
    for i in range(3):
        trade = {
            "e": "trade",
            "E": 1_712_508_600_000 + i * 70_000,
            "s": "BTCUSDT",
            "t": i,
            "p": "100",
            "q": "1",
            "T": 1_712_508_600_000 + i * 70_000,
            "m": False,
        }
        value = raw("binance", "btcusdt@trade", {"stream": "btcusdt@trade", "data": trade})
        outputs, letter = core.process("t.raw.binance.v1", 0, i, b"binance:BTC-USDT", value)
        assert letter is None
        out += outputs
    assert {o.topic for o in out} == {"t.prices.v1", "t.metadata.v1"}  # no candles
    assert not any(b"consolidated" in o.value for o in out)


def test_a_parser_registered_through_the_group_is_loaded_and_used(plugin_dist: str) -> None:
    """A new source plugs in with one entry point: the core dispatches its records to it."""
    parsers = load_parsers()
    assert parsers["examplex"].parse.__module__ == plugin_dist
    assert set(BUILTIN) <= set(parsers)
    settings = NormalizerSettings(
        kafka=KafkaSettings(bootstrap_servers="localhost:1", topic_prefix="t")
    )
    core = Normalizer(settings, settings.kafka.topics, Registry())  # loads the group itself
    value = raw("examplex", "trades", {"pair": "ETH/USD", "id": 7, "px": "3001.5"})
    outputs, letter = core.process("t.raw.examplex.v1", 0, 0, b"examplex:trades", value)
    assert letter is None
    event = decode_event(outputs[0].value)
    assert isinstance(event, PriceEvent)
    assert (event.source, event.symbol, str(event.price)) == ("examplex", "ETH-USD", "3001.5")


def test_an_unknown_source_without_a_plugin_is_dead_lettered() -> None:
    settings = NormalizerSettings(
        kafka=KafkaSettings(bootstrap_servers="localhost:1", topic_prefix="t")
    )
    core = Normalizer(settings, settings.kafka.topics, Registry(), parsers=BUILTIN)
    outputs, letter = core.process("t", 0, 0, None, raw("examplex", "trades", {"pair": "X"}))
    assert outputs == [] and letter is not None
    assert "no parser for source 'examplex'" in letter.reason


def test_a_broken_plugin_is_skipped_and_builtins_stay(tmp_path: Path) -> None:
    info = tmp_path / "broken_parser-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-parser\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nbinance = no_such_module_xyz:parse\n")
    sys.path.insert(0, str(tmp_path))
    try:
        parsers = load_parsers()
    finally:
        sys.path.remove(str(tmp_path))
    assert parsers["binance"] is BUILTIN["binance"]
