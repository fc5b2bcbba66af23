"""Delivery adapters (HTTP via httpx, e-mail via aiosmtplib) and per-destination rate limits.

Each ``deliver`` raises ``DeliveryError`` with ``retriable`` and, for 429s, ``retry_after``.
Error messages never contain URLs or tokens: they name the receiver and the HTTP status only.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiosmtplib
import httpx

from coinstream.alerts import render
from coinstream.alerts.errors import DeliveryError
from coinstream.alerts.grouping import Notification
from coinstream.alerts.rules import (
    DiscordReceiver,
    EmailReceiver,
    Receiver,
    RulesFile,
    SlackApiReceiver,
    SlackWebhookReceiver,
    TelegramReceiver,
    WebhookReceiver,
)
from coinstream.alerts.settings import AlertsSettings, SmtpSettings
from coinstream.runtime import ConfigurationError, utc_now

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL = {
    "slack_webhook": 1.0,  # Slack: about one message per second per channel
    "slack_api": 1.0,
    "telegram": 1.0,  # 1/s per chat; groups: 20/min (see min_interval_for)
    "discord": 0.5,  # webhooks: 5 per 2 s
    "email": 0.0,
    "webhook": 0.0,
}


def min_interval_for(receiver: Receiver) -> float:
    if receiver.min_interval_s is not None:
        return receiver.min_interval_s
    if isinstance(receiver, TelegramReceiver) and receiver.is_group:
        return 3.0  # 20 messages per minute in a group
    return DEFAULT_MIN_INTERVAL[receiver.type]


def destination_of(name: str, receiver: Receiver) -> str:
    """The rate-limit key: one per channel/chat/webhook."""
    if isinstance(receiver, SlackApiReceiver):
        return f"slack_api:{receiver.token_env}:{receiver.channel}"
    if isinstance(receiver, TelegramReceiver):
        return f"telegram:{receiver.token_env}:{receiver.chat_id}"
    return f"{receiver.type}:{name}"


@dataclass
class RateLimiter:
    """Spacing between sends: ``ready_at()`` tells when the next send may go."""

    min_interval: float
    last_sent: float = float("-inf")
    blocked_until: float = float("-inf")

    def ready_at(self) -> float:
        return max(self.last_sent + self.min_interval, self.blocked_until)

    def sent(self, now: float) -> None:
        self.last_sent = now

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)


def retry_after_header(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utc_now()).total_seconds())
    except (TypeError, ValueError):
        return None


def secret_value(settings: AlertsSettings, env: str, receiver: str) -> str:
    value = settings.receiver_secrets.get(env)
    if value is None or not value.get_secret_value():
        raise ConfigurationError(
            f"receiver {receiver!r} needs environment variable {env}; set it to the "
            "webhook URL or token"
        )
    return value.get_secret_value()


def check_secrets(settings: AlertsSettings, rules: RulesFile) -> None:
    """Raise ``ConfigurationError`` naming the first receiver whose secret is not set."""
    for name, env in rules.secret_names().items():
        secret_value(settings, env, name)


class Deliverer:
    """Sends notifications to the configured receivers."""

    def __init__(self, settings: AlertsSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client

    def secret(self, env: str, receiver: str) -> str:
        return secret_value(self.settings, env, receiver)

    def check(self, rules: RulesFile) -> None:
        """Fail fast when a receiver's secret is missing."""
        check_secrets(self.settings, rules)

    async def deliver(self, name: str, receiver: Receiver, n: Notification) -> None:
        if isinstance(receiver, SlackWebhookReceiver):
            url = self.secret(receiver.url_env, name)
            await self._post_text(name, url, render.slack_payload(n), expect_ok_text=True)
        elif isinstance(receiver, SlackApiReceiver):
            token = self.secret(receiver.token_env, name)
            await self._slack_api(name, token, render.slack_payload(n, receiver.channel))
        elif isinstance(receiver, TelegramReceiver):
            token = self.secret(receiver.token_env, name)
            body = render.telegram_payload(n, receiver.chat_id, receiver.parse_mode)
            await self._telegram(name, token, body)
        elif isinstance(receiver, DiscordReceiver):
            url = self.secret(receiver.url_env, name)
            await self._post_text(name, url, render.discord_payload(n))
        elif isinstance(receiver, WebhookReceiver):
            url = self.secret(receiver.url_env, name)
            await self._post_text(name, url, render.webhook_payload(n))
        elif isinstance(receiver, EmailReceiver):
            await self._email(name, receiver, n)
        else:  # pragma: no cover - the union is exhaustive
            raise ConfigurationError(f"receiver {name!r}: unsupported type")

    async def _post(self, name: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.client.post(url, **kwargs)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{name}: {type(exc).__name__}", retriable=True) from None

    def _raise_for(self, name: str, response: httpx.Response, retry_after: float | None) -> None:
        status = response.status_code
        if status == 429:
            raise DeliveryError(f"{name}: HTTP 429", retriable=True, retry_after=retry_after)
        if status >= 500 or status == 408:
            raise DeliveryError(f"{name}: HTTP {status}", retriable=True)
        if status >= 400:
            detail = response.text[:200].replace("\n", " ")
            raise DeliveryError(f"{name}: HTTP {status} {detail}", retriable=False)

    async def _post_text(
        self, name: str, url: str, body: dict[str, Any], expect_ok_text: bool = False
    ) -> None:
        response = await self._post(name, url, json=body)
        retry_after = retry_after_header(response.headers.get("Retry-After"))
        if response.status_code == 429 and retry_after is None:
            retry_after = _json_retry_after(response)
        self._raise_for(name, response, retry_after)

    async def _slack_api(self, name: str, token: str, body: dict[str, Any]) -> None:
        url = self.settings.slack_api_url.rstrip("/") + "/chat.postMessage"
        headers = {"Authorization": f"Bearer {token}"}
        response = await self._post(name, url, json=body, headers=headers)
        self._raise_for(name, response, retry_after_header(response.headers.get("Retry-After")))
        try:
            data = response.json()
        except ValueError:
            raise DeliveryError(f"{name}: not a JSON answer", retriable=True) from None
        if not data.get("ok"):
            error = str(data.get("error", "unknown"))
            retriable = error in ("ratelimited", "internal_error", "service_unavailable")
            raise DeliveryError(f"{name}: Slack error {error}", retriable=retriable)

    async def _telegram(self, name: str, token: str, body: dict[str, Any]) -> None:
        url = f"{self.settings.telegram_api_url.rstrip('/')}/bot{token}/sendMessage"
        response = await self._post(name, url, json=body)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code == 429 or data.get("error_code") == 429:
            params = data.get("parameters") or {}
            retry = params.get("retry_after")
            raise DeliveryError(
                f"{name}: Telegram 429",
                retriable=True,
                retry_after=float(retry) if retry is not None else None,
            )
        self._raise_for(name, response, None)
        if not data.get("ok"):
            detail = str(data.get("description", "unknown"))[:200]
            raise DeliveryError(f"{name}: Telegram error {detail}", retriable=False)

    async def _email(self, name: str, receiver: EmailReceiver, n: Notification) -> None:
        """Send over SMTP: implicit TLS (``use_tls``) or STARTTLS, the server's certificate
        verified; async, so a shutdown cancels it cleanly."""
        smtp = self.settings.smtp
        msg = render.email_message(n, smtp.from_addr, receiver.to, receiver.subject_prefix)
        password = smtp.password.get_secret_value() if smtp.password is not None else None
        try:
            await aiosmtplib.send(
                msg,
                hostname=smtp.host,
                port=smtp.port,
                use_tls=smtp.use_tls,
                start_tls=smtp.starttls,
                tls_context=tls_context(smtp) if smtp.use_tls or smtp.starttls else None,
                username=smtp.username if password is not None else None,
                password=password,
                timeout=smtp.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            retriable = all(400 <= c < 500 for c in codes)
            raise DeliveryError(
                f"{name}: SMTP recipients refused {codes}", retriable=retriable
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            retriable = 400 <= exc.code < 500
            raise DeliveryError(f"{name}: SMTP {exc.code}", retriable=retriable) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{name}: SMTP {_smtp_failure(exc)}", retriable=True) from None


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    """Certificates verified against the system's CAs (or ``ca_file``), hostname checked."""
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    if not smtp.verify:
        log.warning("SMTP server certificate NOT verified (ALERTS_SMTP__VERIFY=false)")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _smtp_failure(exc: BaseException) -> str:
    """What went wrong, without addresses or secrets; says what to do about certificates."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return (
                "TLS certificate not trusted (check the server's certificate, or set "
                "ALERTS_SMTP__CA_FILE to its CA)"
            )
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def _json_retry_after(response: httpx.Response) -> float | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("retry_after") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else None
