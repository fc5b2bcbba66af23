"""Dead-letter headers carry reason, error class and origin, and read back the same."""

from coinstream.schemas import DeadLetter


def test_headers_round_trip() -> None:
    letter = DeadLetter(
        reason="price is not a number: 'abc'",
        error_class="ParseError",
        origin_topic="coinstream.raw.binance.v1",
        origin_partition=2,
        origin_offset=41,
        service="normalizer",
    )
    headers = letter.to_headers()
    names = [k for k, _ in headers]
    assert {
        "dlq.reason",
        "dlq.error_class",
        "dlq.origin.topic",
        "dlq.origin.partition",
        "dlq.origin.offset",
    } <= set(names)
    back = DeadLetter.from_headers(headers)
    assert (
        back.reason,
        back.error_class,
        back.origin_topic,
        back.origin_partition,
        back.origin_offset,
        back.service,
    ) == (letter.reason, "ParseError", "coinstream.raw.binance.v1", 2, 41, "normalizer")
    assert back.failed_at is not None
