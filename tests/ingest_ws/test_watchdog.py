"""Idle watchdog: learned or configured cadence per stream, connection silence (pure)."""

from __future__ import annotations

from coinstream.ingest_ws.watchdog import Thresholds, Watchdog

STREAMS = (("trade", "BTC-USDT"), ("bookTicker", "BTC-USDT"))


def dog(fixed: dict[str, float] | None = None) -> Watchdog:
    return Watchdog(
        STREAMS,
        Thresholds(min_s=2, max_s=60, factor=10, first_message_s=30, fixed=fixed or {}),
        Thresholds(min_s=1, max_s=20, factor=5, first_message_s=20),
        now=0,
    )


def feed(w: Watchdog, stream: tuple[str, str], start: float, interval: float, n: int) -> float:
    t = start
    for _ in range(n):
        w.frame(t)
        w.touch(stream, t)
        t += interval
    return t - interval


def test_busy_stream_is_caught_within_seconds() -> None:
    w = dog()
    last = feed(w, STREAMS[0], 0, 0.1, 50)  # 10 msgs/s -> threshold clamps to min 2 s
    assert w.threshold(STREAMS[0]) == 2
    assert STREAMS[0] not in [r.stream for r in w.check(last + 1.9)]
    reports = [r.stream for r in w.check(last + 2.1)]
    assert STREAMS[0] in reports


def test_quiet_market_gets_a_long_learned_threshold() -> None:
    w = dog()
    last = feed(w, STREAMS[0], 0, 4.0, 20)  # one trade every 4 s -> 40 s threshold
    assert 35 < w.threshold(STREAMS[0]) <= 60
    assert all(r.stream != STREAMS[0] for r in w.check(last + 20))


def test_configured_threshold_overrides_learning() -> None:
    w = dog(fixed={"bookTicker": 0.5})
    assert w.threshold(STREAMS[1]) == 0.5


def test_stale_is_reported_once_and_touch_reports_the_resume() -> None:
    w = dog()
    last = feed(w, STREAMS[0], 0, 0.1, 20)
    assert len([r for r in w.check(last + 3) if r.stream == STREAMS[0]]) == 1
    assert [r for r in w.check(last + 4) if r.stream == STREAMS[0]] == []
    assert w.stale_count() >= 1
    resumed = w.touch(STREAMS[0], last + 5)
    assert resumed == 5  # idle since the last message


def test_stream_that_never_delivers_uses_first_message_timeout() -> None:
    w = dog()
    assert w.check(29) == []
    assert {r.stream for r in w.check(31)} == set(STREAMS)


def test_connection_silence_uses_the_learned_frame_cadence() -> None:
    w = dog()
    assert w.silence_limit() == 20  # nothing learned yet: the maximum
    last = feed(w, STREAMS[0], 0, 0.05, 20)
    assert w.silence_limit() == 1  # 5 x 0.05 clamped to min 1 s
    assert not w.silent(last + 0.9)
    assert w.silent(last + 1.1)


def test_restart_counts_silence_from_the_new_connection() -> None:
    w = dog()
    last = feed(w, STREAMS[0], 0, 0.05, 20)
    w.restart(last + 100)
    assert not w.silent(last + 100.5)
