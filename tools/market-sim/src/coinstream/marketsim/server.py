"""Run the simulator on a port: ``async with SimServer() as sim: sim.base_url``.

The SMTP receiver listens on ``smtp_port`` (0: any free port); ``sim.smtp_port`` is the one it
got once started."""

from __future__ import annotations

from aiohttp import web

from coinstream.marketsim.app import SIM_KEY, Simulator, create_app
from coinstream.marketsim.market import Market


class SimServer:
    def __init__(
        self,
        market: Market | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        run_market: bool = True,
        smtp_port: int = 0,
    ) -> None:
        self.app = create_app(market, run_market=run_market, host=host, ports={"smtp": smtp_port})
        self.host = host
        self.port = port
        self.smtp_port = smtp_port
        self._runner: web.AppRunner | None = None

    @property
    def sim(self) -> Simulator:
        return self.app[SIM_KEY]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # the port the system chose, from aiohttp's public view of it
            self.port = next(int(a[1]) for a in self._runner.addresses if isinstance(a, tuple))
        if "smtp" in self.sim.listening:
            self.smtp_port = self.sim.listening["smtp"][1]

    async def aclose(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
