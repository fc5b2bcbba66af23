"""``coinstream-market-sim --port 8900 --rate 5 --smtp-port 8925`` (or ``python -m
coinstream.marketsim``): run the market simulator; it prints where it listens."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import signal
import sys
from collections.abc import Sequence

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer


async def _serve(args: argparse.Namespace) -> None:
    market = Market(rate=args.rate, seed=args.seed, aggregator_lag=args.aggregator_lag)
    server = SimServer(market, host=args.host, port=args.port, smtp_port=args.smtp_port)
    await server.start()
    print(f"market simulator on {server.base_url}", flush=True)
    print(f"SMTP receiver on {args.host}:{server.smtp_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="coinstream-market-sim",
        description="Simulate every Coinstream source (Binance, Coinbase, Kraken, CoinGecko, "
        "CoinMarketCap, CMC DEX, Fear & Greed) and chat receiver on one port and an SMTP "
        "receiver on another, with price, divergence, metadata and fault controls under /_sim/.",
    )
    version = importlib.metadata.version("coinstream-market-sim")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--rate", type=float, default=5.0, help="trades/s per instrument")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--smtp-port", type=int, default=0, help="SMTP receiver port (default: any free port)"
    )
    parser.add_argument(
        "--aggregator-lag",
        type=float,
        default=1.0,
        help="scale of the aggregators' lag behind the fair value (0: none)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
