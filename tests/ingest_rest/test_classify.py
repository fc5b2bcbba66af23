"""Responses are classified by provider error bodies, HTTP status, JSON validity, envelope."""

import json
from datetime import UTC, datetime

import pytest

from coinstream.ingest_rest.classify import NOT_JSON, classify, decode, parse_retry_after
from coinstream.ingest_rest.source import expect_dict, expect_list
from coinstream.ingest_rest.sources.cmc_dex import SOURCE as DEX
from coinstream.ingest_rest.sources.coingecko import SOURCE as CG
from coinstream.ingest_rest.sources.coinmarketcap import SOURCE as CMC
from coinstream.ingest_rest.sources.coinmarketcap import seconds_until_reset
from coinstream.ingest_rest.sources.feargreed import SOURCE as FNG

NOW = datetime(2024, 4, 7, 12, 0, 0, tzinfo=UTC)
CG_429 = (
    '{"status":{"error_code":429,"error_message":"You\'ve exceeded the Rate Limit. Please visit '
    "https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate "
    'limits."}}'
)


def cmc_body(code: int, message: str = "x") -> object:
    status = {
        "timestamp": "2018-06-02T22:51:28.209Z",
        "error_code": code,
        "error_message": message,
        "elapsed": 10,
        "credit_count": 0,
    }
    return decode(json.dumps({"status": status}))


def test_retry_after_seconds_http_date_and_ratelimit_reset() -> None:
    assert parse_retry_after({"Retry-After": "119"}, NOW) == 119.0
    assert parse_retry_after({"retry-after": "Sun, 07 Apr 2024 12:00:30 GMT"}, NOW) == 30.0
    assert parse_retry_after({"x-ratelimit-reset": "2024-04-07 12:01:00 +0000"}, NOW) == 60.0
    assert parse_retry_after({"x-ratelimit-reset": str(NOW.timestamp() + 5)}, NOW) == 5.0
    assert parse_retry_after({"Retry-After": "soon"}, NOW) is None
    assert parse_retry_after({}, NOW) is None


def test_coingecko_json_429_honours_retry_after() -> None:
    out = classify(CG, 429, {"retry-after": "2"}, decode(CG_429), expect_dict())
    assert out.kind == "rate_limited" and out.retry_after_s == 2.0
    assert "exceeded the Rate Limit" in out.reason


def test_coingecko_cloudflare_html_429_is_rate_limited_not_dead_lettered() -> None:
    html = "<!DOCTYPE html><html><title>Access denied</title>Error 1015</html>"
    out = classify(CG, 429, {"Retry-After": "3"}, decode(html), expect_dict())
    assert out.kind == "rate_limited" and out.retry_after_s == 3.0


@pytest.mark.parametrize("code", [10002, 10005, 10010, 10011])
def test_coingecko_key_and_plan_errors_stop_the_source(code: int) -> None:
    body = decode(json.dumps({"status": {"error_code": code, "error_message": "API Key Missing"}}))
    out = classify(CG, 401, {}, body, expect_dict())
    assert out.kind == "auth" and "INGEST_REST_COINGECKO__API_KEY" in out.reason


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_and_timeouts_are_transient(status: int) -> None:
    assert classify(FNG, status, {}, decode("<html>oops</html>"), expect_dict()).kind == "transient"


def test_cmc_error_code_is_checked_even_on_http_200() -> None:
    out = classify(CMC, 200, {}, cmc_body(1006, "plan"), expect_dict("status", "data"))
    assert out.kind == "auth" and "1006" in out.reason
    assert "INGEST_REST_COINMARKETCAP__API_KEY" in out.reason


@pytest.mark.parametrize("code", [1001, 1002, 1003, 1004, 1005, 1007])
def test_cmc_credential_codes_stop_the_source(code: int) -> None:
    assert classify(DEX, 401, {}, cmc_body(code), expect_list).kind == "auth"


def test_cmc_minute_limit_uses_retry_after_when_present_else_default() -> None:
    with_header = classify(CMC, 429, {"Retry-After": "7"}, cmc_body(1008), expect_dict())
    assert with_header.kind == "rate_limited" and with_header.retry_after_s == 7.0
    without = classify(CMC, 429, {}, cmc_body(1011), expect_dict())
    assert without.kind == "rate_limited" and without.retry_after_s is None


def test_cmc_daily_and_monthly_limits_wait_for_the_documented_reset() -> None:
    assert seconds_until_reset(1009, NOW) == 12 * 3600
    assert (
        seconds_until_reset(1010, NOW) == (datetime(2024, 5, 1, tzinfo=UTC) - NOW).total_seconds()
    )
    out = classify(CMC, 429, {}, cmc_body(1009), expect_dict())
    assert out.kind == "rate_limited" and out.retry_after_s is not None and out.retry_after_s > 0


def test_cmc_bad_parameter_is_rejected_not_retried() -> None:
    assert classify(CMC, 400, {}, cmc_body(400, "bad id"), expect_dict()).kind == "rejected"


def test_malformed_json_and_unexpected_envelope_are_invalid() -> None:
    assert decode('{"data": [') is NOT_JSON
    out = classify(FNG, 200, {}, decode('{"data": ['), expect_dict("data"))
    assert out.kind == "invalid" and "not valid JSON" in out.reason
    out = classify(CG, 200, {}, decode('{"unexpected": 1}'), expect_list)
    assert out.kind == "invalid" and "unexpected envelope" in out.reason


def test_valid_bodies_are_ok() -> None:
    ok_cmc = decode('{"status": {"error_code": 0, "error_message": null}, "data": []}')
    assert classify(CMC, 200, {}, ok_cmc, expect_dict("status", "data")).ok
    assert classify(CG, 200, {}, decode("[]"), expect_list).ok
    assert classify(DEX, 200, {}, decode('{"data": []}'), DEX.endpoints()[0].validate).ok
    assert classify(DEX, 200, {}, decode("[]"), DEX.endpoints()[0].validate).ok


def test_feargreed_metadata_error_is_rejected() -> None:
    body = decode('{"name": "Fear and Greed Index", "data": [], "metadata": {"error": "bad"}}')
    assert classify(FNG, 200, {}, body, expect_dict("data")).kind == "rejected"
