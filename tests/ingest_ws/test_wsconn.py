"""ChunkConnection: whole reads of messages to a callback, the rest left to websockets.

Against real servers on localhost: the websockets server (fragments, pings, close codes) and a
hand-written one that splits frames at awkward places and sends 16/64-bit lengths.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.metadata
import inspect
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import websockets
from packaging.requirements import Requirement
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.client import ClientProtocol
from websockets.protocol import CONNECTING
from websockets.uri import parse_uri

from coinstream.ingest_ws.wsconn import ChunkConnection

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def _collect(ws: ChunkConnection, count: int, timeout: float = 5.0) -> list[str]:
    got: list[str] = []
    done = asyncio.Event()

    def consume(messages: list[str]) -> None:
        got.extend(messages)
        if len(got) >= count:
            done.set()

    ws.attach(consume)
    await asyncio.wait_for(done.wait(), timeout)
    return got


async def _server(handler: Callable[[ServerConnection], Awaitable[None]]) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_messages_fragments_and_binary_arrive_in_order() -> None:
    """Plain, fragmented and binary messages all reach the consumer, in order, as text."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send("one")
        await ws.send(["fr", "ag", "mented"])  # three frames
        await ws.send(b"binary")
        await ws.send("x" * 70_000)  # 64-bit length
        await ws.send("é" * 300)  # 16-bit length, multi-byte UTF-8
        await ws.wait_closed()

    async for url in _server(handler):
        async with connect(url, create_connection=ChunkConnection) as ws:
            assert isinstance(ws, ChunkConnection)
            got = await _collect(ws, 5)
    assert got == ["one", "fragmented", "binary", "x" * 70_000, "é" * 300]


async def test_pings_are_answered_and_messages_before_attach_are_held() -> None:
    """The server's pings get pongs while no consumer is attached yet; messages wait for it."""
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        for i in range(3):
            await ws.send(f"m{i}")
            latencies.append(await asyncio.wait_for(await ws.ping(), 2))
        await ws.send("last")
        await ws.wait_closed()

    async for url in _server(handler):
        async with connect(url, create_connection=ChunkConnection) as ws:
            assert isinstance(ws, ChunkConnection)
            await asyncio.sleep(0.3)
            assert len(latencies) == 3  # answered before anyone consumed a message
            got = await _collect(ws, 4)
            pong = await asyncio.wait_for(await ws.ping(), 2)  # our keepalive path works too
    assert got == ["m0", "m1", "m2", "last"]
    assert pong >= 0


async def test_server_close_code_and_reason_are_kept() -> None:
    """A close frame from the server ends the connection with its code and reason."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send("bye soon")
        await ws.close(4000, "going away for a test")

    async for url in _server(handler):
        async with connect(url, create_connection=ChunkConnection) as ws:
            assert isinstance(ws, ChunkConnection)
            got = await _collect(ws, 1)
            await asyncio.wait_for(ws.wait_closed(), 5)
            exc = ws.close_exc
    assert got == ["bye soon"]
    assert exc.rcvd is not None and exc.rcvd.code == 4000
    assert exc.rcvd.reason == "going away for a test"


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        return head + bytes([n]) + payload
    if n < 65536:
        return head + bytes([126]) + struct.pack("!H", n) + payload
    return head + bytes([127]) + struct.pack("!Q", n) + payload


async def _raw_server(body: list[bytes], piece: int) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A minimal server: real handshake, then ``body`` written ``piece`` bytes at a time;
    what the client sends afterwards is collected (raw bytes)."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        data = b"".join(body)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" + data[:3]
        )
        for n, i in enumerate(range(3, len(data), piece)):
            writer.write(data[i : i + piece])
            await writer.drain()
            if n % 8 == 0:
                await asyncio.sleep(0.0005)  # separate reads on the client side
        while True:  # collect what the client answers; close once it goes quiet
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                break
            if not chunk:
                break
            received.append(chunk)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}", received
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("piece", "big"), [(1, 300), (7, 3_000), (4096, 70_000)])
async def test_frames_split_across_reads_are_reassembled(piece: int, big: int) -> None:
    """Headers and payloads cut at any byte (even inside the handshake reply) parse the same;
    a ping in between is answered with a masked pong carrying its payload."""
    body = [
        _frame(0x1, b"first"),
        _frame(0x9, b"ping-1"),
        _frame(0x1, b"a" * 300),
        _frame(0x2, b"b" * big),
        _frame(0x1, b"par", fin=False),
        _frame(0x0, b"ts"),
        _frame(0x1, b"last"),
    ]
    sent = b""
    async for url, received in _raw_server(body, piece):
        async with connect(url, create_connection=ChunkConnection, compression=None) as ws:
            assert isinstance(ws, ChunkConnection)
            got = await _collect(ws, 5, timeout=20)
            await asyncio.sleep(0.1)  # the pong reaches the server
            sent = b"".join(received)
    assert got == ["first", "a" * 300, "b" * big, "parts", "last"]
    assert sent[0] == 0x8A and sent[1] == 0x80 | 6  # FIN+pong, masked, 6 bytes
    mask, payload = sent[2:6], sent[6:12]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) == b"ping-1"


async def test_invalid_utf8_fails_the_connection_with_1007() -> None:
    """A text frame that is not UTF-8 closes the connection (1007), as websockets would."""
    body = [_frame(0x1, b"ok"), _frame(0x1, b"\xff\xfe bad")]
    async for url, _ in _raw_server(body, 4096):
        async with connect(url, create_connection=ChunkConnection, compression=None) as ws:
            assert isinstance(ws, ChunkConnection)
            got: list[str] = []
            ws.attach(got.extend)
            await asyncio.wait_for(ws.wait_closed(), 5)
            exc = ws.close_exc
    assert got == ["ok"]
    assert exc.sent is not None and exc.sent.code == 1007


async def test_refused_upgrade_with_a_late_body_fails_promptly() -> None:
    """A 503 whose body arrives in a later read is reported at once (InvalidStatus), not after
    the open timeout."""
    from websockets.exceptions import InvalidStatus

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\nbusy")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(b" server")
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(InvalidStatus) as info:
            await connect(
                f"ws://127.0.0.1:{port}", create_connection=ChunkConnection, open_timeout=10
            )
        assert info.value.response.status_code == 503
        assert info.value.response.body == b"busy server"
        assert loop.time() - start < 3
    finally:
        server.close()
        await server.wait_closed()


async def test_a_failing_consumer_drops_the_connection_and_is_reported() -> None:
    """A bug in the consumer is not swallowed: the connection is dropped, the error kept."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send("boom")
        await ws.wait_closed()

    def consume(messages: list[str]) -> None:
        raise ValueError(f"cannot handle {messages}")

    async for url in _server(handler):
        async with connect(url, create_connection=ChunkConnection) as ws:
            assert isinstance(ws, ChunkConnection)
            ws.attach(consume)
            await asyncio.wait_for(ws.wait_closed(), 5)
            error = ws.consumer_error
    assert isinstance(error, ValueError) and "boom" in str(error)


# -- the websockets internals ChunkConnection relies on -------------------------------------
# ChunkConnection overrides or calls methods of websockets.asyncio.connection.Connection that
# are not part of websockets' documented API. The pyproject bounds websockets below the next
# major version; these tests fail as soon as an installed version moves or renames a hook, and
# the behaviour tests above show the hooks still do what ChunkConnection expects.
HOOKS = {
    # name on ClientConnection -> parameters (self first)
    "data_received": ["self", "data"],
    "process_event": ["self", "event"],
    "send_data": ["self"],
    "acknowledge_pings": ["self", "data"],
}


def test_the_connection_hooks_chunkconnection_uses_still_exist() -> None:
    for name, params in HOOKS.items():
        hook = getattr(ClientConnection, name, None)
        assert callable(hook), f"websockets {websockets.__version__}: {name} is gone"
        assert list(inspect.signature(hook).parameters) == params, name
    overridden = {
        n for n, v in vars(ChunkConnection).items() if callable(v) and not n.startswith("__")
    }
    own = {"get_buffer", "buffer_updated", "attach"}
    inherited_overrides = {n for n in overridden if hasattr(ClientConnection, n)}
    assert inherited_overrides <= set(HOOKS) | own, "a new override must be listed in HOOKS"


def test_the_sans_io_protocol_offers_what_chunkconnection_reads() -> None:
    """ClientProtocol (public, sans-I/O) has the state, extensions, size limit and fail()."""
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1:1/"), max_size=1234)
    assert protocol.state is CONNECTING
    assert protocol.extensions == []
    assert protocol.max_message_size == 1234
    assert list(inspect.signature(protocol.fail).parameters)[:2] == ["code", "reason"]


def test_installed_websockets_is_within_the_declared_range() -> None:
    requirement = next(
        Requirement(r)
        for r in importlib.metadata.requires("coinstream-ingest-ws") or []
        if r.startswith("websockets")
    )
    assert requirement.specifier.contains(websockets.__version__), requirement
    assert any(s.operator == "<" for s in requirement.specifier), "an upper bound is required"
