"""Delivery adapters against the simulator's real-protocol receivers and a local SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import trustme
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from coinstream.alerts.delivery import (
    Deliverer,
    RateLimiter,
    destination_of,
    min_interval_for,
    retry_after_header,
)
from coinstream.alerts.errors import DeliveryError
from coinstream.alerts.grouping import Notification
from coinstream.alerts.rules import parse_rules
from coinstream.alerts.settings import AlertsSettings, SmtpSettings
from coinstream.devstack.ports import free_port
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import ConfigurationError

TOKEN = "123456:secret-bot-token"

RULES = """
receivers:
  hook: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL}
  bot: {type: slack_api, token_env: ALERTS_SLACK_BOT_TOKEN, channel: "#alerts"}
  tg: {type: telegram, token_env: ALERTS_TELEGRAM_BOT_TOKEN, chat_id: -1001}
  tg_html: {type: telegram, token_env: ALERTS_TELEGRAM_BOT_TOKEN, chat_id: 7, parse_mode: HTML}
  discord: {type: discord, url_env: ALERTS_DISCORD_WEBHOOK_URL}
  json: {type: webhook, url_env: ALERTS_WEBHOOK_URL}
  mail: {type: email, to: [ops@example.org]}
"""

TRICKY = "BTC-USDT crossed above 68000.5 (+2.1%) <b>&_*[x]!"


def notification(summary: str = TRICKY, n: int = 1) -> Notification:
    alerts: list[dict[str, Any]] = [
        {
            "fingerprint": f"fp{i}",
            "rule_id": "btc-above-68k",
            "rule_type": "price_threshold",
            "severity": "critical",
            "subject": "BTC-USDT",
            "summary": summary,
            "labels": {"alertname": "btc-above-68k", "symbol": "BTC-USDT"},
            "receivers": [],
            "status": "firing",
            "value": "69000.5",
            "threshold": "68000",
            "active_since": 1_760_000_000.0,
            "fired_at": 1_760_000_000.0,
            "ends_at": None,
            "send_resolved": True,
            "repeat_interval": None,
        }
        for i in range(n)
    ]
    return Notification("n1", "x", "k", {"alertname": "btc-above-68k"}, alerts, [], 1_760_000_000.0)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(Market(rate=0, seed=1)) as server:
        yield server


class _Sink:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Sink]]:
    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


def make(sim: SimServer, client: httpx.AsyncClient, smtp_port: int = 1) -> Deliverer:
    base = sim.base_url
    secrets = {
        "ALERTS_SLACK_WEBHOOK_URL": f"{base}/slack/webhook/T1/B1/topsecret",
        "ALERTS_SLACK_BOT_TOKEN": "xoxb-topsecret",
        "ALERTS_TELEGRAM_BOT_TOKEN": TOKEN,
        "ALERTS_DISCORD_WEBHOOK_URL": f"{base}/discord/api/webhooks/9/topsecret",
        "ALERTS_WEBHOOK_URL": f"{base}/webhook/alerts",
    }
    settings = AlertsSettings(
        receiver_secrets={k: SecretStr(v) for k, v in secrets.items()},
        slack_api_url=f"{base}/slack/api",
        telegram_api_url=f"{base}/telegram",
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, from_addr="alerts@example.org"),
    )
    return Deliverer(settings, client)


RECEIVERS = parse_rules(RULES).receivers


async def test_every_receiver_delivers_and_the_destination_accepts_the_escaping(
    sim: SimServer, smtp: tuple[int, _Sink]
) -> None:
    """Slack (webhook and API), Telegram (MarkdownV2 and HTML), Discord, webhook and e-mail."""
    port, sink = smtp
    async with httpx.AsyncClient() as client:
        d = make(sim, client, port)
        for name, receiver in RECEIVERS.items():
            await d.deliver(name, receiver, notification())
    rec = sim.sim.recordings
    assert "&lt;b&gt;&amp;" in rec["slack"][0]["body"]["text"]
    api = rec["slack_api"][0]
    assert api["channel"] == "#alerts" and api["body"]["text"] and api["body"]["blocks"]
    assert api["warning"] is None
    plains = [m["plain"] for m in rec["telegram"]]
    assert len(plains) == 2 and all(TRICKY in p for p in plains)
    assert rec["telegram"][0]["body"]["parse_mode"] == "MarkdownV2"
    assert rec["telegram"][1]["body"]["parse_mode"] == "HTML"
    assert "\\_\\*\\[x\\]" in rec["discord"][0]["body"]["content"]
    assert rec["webhook"][0]["body"]["alerts"][0]["summary"] == TRICKY
    assert len(sink.messages) == 1
    envelope = sink.messages[0]
    assert envelope.rcpt_tos == ["ops@example.org"] and envelope.mail_from == "alerts@example.org"
    assert "FIRING:1" in envelope.content.decode()


async def test_long_messages_are_truncated_and_still_accepted(sim: SimServer) -> None:
    async with httpx.AsyncClient() as client:
        d = make(sim, client)
        big = notification("x" * 300, n=200)
        for name in ("hook", "bot", "tg", "tg_html", "discord"):
            await d.deliver(name, RECEIVERS[name], big)
    rec = sim.sim.recordings
    assert all("more" in m["plain"] for m in rec["telegram"])
    assert "more" in rec["discord"][0]["body"]["content"]


@pytest.mark.parametrize(
    ("name", "fault", "value", "expected"),
    [
        ("hook", "slack.429", 3, 3.0),
        ("bot", "slack_api.429", 2, 2.0),
        ("tg", "telegram.429", 7, 7.0),
        ("discord", "discord.429", 1.5, 1.5),
        ("json", "webhook.429", 4, 4.0),
    ],
)
async def test_429_is_retriable_with_the_destinations_retry_after(
    sim: SimServer, name: str, fault: str, value: float, expected: float
) -> None:
    sim.sim.faults[fault] = value
    async with httpx.AsyncClient() as client:
        d = make(sim, client)
        with pytest.raises(DeliveryError) as info:
            await d.deliver(name, RECEIVERS[name], notification())
        assert info.value.retriable and info.value.retry_after == expected
        await d.deliver(name, RECEIVERS[name], notification())  # then it goes through


async def test_rejections_are_permanent_and_errors_never_contain_secrets(sim: SimServer) -> None:
    async with httpx.AsyncClient() as client:
        d = make(sim, client)
        d.settings.receiver_secrets["ALERTS_SLACK_BOT_TOKEN"] = SecretStr("bad-topsecret")
        with pytest.raises(DeliveryError) as info:
            await d.deliver("bot", RECEIVERS["bot"], notification())
        assert not info.value.retriable and "invalid_auth" in str(info.value)
        assert "topsecret" not in str(info.value)
        d.settings.receiver_secrets["ALERTS_TELEGRAM_BOT_TOKEN"] = SecretStr("nonsense")
        with pytest.raises(DeliveryError) as info:
            await d.deliver("tg", RECEIVERS["tg"], notification())
        assert "nonsense" not in str(info.value)
        sim.sim.faults["webhook.500"] = 1
        with pytest.raises(DeliveryError) as info:
            await d.deliver("json", RECEIVERS["json"], notification())
        assert info.value.retriable


async def test_unreachable_destination_is_retriable_without_leaking_the_url() -> None:
    settings = AlertsSettings(
        receiver_secrets={
            "ALERTS_SLACK_WEBHOOK_URL": SecretStr(f"http://127.0.0.1:{free_port()}/topsecret")
        }
    )
    async with httpx.AsyncClient() as client:
        with pytest.raises(DeliveryError) as info:
            await Deliverer(settings, client).deliver("hook", RECEIVERS["hook"], notification())
    assert info.value.retriable and "topsecret" not in str(info.value)


async def test_missing_secret_is_a_configuration_error_naming_the_variable() -> None:
    async with httpx.AsyncClient() as client:
        d = Deliverer(AlertsSettings(receiver_secrets={}), client)
        with pytest.raises(ConfigurationError, match="ALERTS_SLACK_WEBHOOK_URL"):
            d.check(parse_rules(RULES))


def test_retry_after_header_forms_and_rate_limiter() -> None:
    assert retry_after_header("12") == 12.0
    assert retry_after_header("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_header(None) is None and retry_after_header("soon") is None
    lim = RateLimiter(1.0)
    lim.sent(100.0)
    assert lim.ready_at() == 101.0
    lim.block(130.0)
    assert lim.ready_at() == 130.0


def test_default_rate_limits_per_destination() -> None:
    """Slack 1/s per channel; Telegram 1/s per chat and 3 s (20/min) in groups."""
    rules = parse_rules(RULES)
    assert min_interval_for(rules.receivers["hook"]) == 1.0
    assert min_interval_for(rules.receivers["bot"]) == 1.0
    assert min_interval_for(rules.receivers["tg"]) == 3.0  # chat -1001 is a group
    assert min_interval_for(rules.receivers["tg_html"]) == 1.0
    assert destination_of("tg", rules.receivers["tg"]) != destination_of(
        "tg_html", rules.receivers["tg_html"]
    )


# ------------------------------------------------------------------------ SMTP over TLS
class _Auth:
    """Accepts one user; records the logins it saw."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture(scope="module")
def ca() -> Any:
    """A certificate authority made for this test run, and a server certificate from it."""
    return trustme.CA()


def _tls_server(ca: Any, *, implicit: bool) -> tuple[Controller, _Sink, _Auth, int]:
    import ssl

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    sink, auth, port = _Sink(), _Auth(), free_port()
    if implicit:
        controller = Controller(
            sink,
            hostname="127.0.0.1",
            port=port,
            ssl_context=server_ctx,
            authenticator=auth,
            auth_require_tls=False,  # the whole connection is TLS
        )
    else:
        controller = Controller(
            sink,
            hostname="127.0.0.1",
            port=port,
            tls_context=server_ctx,
            require_starttls=True,
            authenticator=auth,
        )
    controller.start()
    return controller, sink, auth, port


def _mailer(port: int, ca_file: str | None, **smtp: Any) -> Deliverer:
    settings = AlertsSettings(
        receiver_secrets={},
        smtp=SmtpSettings(
            host="127.0.0.1",
            port=port,
            from_addr="alerts@example.org",
            username="alerts",
            password=SecretStr("s3cret"),
            ca_file=ca_file,
            timeout_s=5,
            **smtp,
        ),
    )
    return Deliverer(settings, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["starttls", "use_tls"])
async def test_email_over_tls_verifies_the_server_against_the_configured_ca(
    ca: Any, tmp_path: Any, mode: str
) -> None:
    """STARTTLS (port 587 style, the server requires it) and implicit TLS (465 style), both
    against a local server whose certificate comes from a CA made in this test: the message
    arrives, the login happened inside TLS, and the mail has a Date header."""
    controller, sink, auth, port = _tls_server(ca, implicit=mode == "use_tls")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        await _mailer(port, str(ca_file), **{mode: True}).deliver(
            "mail", RECEIVERS["mail"], notification()
        )
    finally:
        controller.stop()
    assert len(sink.messages) == 1 and auth.logins == ["alerts"]
    content = sink.messages[0].content.decode()
    assert "FIRING:1" in content and "\nDate: " in content.replace("\r\n", "\n")


@pytest.mark.parametrize("mode", ["starttls", "use_tls"])
async def test_email_refuses_a_server_certificate_it_cannot_verify(ca: Any, mode: str) -> None:
    """By default only the system's CAs are trusted: a self-signed server is refused before
    any password is sent, and the error says what to do (retried, never dropped)."""
    controller, sink, auth, port = _tls_server(ca, implicit=mode == "use_tls")
    try:
        with pytest.raises(DeliveryError) as info:
            await _mailer(port, None, **{mode: True}).deliver(
                "mail", RECEIVERS["mail"], notification()
            )
    finally:
        controller.stop()
    assert info.value.retriable and "certificate not trusted" in str(info.value)
    assert sink.messages == [] and auth.logins == []


def test_smtp_settings_refuse_two_tls_modes_at_once() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not both"):
        SmtpSettings(use_tls=True, starttls=True)
