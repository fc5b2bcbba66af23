"""The simulator's SMTP receiver: a real SMTP server on its own port that records every
message (envelope, subject, Date header, body), like the chat receivers record posts."""

from __future__ import annotations

import asyncio
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiohttp
import pytest

from coinstream.devstack.ports import free_port, wait_for_port
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.marketsim.smtp import parse


def alert_mail(subject: str, html: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "coinstream-alerts@example.org"
    msg["To"] = "oncall@example.org, desk@example.org"
    msg["Subject"] = subject
    msg["Date"] = formatdate(1_780_000_000, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("BTC-USDT crossed 68000: last 69000.00 (binance)\n")
    if html:
        msg.add_alternative("<p>BTC-USDT crossed <b>68000</b></p>", subtype="html")
    return msg


def send(port: int, msg: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(msg, to_addrs=["oncall@example.org", "desk@example.org"])


async def recorded(base_url: str) -> list[dict[str, object]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/_sim/recordings/smtp") as r:
            return await r.json()  # type: ignore[no-any-return]


async def test_a_message_sent_with_smtplib_is_recorded_with_its_headers_and_body() -> None:
    firing = alert_mail("[FIRING] btc-above-68k")
    async with SimServer(Market(rate=0, seed=1)) as server:
        await asyncio.to_thread(send, server.smtp_port, firing)
        await asyncio.to_thread(send, server.smtp_port, alert_mail("[RESOLVED] x", html=True))
        messages = await recorded(server.base_url)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.base_url}/_sim/state") as r:
                state = await r.json()
    assert state["listening"] == {"smtp": f"127.0.0.1:{server.smtp_port}"}
    assert state["recordings"]["smtp"] == 2
    first, second = messages
    assert first["from"] == "coinstream-alerts@example.org"
    assert first["to"] == ["oncall@example.org", "desk@example.org"]
    assert first["subject"] == "[FIRING] btc-above-68k"
    assert first["date"] == str(firing["Date"]) == "Thu, 28 May 2026 20:26:40 +0000"
    assert first["body"] == "BTC-USDT crossed 68000: last 69000.00 (binance)\n"
    assert first["headers"]["Message-ID"].endswith("@example.org>")  # type: ignore[index]
    assert second["body"] == "BTC-USDT crossed 68000: last 69000.00 (binance)\n"  # plain part


async def test_reject_fault_answers_with_the_code_and_records_nothing() -> None:
    async with SimServer(Market(rate=0, seed=2)) as server:
        async with aiohttp.ClientSession() as http:
            fault = {"name": "smtp.reject", "value": {"code": 451, "times": 2}}
            async with http.post(f"{server.base_url}/_sim/faults", json=fault) as r:
                assert r.status == 200
        for _ in range(2):
            with pytest.raises(smtplib.SMTPDataError) as info:
                await asyncio.to_thread(send, server.smtp_port, alert_mail("x"))
            assert info.value.smtp_code == 451
        server.sim.faults["smtp.reject"] = 554
        with pytest.raises(smtplib.SMTPDataError) as info:
            await asyncio.to_thread(send, server.smtp_port, alert_mail("y"))
        assert info.value.smtp_code == 554
        await asyncio.to_thread(send, server.smtp_port, alert_mail("delivered"))
        assert [m["subject"] for m in await recorded(server.base_url)] == ["delivered"]
        assert len(server.sim.recordings["smtp.rejected"]) == 3


async def test_the_smtp_port_is_configurable_and_freed_on_close() -> None:
    port = free_port()
    async with SimServer(Market(rate=0, seed=3), smtp_port=port) as server:
        assert server.smtp_port == port
        await asyncio.to_thread(send, port, alert_mail("fixed port"))
    with pytest.raises(OSError):
        await asyncio.to_thread(send, port, alert_mail("after close"))


def test_parse_takes_the_plain_text_part() -> None:
    got = parse("a@example.org", ["b@example.org"], bytes(alert_mail("s", html=True)))
    assert got["subject"] == "s" and got["body"].startswith("BTC-USDT crossed 68000")
    assert got["to"] == ["b@example.org"] and got["from"] == "a@example.org"


def test_the_command_line_prints_where_the_smtp_receiver_listens() -> None:
    http_port, smtp_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "coinstream.marketsim", "--port", str(http_port),
           "--smtp-port", str(smtp_port), "--rate", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(2)]
        assert lines == [
            f"market simulator on http://127.0.0.1:{http_port}",
            f"SMTP receiver on 127.0.0.1:{smtp_port}",
        ]
        wait_for_port("127.0.0.1", smtp_port, timeout=5)
        send(smtp_port, alert_mail("from the CLI"))
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
