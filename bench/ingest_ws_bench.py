"""Benchmark: messages/s from the simulator through ingest-ws into Kafka, vs a bare client.

In one run, against one simulator process (Binance combined stream, as fast as it can send):

1. a bare ``websockets`` client in this process counts the frames it receives for D seconds;
2. ingest-ws runs as its own process (``python -m coinstream.ingest_ws``) with the same
   streams, publishing to the broker; its rate is what Kafka acknowledged
   (``ingest_ws_published_total``) over D seconds, scraped from its /metrics.

Rounds alternate bare / ingest-ws so machine noise hits both. Then ingest-ws keeps running for
``--soak`` seconds while its RSS is sampled, to show memory does not grow. Finally every
acknowledged record is counted back from the topic.

    .venv/bin/python bench/ingest_ws_bench.py [--duration 10] [--rounds 2] [--soak 40]

Uses the local Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
import uuid
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.ports import free_port, wait_for_port
from coinstream.runtime import KafkaSettings, ensure_topics
from coinstream.schemas import Topics

SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "PEPE-USDT"]
CHANNELS = ["trade", "bookTicker"]


def streams() -> str:
    return "/".join(f"{s.replace('-', '').lower()}@{c}" for s in SYMBOLS for c in CHANNELS)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


async def bare_rate(ws_url: str, duration: float, sim_pid: int) -> float:
    """Frames/s a plain websockets client receives (no parsing, like the library's own loop)."""
    async with connect(f"{ws_url}/binance/stream?streams={streams()}") as ws:
        for _ in range(1000):  # warm up
            await ws.recv()
        count = 0
        end = time.monotonic() + duration
        start = time.monotonic()
        cpu0, sim0 = time.process_time(), cpu_s(sim_pid)
        while time.monotonic() < end:
            await ws.recv()
            count += 1
        dt = time.monotonic() - start
        cpu = time.process_time() - cpu0
        print(
            f"         CPU use (of one core): simulator {(cpu_s(sim_pid) - sim0) / dt:.0%}, "
            f"bare client {cpu / dt:.0%} ({cpu / max(count, 1) * 1e6:.1f} us per frame)",
            flush=True,
        )
        return count / dt


async def scrape(http: aiohttp.ClientSession, port: int) -> dict[str, float]:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    out: dict[str, float] = {}
    for name in (
        "ingest_ws_published_total",
        "ingest_ws_dropped_total",
        "ingest_ws_buffered_messages",
    ):
        out[name] = sum(
            float(m.group(1))
            for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
        )
    rx = [
        float(m.group(1))
        for m in re.finditer(
            r'^ingest_ws_messages_total\{kind="data",venue="binance"\} ([0-9.e+]+)$',
            text,
            re.MULTILINE,
        )
    ]
    out["received"] = rx[0] if rx else 0.0
    return out


async def ingest_rate(
    http: aiohttp.ClientSession, port: int, duration: float, pids: dict[str, int]
) -> tuple[float, float, float]:
    """(acked records/s, received frames/s, dropped/s) over ``duration`` from its metrics."""
    a = await scrape(http, port)
    cpu0 = {name: cpu_s(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    await asyncio.sleep(duration)
    b = await scrape(http, port)
    dt = time.monotonic() - t0
    used = {n: cpu_s(p) - cpu0[n] for n, p in pids.items()}
    load = ", ".join(f"{n} {cpu / dt:.0%}" for n, cpu in used.items())
    frames = max(b["received"] - a["received"], 1)
    per_frame = used["ingest-ws"] / frames * 1e6
    print(
        f"         CPU use (of one core): {load} (ingest-ws {per_frame:.1f} us per frame)",
        flush=True,
    )
    acked = (b["ingest_ws_published_total"] - a["ingest_ws_published_total"]) / dt
    dropped = (b["ingest_ws_dropped_total"] - a["ingest_ws_dropped_total"]) / dt
    return acked, (b["received"] - a["received"]) / dt, dropped


async def start_service(
    env_base: dict[str, str], sim_ws: str, port: int, kafka: KafkaSettings
) -> asyncio.subprocess.Process:
    env = {
        **env_base,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "KAFKA_LINGER_MS": "5",
        "INGEST_WS_HTTP__HOST": "127.0.0.1",
        "INGEST_WS_HTTP__PORT": str(port),
        "INGEST_WS_BINANCE__URL": f"{sim_ws}/binance",
        "INGEST_WS_BINANCE__SYMBOLS": str(SYMBOLS).replace("'", '"'),
        "INGEST_WS_BINANCE__CHANNELS": str(CHANNELS).replace("'", '"'),
        "INGEST_WS_COINBASE__ENABLED": "false",
        "INGEST_WS_KRAKEN__ENABLED": "false",
        "INGEST_WS_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coinstream.ingest_ws", env=env
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            await asyncio.sleep(0.05)
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                continue
    proc.kill()
    raise RuntimeError("ingest-ws did not become ready")


async def main(args: argparse.Namespace) -> None:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None if external else TansuBroker()
    if broker is not None:
        broker.start()
    bootstrap = external or broker.bootstrap  # type: ignore[union-attr]
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap, topic_prefix=prefix, enable_idempotence=False
    )
    topics = Topics(prefix)
    await ensure_topics(kafka, topics.specs())
    sim_port = free_port()
    env_base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "INGEST_WS_"))}
    sim = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coinstream.marketsim",
        "--port",
        str(sim_port),
        "--rate",
        str(args.rate),
        "--seed",
        "1",
        stdout=asyncio.subprocess.DEVNULL,
    )
    svc: asyncio.subprocess.Process | None = None
    try:
        wait_for_port("127.0.0.1", sim_port)
        sim_ws = f"ws://127.0.0.1:{sim_port}"
        if args.firehose:
            async with aiohttp.ClientSession() as http:
                body = {"name": "binance.firehose", "value": True}
                async with http.post(f"http://127.0.0.1:{sim_port}/_sim/faults", json=body) as r:
                    r.raise_for_status()
        port = free_port()
        bare: list[float] = []
        ingest: list[float] = []
        received: list[float] = []
        async with aiohttp.ClientSession() as http:
            for i in range(args.rounds):
                bare.append(await bare_rate(sim_ws, args.duration, sim.pid))
                print(
                    f"round {i + 1}: bare websockets client   {bare[-1]:>9.0f} msgs/s", flush=True
                )
                if svc is None:
                    svc = await start_service(env_base, sim_ws, port, kafka)
                    await asyncio.sleep(2)  # warm up
                else:
                    svc.send_signal(18)  # SIGCONT
                    await asyncio.sleep(1)
                pids = {"simulator": sim.pid, "ingest-ws": svc.pid}
                if broker is not None and broker.pid is not None:
                    pids["broker"] = broker.pid
                acked, rx, dropped = await ingest_rate(http, port, args.duration, pids)
                ingest.append(acked)
                received.append(rx)
                print(
                    f"round {i + 1}: ingest-ws -> Kafka (acked) {acked:>9.0f} msgs/s "
                    f"(received {rx:.0f}/s, dropped {dropped:.0f}/s)",
                    flush=True,
                )
                if i + 1 < args.rounds:
                    svc.send_signal(19)  # SIGSTOP: the bare client runs alone
            assert svc is not None
            samples = [(0.0, rss_mb(svc.pid))]
            before = await scrape(http, port)
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.soak:
                await asyncio.sleep(args.soak / 8)
                samples.append((time.monotonic() - t0, rss_mb(svc.pid)))
            final = await scrape(http, port)
            soak_s = time.monotonic() - t0
        svc.send_signal(15)
        code = await asyncio.wait_for(svc.wait(), 30)
        svc = None
        acked_total = int(final["ingest_ws_published_total"])
        records = await read_topic(
            kafka,
            topics.raw("binance"),
            min_records=acked_total,
            timeout=max(120.0, acked_total / 40_000),  # long soaks: millions of records
        )
        b, g = sum(bare) / len(bare), sum(ingest) / len(ingest)
        print()
        print(
            f"bare websockets client: {b:>9.0f} msgs/s (rounds: {', '.join(f'{x:.0f}' for x in bare)})"
        )
        print(
            f"ingest-ws -> Kafka:     {g:>9.0f} msgs/s (rounds: {', '.join(f'{x:.0f}' for x in ingest)})"
        )
        print(f"ratio ingest/bare:      {g / b:>9.2f} (target >= 0.6)")
        print(
            "ingest-ws RSS (MB) over the soak: "
            + ", ".join(f"{t:.0f}s={m:.1f}" for t, m in samples)
        )
        rss = [m for _, m in samples]
        soak_acked = final["ingest_ws_published_total"] - before["ingest_ws_published_total"]
        print(
            f"soak: {soak_acked / soak_s:.0f} msgs/s acked over {soak_s:.0f} s; RSS change "
            f"{rss[-1] - rss[0]:+.1f} MB (first to last sample, range {min(rss):.1f}-"
            f"{max(rss):.1f}); dropped in the whole run: {final['ingest_ws_dropped_total']:.0f}"
        )
        print(f"exit code after SIGTERM: {code}; acked {acked_total}, read back {len(records)}")
    finally:
        if svc is not None:
            svc.kill()
            await svc.wait()
        sim.terminate()
        await sim.wait()
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--soak", type=float, default=40.0, help="seconds of RSS sampling")
    parser.add_argument("--rate", type=float, default=1.0, help="sim market trades/s/instrument")
    parser.add_argument(
        "--no-firehose",
        dest="firehose",
        action="store_false",
        help="use the market model's rate instead of the simulator's firehose mode",
    )
    asyncio.run(main(parser.parse_args()))
