"""The poison corpus against the pure cores, without I/O: every item is refused with a reason
(the chaos suite then feeds the same corpus to the running stack)."""

from __future__ import annotations

import pytest

from coinstream.normalizer.core import Normalizer
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.schemas import RAW_SOURCES, Topics, decode_event

from .corpus import canonical_corpus, raw_corpus

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("source", RAW_SOURCES)
def test_normalizer_refuses_every_raw_poison_with_a_reason(source: str) -> None:
    core = Normalizer(NormalizerSettings(), Topics("p"), Registry())
    other = "kraken" if source != "kraken" else "binance"
    for i, poison in enumerate(raw_corpus(source, other)):
        out, letter = core.process(f"p.raw.{source}.v1", 0, i, poison.key, poison.value)
        assert letter is not None, poison.name
        assert len(letter.reason) > 10 and "internal error" not in letter.reason, (
            poison.name,
            letter.reason,
        )
        assert not any(o.topic == "p.prices.v1" and b"1e400000" in o.value for o in out)


@pytest.mark.parametrize("kind", ["prices", "candles", "sentiment", "metadata"])
def test_models_refuse_every_canonical_poison(kind: str) -> None:
    for poison in canonical_corpus(kind):
        if poison.value is None:
            continue
        with pytest.raises(ValueError):
            decode_event(poison.value)
