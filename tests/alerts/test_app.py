"""The service end to end on the real broker and PostgreSQL, delivering to the simulator."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import aiohttp
import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import AlertEvent, Topics, decode_event

from .alerts_helpers import price, produce, service_settings, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

RULES = """
grouping: {group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
receivers:
  slack: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL, min_interval_s: 0}
rules:
  - id: btc-above-68k
    type: price_threshold
    symbols: [BTC-USDT]
    direction: above
    threshold: 68000
    rearm_amount: 250
    receivers: [slack]
"""


async def test_price_crossing_posts_to_slack_and_records_state_changes(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    """BTC-USDT going from 67000 to 69000 fires once, posts to Slack, publishes firing+notified."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    async with SimServer(Market(rate=0, seed=1)) as sim:
        hook = f"{sim.base_url}/slack/webhook/T0/B0/secret"
        settings = service_settings(
            kafka_settings, rules, database_url, {"ALERTS_SLACK_WEBHOOK_URL": hook}
        )
        await run_service(settings)
        now = time.time()
        await produce(
            kafka_settings,
            topics.prices,
            [
                price("BTC-USDT", 67000, absolute=now),
                price("BTC-USDT", 69000, absolute=now + 0.1),
                price("BTC-USDT", 69100, absolute=now + 0.2),
            ],
        )
        posts = await wait_until(lambda: sim.sim.recordings.get("slack"))
        assert posts and len(posts) == 1
        body = posts[0]["body"]
        assert "btc-above-68k" in body["text"] and "BTC-USDT" in body["text"]
        assert body["blocks"][0]["type"] == "header"
        records = await read_topic(
            kafka_settings,
            topics.alerts,
            until=lambda recs: any(b'"notified"' in r.value for r in recs),
            timeout=10,
        )
        events = [decode_event(r.value) for r in records]
        assert all(isinstance(e, AlertEvent) for e in events)
        statuses = [e.status for e in events if isinstance(e, AlertEvent)]
        assert statuses.count("firing") == 1 and "notified" in statuses
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{settings.http.port}/api/v1/alerts") as r:
                alerts = await r.json()
            async with http.get(f"http://127.0.0.1:{settings.http.port}/metrics") as r:
                text = await r.text()
        assert [a["status"] for a in alerts] == ["firing"]
        assert "alerts_notifications_sent_total" in text


DEMO_RULES = Path(__file__).resolve().parents[2] / "deploy" / "local" / "alert-rules.yaml"

GROUPED = """
grouping: {group_wait: 0.5s, group_interval: 1s, repeat_interval: 1h}
receivers:
  slack: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL, min_interval_s: 0.2}
  tg: {type: telegram, token_env: ALERTS_TELEGRAM_BOT_TOKEN, chat_id: 42}
rules:
  - id: usdt-dip
    type: price_threshold
    symbols: ["*-USDT"]
    direction: below
    threshold: 100
    receivers: [slack, tg]
"""


def _secrets(sim: SimServer) -> dict[str, str]:
    return {
        "ALERTS_SLACK_WEBHOOK_URL": f"{sim.base_url}/slack/webhook/T0/B0/secret",
        "ALERTS_TELEGRAM_BOT_TOKEN": "123456:abc-DEF",
    }


async def test_market_wide_move_sends_one_message_per_receiver_and_partition(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    """Twenty symbols falling below the threshold: each receiver gets every alert exactly once,
    grouped into one message per partition of prices.v1 that holds some of them (work and
    outbox are partitioned by symbol so replicas can share them)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(GROUPED)
    async with SimServer(Market(rate=0, seed=1)) as sim:
        settings = service_settings(
            kafka_settings,
            rules,
            database_url,
            _secrets(sim),
            telegram_api_url=f"{sim.base_url}/telegram",
        )
        await run_service(settings)
        now = time.time()
        symbols = [f"C{i}-USDT" for i in range(20)]
        await produce(
            kafka_settings,
            topics.prices,
            [price(s, 90, absolute=now + i * 0.01) for i, s in enumerate(symbols)],
        )
        rec = sim.sim.recordings
        partitions = 3  # the prices topic's partitions in these tests

        def firing(channel: str) -> list[str]:
            texts = [
                m["plain"] if "plain" in m else m["body"]["text"] for m in rec.get(channel, [])
            ]
            return [s for text in texts for s in symbols if f"{s}:" in text]

        await wait_until(
            lambda: len(firing("slack")) == 20 and len(firing("telegram")) == 20, timeout=20
        )
        await asyncio.sleep(1.5)  # nothing else may follow
        for channel in ("slack", "telegram"):
            assert sorted(firing(channel)) == sorted(symbols), channel
            assert 1 <= len(rec[channel]) <= partitions


async def test_429_with_retry_after_delays_then_delivers_exactly_once(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    """Slack answers 429 Retry-After: 1 and Telegram retry_after 1: both arrive once, later."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(GROUPED.replace("group_wait: 0.5s", "group_wait: 0s"))
    async with SimServer(Market(rate=0, seed=1)) as sim:
        sim.sim.faults["slack.429"] = 1
        sim.sim.faults["telegram.429"] = 1
        settings = service_settings(
            kafka_settings,
            rules,
            database_url,
            _secrets(sim),
            telegram_api_url=f"{sim.base_url}/telegram",
        )
        await run_service(settings)
        sent = time.time()
        await produce(kafka_settings, topics.prices, [price("A-USDT", 90, absolute=sent)])
        rec = sim.sim.recordings
        await wait_until(lambda: rec.get("slack") and rec.get("telegram"), timeout=15)
        assert "slack.429" not in sim.sim.faults and "telegram.429" not in sim.sim.faults
        assert rec["slack"][0]["received_at"] - sent >= 1.0
        assert rec["telegram"][0]["received_at"] - sent >= 1.0
        await asyncio.sleep(0.5)
        assert len(rec["slack"]) == 1 and len(rec["telegram"]) == 1


SINGLE = RULES.replace("group_wait: 0s", "group_wait: 0s")


async def _outbox(settings_port: int) -> dict[str, int]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{settings_port}/api/v1/outbox") as r:
            return await r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("how", ["sigterm", "crash"])
async def test_restart_in_the_middle_neither_duplicates_nor_loses(
    kafka_settings: KafkaSettings,
    topics: Topics,
    database_url: str,
    tmp_path: Path,
    run_service,
    how: str,
) -> None:
    """The notification waits out a 429 when the service stops (or is killed); the next
    instance delivers it exactly once and does not fire the alert again."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(SINGLE)
    async with SimServer(Market(rate=0, seed=1)) as sim:
        sim.sim.faults["slack.429"] = 3  # the first attempt is told to wait 3 s
        secrets = {"ALERTS_SLACK_WEBHOOK_URL": f"{sim.base_url}/slack/webhook/T0/B0/secret"}
        settings = service_settings(kafka_settings, rules, database_url, secrets)
        first = await run_service(settings)
        now = time.time()
        await produce(
            kafka_settings,
            topics.prices,
            [price("BTC-USDT", 67000, absolute=now), price("BTC-USDT", 69000, absolute=now + 0.1)],
        )
        assert await wait_until(lambda: "slack.429" not in sim.sim.faults)
        assert await wait_until(lambda: _outbox(settings.http.port))
        if how == "sigterm":
            await first.stop()
        else:
            assert first.task is not None
            first.task.cancel()
            await asyncio.gather(first.task, return_exceptions=True)
        assert sim.sim.recordings.get("slack") is None
        # more prices above the threshold arrive while it is down, then it comes back
        await produce(
            kafka_settings,
            topics.prices,
            [
                price("BTC-USDT", 69500, absolute=now + 1),
                price("BTC-USDT", 69600, absolute=now + 2),
            ],
        )
        settings2 = service_settings(kafka_settings, rules, database_url, secrets)
        await run_service(settings2)
        posts = await wait_until(lambda: sim.sim.recordings.get("slack"), timeout=15)
        await asyncio.sleep(1.0)
        assert posts is not None and len(posts) == 1
        records = await read_topic(kafka_settings, topics.alerts, min_records=10, timeout=3)
        events = [decode_event(r.value) for r in records]
        statuses = [e.status for e in events if isinstance(e, AlertEvent)]
        assert statuses.count("firing") == 1
        assert statuses.count("notified") == 1


async def test_reload_with_a_bad_file_keeps_the_old_rules(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    async with SimServer(Market(rate=0, seed=1)) as sim:
        secrets = {"ALERTS_SLACK_WEBHOOK_URL": f"{sim.base_url}/slack/webhook/T0/B0/secret"}
        settings = service_settings(kafka_settings, rules, database_url, secrets)
        await run_service(settings)
        url = f"http://127.0.0.1:{settings.http.port}"
        rules.write_text(RULES.replace("threshold: 68000", "threshold: lots"))
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/-/reload") as r:
                body = await r.json()
                assert r.status == 400
                assert "rule 'btc-above-68k' (rules[0]) field 'threshold'" in body["error"]
        now = time.time()
        await produce(kafka_settings, topics.prices, [price("BTC-USDT", 69000, absolute=now)])
        assert await wait_until(lambda: sim.sim.recordings.get("slack"))
        rules.write_text(RULES.replace("threshold: 68000", "threshold: 70000"))
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/-/reload") as r:
                assert r.status == 200 and (await r.json())["rules"] == 1
            async with http.get(url + "/api/v1/alerts") as r:
                assert await r.json() == []  # the changed rule's alert resolved


async def test_silence_added_over_http_suppresses_notifications(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(GROUPED.replace("group_wait: 0.5s", "group_wait: 0s"))
    async with SimServer(Market(rate=0, seed=1)) as sim:
        settings = service_settings(
            kafka_settings,
            rules,
            database_url,
            _secrets(sim),
            telegram_api_url=f"{sim.base_url}/telegram",
        )
        await run_service(settings)
        url = f"http://127.0.0.1:{settings.http.port}/api/v1/silences"
        async with aiohttp.ClientSession() as http:
            bad = {"matchers": [{"name": "symbol", "value": "(", "op": "=~"}]}
            async with http.post(url, json=bad) as r:
                assert r.status == 400
            silence = {
                "matchers": [{"name": "symbol", "value": "A-.*", "op": "=~"}],
                "duration": "10m",
                "comment": "maintenance",
            }
            async with http.post(url, json=silence) as r:
                assert r.status == 201
                silence_id = (await r.json())["id"]
            now = time.time()
            await produce(
                kafka_settings,
                topics.prices,
                [price("A-USDT", 90, absolute=now), price("B-USDT", 90, absolute=now + 1)],
            )
            posts = await wait_until(lambda: sim.sim.recordings.get("slack"))
            await asyncio.sleep(0.5)
            assert len(posts) == 1 and "B-USDT" in posts[0]["body"]["text"]
            assert "A-USDT" not in posts[0]["body"]["text"]
            records = await read_topic(
                kafka_settings,
                topics.alerts,
                until=lambda recs: any(b'"silenced"' in r.value for r in recs),
                timeout=5,
            )
            assert any(b'"silenced"' in r.value for r in records)
            async with http.delete(f"{url}/{silence_id}") as r:
                assert r.status == 200
            async with http.get(url + "?active=1") as r:
                assert await r.json() == []


TWO_RULES = """
grouping: {group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
receivers:
  slack: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL}
rules:
  - {id: a-high, type: price_threshold, symbols: [A-USDT], direction: above, threshold: 10,
     receivers: [slack]}
  - {id: b-high, type: price_threshold, symbols: [B-USDT], direction: above, threshold: 10,
     receivers: [slack]}
  - {id: c-high, type: price_threshold, symbols: [C-USDT], direction: above, threshold: 10,
     receivers: [slack]}
"""


async def test_slack_channel_gets_at_most_one_message_per_second(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    """Three groups firing together reach one Slack webhook about a second apart."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(TWO_RULES)
    async with SimServer(Market(rate=0, seed=1)) as sim:
        secrets = {"ALERTS_SLACK_WEBHOOK_URL": f"{sim.base_url}/slack/webhook/T0/B0/x"}
        await run_service(service_settings(kafka_settings, rules, database_url, secrets))
        now = time.time()
        await produce(
            kafka_settings,
            topics.prices,
            [price(s, 11, absolute=now) for s in ("A-USDT", "B-USDT", "C-USDT")],
        )
        posts = await wait_until(
            lambda: len(sim.sim.recordings.get("slack", [])) >= 3 and sim.sim.recordings["slack"],
            timeout=10,
        )
        times = [p["received_at"] for p in posts]
        assert len(times) == 3
        assert all(b - a >= 0.95 for a, b in itertools.pairwise(times))


async def test_demo_rules_file_alerts_slack_within_seconds_of_btc_passing_68000(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, run_service
) -> None:
    """What `make demo` relies on: deploy/local/alert-rules.yaml, BTC-USDT 67000 -> 69000."""
    rules = DEMO_RULES
    async with SimServer(Market(rate=0, seed=1)) as sim:
        secrets = {"ALERTS_SLACK_WEBHOOK_URL": f"{sim.base_url}/slack/webhook/T000/B000/demo"}
        await run_service(service_settings(kafka_settings, rules, database_url, secrets))
        now = time.time()
        await produce(
            kafka_settings,
            topics.prices,
            [
                price("BTC-USDT", 67000, absolute=now, source="binance"),
                price("BTC-USDT", 69000, absolute=now + 0.5, source="binance"),
            ],
        )
        posts = await wait_until(lambda: sim.sim.recordings.get("slack"), timeout=10)
        assert posts, "no Slack message"
        assert posts[0]["received_at"] - now < 5
        assert "btc-above-68k" in posts[0]["body"]["text"]
        assert "69000" in posts[0]["body"]["text"]


HOOKED = """
grouping: {group_by: [alertname, symbol], group_wait: 0s, group_interval: 100ms,
           repeat_interval: 1h}
receivers:
  hook: {type: webhook, url_env: ALERTS_WEBHOOK_URL}
rules:
  - {id: a-high, type: price_threshold, symbols: ['*-USDT'], direction: above,
     threshold: THRESHOLD, receivers: [hook]}
"""


def _hook_alerts(sim: SimServer) -> list[tuple[str, str, str]]:
    return [
        (a["subject"], a["status"], a["summary"])
        for m in sim.sim.recordings.get("webhook", [])
        for a in m["body"]["alerts"]
    ]


async def test_a_rule_changed_across_a_restart_resolves_its_alert_with_a_notice(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(HOOKED.replace("THRESHOLD", "100"))
    async with SimServer(Market(rate=0, seed=1)) as sim:
        secrets = {"ALERTS_WEBHOOK_URL": f"{sim.base_url}/webhook/alerts"}
        first = await run_service(service_settings(kafka_settings, rules, database_url, secrets))
        await produce(kafka_settings, topics.prices, [price("A-USDT", 110, absolute=time.time())])
        assert await wait_until(lambda: _hook_alerts(sim))
        await first.stop()
        rules.write_text(HOOKED.replace("THRESHOLD", "200"))
        await run_service(service_settings(kafka_settings, rules, database_url, secrets))
        assert await wait_until(lambda: len(_hook_alerts(sim)) >= 2, timeout=15)
        await asyncio.sleep(0.5)
    [fired, resolved] = _hook_alerts(sim)
    assert fired[:2] == ("A-USDT", "firing") and resolved[:2] == ("A-USDT", "resolved")
    assert "rule a-high changed or removed while stopped" in resolved[2]


async def test_deleting_a_silence_announces_an_alert_still_firing(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    """Fired while silenced: nothing sent. The silence is deleted: FIRING arrives."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(HOOKED.replace("THRESHOLD", "100"))
    async with SimServer(Market(rate=0, seed=1)) as sim:
        secrets = {"ALERTS_WEBHOOK_URL": f"{sim.base_url}/webhook/alerts"}
        settings = service_settings(kafka_settings, rules, database_url, secrets)
        await run_service(settings)
        url = f"http://127.0.0.1:{settings.http.port}/api/v1/silences"
        async with aiohttp.ClientSession() as http:
            body = {"matchers": [{"name": "symbol", "value": "A-USDT"}], "duration": "1h"}
            async with http.post(url, json=body) as r:
                assert r.status == 201
                created = await r.json()
            assert created["ends_at"].endswith("Z")  # RFC 3339, like every other time
            await produce(
                kafka_settings,
                topics.prices,
                [
                    price("A-USDT", 110, absolute=time.time()),
                    price("B-USDT", 110, absolute=time.time()),
                ],
            )
            assert await wait_until(lambda: _hook_alerts(sim))  # B's
            await asyncio.sleep(0.5)
            assert [a[:2] for a in _hook_alerts(sim)] == [("B-USDT", "firing")]
            async with http.delete(f"{url}/{created['id']}") as r:
                assert r.status == 200
        assert await wait_until(lambda: len(_hook_alerts(sim)) >= 2, timeout=10)
        await asyncio.sleep(0.3)
        assert [a[:2] for a in _hook_alerts(sim)] == [("B-USDT", "firing"), ("A-USDT", "firing")]


async def test_a_fresh_instance_replaying_history_sends_no_resolved_it_never_announced(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    """History: many alerts fired and resolved before this instance existed. It reads it all;
    a receiver may hear of a firing it replays, but never of a resolve without the firing."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(HOOKED.replace("THRESHOLD", "100"))
    past = time.time() - 3600
    history = []
    for i in range(30):
        history.append(price(f"H{i}-USDT", 110, absolute=past + i))
        history.append(price(f"H{i}-USDT", 90, absolute=past + i + 0.5))
    history.append(price("NOW-USDT", 110, absolute=past + 100))  # still firing at the end
    await produce(kafka_settings, topics.prices, history)
    async with SimServer(Market(rate=0, seed=1)) as sim:
        secrets = {"ALERTS_WEBHOOK_URL": f"{sim.base_url}/webhook/alerts"}
        await run_service(service_settings(kafka_settings, rules, database_url, secrets))
        assert await wait_until(
            lambda: ("NOW-USDT", "firing") in [a[:2] for a in _hook_alerts(sim)]
        )
        await asyncio.sleep(1.0)
    told: set[str] = set()
    for subject, status, _ in _hook_alerts(sim):
        if status == "firing":
            told.add(subject)
        else:
            assert subject in told, f"RESOLVED {subject} without a FIRING"
            told.discard(subject)
