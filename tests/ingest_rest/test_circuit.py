"""The circuit breaker opens after N failures, probes once after the open time, and closes."""

from coinstream.ingest_rest.circuit import PROBE_WAIT_S, CircuitBreaker


def test_opens_after_threshold_failures_in_a_row() -> None:
    cb = CircuitBreaker(threshold=3, open_s=10.0)
    assert cb.on_failure(0.0) is None
    cb.on_success(0.5)  # a success resets the count
    assert cb.on_failure(1.0) is None
    assert cb.on_failure(2.0) is None
    assert cb.on_failure(3.0) == "circuit_open"
    assert cb.state == "open"
    assert cb.before_request(5.0) == 8.0


def test_half_open_allows_one_probe_and_success_closes() -> None:
    cb = CircuitBreaker(threshold=1, open_s=10.0)
    cb.on_failure(0.0)
    assert cb.before_request(10.0) == 0.0  # the probe
    assert cb.state == "half_open"
    assert cb.before_request(10.1) == PROBE_WAIT_S  # others wait for its verdict
    assert cb.on_success(10.2) == "circuit_closed"
    assert cb.before_request(10.3) == 0.0 and str(cb.state) == "closed"


def test_failed_probe_reopens_with_doubled_open_time_capped() -> None:
    cb = CircuitBreaker(threshold=1, open_s=10.0, max_open_s=15.0)
    cb.on_failure(0.0)
    cb.before_request(10.0)
    assert cb.on_failure(10.5) is None  # still open: no new transition to report
    assert cb.state == "open"
    assert cb.before_request(11.0) == 14.5  # 15 s (20 capped) from 10.5
    cb.release_probe()
    assert cb.before_request(25.5) == 0.0


def test_released_probe_lets_another_caller_probe() -> None:
    cb = CircuitBreaker(threshold=1, open_s=1.0)
    cb.on_failure(0.0)
    assert cb.before_request(1.0) == 0.0
    cb.release_probe()
    assert cb.before_request(1.1) == 0.0
