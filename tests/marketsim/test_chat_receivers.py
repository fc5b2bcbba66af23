"""The simulator's chat receivers answer like Slack, Telegram, Discord and a JSON webhook."""

from __future__ import annotations

import aiohttp
import pytest

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.marketsim.telegram import EntityError, parse_html, parse_markdown_v2

TOKEN = "123456:ABC-def_ghi"


async def test_slack_chat_post_message_checks_auth_channel_and_records() -> None:
    async with SimServer(Market(rate=0, seed=1)) as server, aiohttp.ClientSession() as http:
        url = f"{server.base_url}/slack/api/chat.postMessage"
        async with http.post(url, json={"channel": "#a", "text": "hi"}) as r:
            assert (await r.json())["error"] == "not_authed"
        auth = {"Authorization": "Bearer xoxb-1"}
        async with http.post(url, json={"channel": "#a", "text": "hi"}, headers=auth) as r:
            body = await r.json()
            assert body["ok"] is True and body["channel"] == "#a" and body["ts"]
        async with http.post(url, json={"channel": "#missing", "text": "x"}, headers=auth) as r:
            assert (await r.json())["error"] == "channel_not_found"
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "b"}}]
        async with http.post(url, json={"channel": "#a", "blocks": blocks}, headers=auth) as r:
            assert (await r.json())["warning"] == "missing_text_in_blocks"
        big = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
        async with http.post(
            url, json={"channel": "#a", "text": "t", "blocks": big}, headers=auth
        ) as r:
            assert (await r.json())["error"] == "invalid_blocks"
    assert [m["channel"] for m in server.sim.recordings["slack_api"]] == ["#a", "#a"]


async def test_slack_429_faults_set_retry_after_once_or_several_times() -> None:
    async with SimServer(Market(rate=0, seed=1)) as server, aiohttp.ClientSession() as http:
        server.sim.faults["slack.429"] = 3
        hook = f"{server.base_url}/slack/webhook/T/B/x"
        async with http.post(hook, json={"text": "a"}) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "3"
        async with http.post(hook, json={"text": "a"}) as r:
            assert r.status == 200
        server.sim.faults["slack_api.429"] = {"retry_after": 2, "times": 2}
        url = f"{server.base_url}/slack/api/chat.postMessage"
        auth = {"Authorization": "Bearer xoxb-1"}
        codes = []
        for _ in range(3):
            async with http.post(url, json={"channel": "#a", "text": "t"}, headers=auth) as r:
                codes.append(r.status)
        assert codes == [429, 429, 200]


async def test_telegram_send_message_parses_markdown_v2_and_html() -> None:
    async with SimServer(Market(rate=0, seed=1)) as server, aiohttp.ClientSession() as http:
        url = f"{server.base_url}/telegram/bot{TOKEN}/sendMessage"
        ok = {"chat_id": 42, "text": "*BTC\\-USDT* at 69000\\.5", "parse_mode": "MarkdownV2"}
        async with http.post(url, json=ok) as r:
            body = await r.json()
            assert (
                r.status == 200 and body["ok"] and body["result"]["text"] == "BTC-USDT at 69000.5"
            )
        bad = {"chat_id": 42, "text": "BTC-USDT at 69000.5", "parse_mode": "MarkdownV2"}
        async with http.post(url, json=bad) as r:
            body = await r.json()
            assert r.status == 400 and "reserved" in body["description"]
        html_ok = {"chat_id": 42, "text": "<b>x</b> &lt; y", "parse_mode": "HTML"}
        async with http.post(url, json=html_ok) as r:
            assert (await r.json())["result"]["text"] == "x < y"
        async with http.post(url, json={**html_ok, "text": "x < y"}) as r:
            assert r.status == 400
        async with http.post(url, json={"chat_id": 1, "text": "x" * 4097}) as r:
            assert (await r.json())["description"] == "Bad Request: message is too long"
        async with http.post(f"{server.base_url}/telegram/botnope/sendMessage", json=ok) as r:
            assert r.status == 401
    assert [m["plain"] for m in server.sim.recordings["telegram"]] == [
        "BTC-USDT at 69000.5",
        "x < y",
    ]


async def test_telegram_429_carries_parameters_retry_after() -> None:
    async with SimServer(Market(rate=0, seed=1)) as server, aiohttp.ClientSession() as http:
        server.sim.faults["telegram.429"] = 5
        url = f"{server.base_url}/telegram/bot{TOKEN}/sendMessage"
        async with http.post(url, json={"chat_id": 1, "text": "a"}) as r:
            body = await r.json()
        assert r.status == 429
        assert body == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 5",
            "parameters": {"retry_after": 5},
        }


@pytest.mark.parametrize(
    "text",
    ["a.b", "a-b", "(x)", "*open", "__u", "[link](http://x", "a!"],
)
def test_markdown_v2_parser_rejects_unescaped_or_unbalanced(text: str) -> None:
    with pytest.raises(EntityError):
        parse_markdown_v2(text)


def test_markdown_v2_parser_accepts_entities_and_escapes() -> None:
    assert (
        parse_markdown_v2("*b* _i_ __u__ ~s~ ||sp|| `c.d` [t](http://x\\)y)") == "b i u s sp c.d t"
    )
    assert parse_markdown_v2(">quote\\.") == "quote."
    with pytest.raises(EntityError):
        parse_html("<script>x</script>")
    assert parse_html("<a href='x'>l</a> &amp;") == "l &"


async def test_discord_webhook_limits_and_429() -> None:
    async with SimServer(Market(rate=0, seed=1)) as server, aiohttp.ClientSession() as http:
        url = f"{server.base_url}/discord/api/webhooks/1/tok"
        async with http.post(url, json={"content": "hi"}) as r:
            assert r.status == 204
        async with http.post(url + "?wait=true", json={"content": "hi"}) as r:
            assert r.status == 200 and (await r.json())["content"] == "hi"
        async with http.post(url, json={"content": "x" * 2001}) as r:
            assert r.status == 400 and (await r.json())["code"] == 50035
        async with http.post(url, json={}) as r:
            assert r.status == 400
        server.sim.faults["discord.429"] = 1.5
        async with http.post(url, json={"content": "hi"}) as r:
            body = await r.json()
            assert (
                r.status == 429 and body["retry_after"] == 1.5 and r.headers["Retry-After"] == "1.5"
            )
    assert len(server.sim.recordings["discord"]) == 2


async def test_generic_webhook_records_json_and_injects_faults() -> None:
    async with SimServer(Market(rate=0, seed=1)) as server, aiohttp.ClientSession() as http:
        url = f"{server.base_url}/webhook/alerts"
        server.sim.faults["webhook.500"] = 1
        async with http.post(url, json={"a": 1}) as r:
            assert r.status == 500
        async with http.post(url, json={"a": 1}, headers={"Authorization": "Bearer s"}) as r:
            assert r.status == 200
        async with http.post(url, json=[1]) as r:
            assert r.status == 400
        server.sim.faults["webhook.429"] = 2
        async with http.post(url, json={"a": 2}) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "2"
    rec = server.sim.recordings["webhook"]
    assert [m["body"] for m in rec] == [{"a": 1}]
    assert "Authorization" not in rec[0]["headers"]
