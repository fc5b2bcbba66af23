"""SMTP receiver (aiosmtpd) on its own port, started and stopped with the simulator.

Listens on ``sim.host`` at ``sim.ports["smtp"]`` (0 or absent: any free port; the CLI option
``--smtp-port``) and puts the address it got in ``sim.listening["smtp"]`` (also in
``GET /_sim/state``). Accepts any sender and recipient without authentication or TLS, as a
local relay does, and records each message under ``smtp`` (``GET /_sim/recordings/smtp``):
envelope ``from`` and ``to``, ``subject`` (decoded), the ``Date`` header exactly as sent, the
text ``body`` (the plain-text part of a multipart message, with plain newlines), every header
as sent (unfolded), and ``received_at``.

Fault ``smtp.reject``: a reply code (``451``: transient, ``554``: permanent) for the next
message, or ``{"code": 451, "times": N}`` for the next N; rejected messages are not recorded.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from coinstream.marketsim.app import Simulator

NAME = "smtp"
REPLIES = {
    451: "451 4.3.0 Temporary failure (simulated), try again later",
    554: "554 5.7.1 Message rejected (simulated)",
}


def take_reject(sim: Simulator) -> int | None:
    """Consume one use of the ``smtp.reject`` fault; the reply code, or None."""
    value: Any = sim.faults.get("smtp.reject")
    if value is None:
        return None
    if isinstance(value, dict):
        code, times = int(value.get("code", 451)), int(value.get("times", 1))
        if times <= 1:
            sim.faults.pop("smtp.reject", None)
        else:
            sim.faults["smtp.reject"] = {**value, "times": times - 1}
        return code
    sim.faults.pop("smtp.reject", None)
    return int(value)


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    text = str(part.get_content()) if part is not None else ""
    return text.replace("\r\n", "\n")  # SMTP's CRLF line ends, as a reader writes them


def parse(mail_from: str | None, rcpt_tos: list[str], content: bytes) -> dict[str, Any]:
    """What the receiver records for one message (pure, for tests)."""
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # the default policy's message class
    raw = email.message_from_bytes(content, policy=email.policy.compat32)  # values as sent
    headers = {k: re.sub(r"\r?\n[ \t]", " ", str(v)) for k, v in raw.items()}
    subject = message.get("Subject")
    return {
        "from": mail_from,
        "to": list(rcpt_tos),
        "subject": None if subject is None else str(subject),
        "date": headers.get("Date"),
        "body": _body(message),
        "headers": headers,
        "received_at": time.time(),
    }


class Recorder:
    """The aiosmtpd handler: records each accepted message in ``sim.recordings["smtp"]``."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        code = take_reject(self.sim)
        if code is not None:
            self.sim.record("smtp.rejected", {"code": code, "to": list(envelope.rcpt_tos)})
            return REPLIES.get(code, f"{code} Rejected (simulated)")
        content = envelope.original_content or b""
        self.sim.record(NAME, parse(envelope.mail_from, envelope.rcpt_tos, content))
        return "250 2.0.0 OK: queued"


def setup(app: web.Application, sim: Simulator) -> None:
    async def listener(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        handler = Recorder(sim)
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="market-sim", loop=loop),
            host=sim.host,
            port=sim.ports.get(NAME, 0),
        )
        host, port = server.sockets[0].getsockname()[:2]
        sim.listening[NAME] = (str(host), int(port))
        try:
            yield
        finally:
            sim.listening.pop(NAME, None)
            server.close()
            await server.wait_closed()

    app.cleanup_ctx.append(listener)
