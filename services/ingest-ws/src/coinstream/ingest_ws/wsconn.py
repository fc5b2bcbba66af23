"""A websockets client connection that hands whole read chunks of messages to a callback.

``websockets``' own ``ClientConnection`` parses every frame with a generator, queues each
message in an ``Assembler`` and wakes the reading task once per message: about 10 µs of CPU per
small frame. ``ChunkConnection`` keeps the library for everything that needs care (handshake,
keepalive pings and their timeout, answering pings, the closing handshake, close timeouts,
permessage-deflate, fragmented messages) and only takes the common case itself: after the
handshake, complete unfragmented text/binary frames without reserved bits are cut straight out
of each TCP read, decoded (UTF-8 checked) and passed, all messages of one read together, to
``consumer(messages)`` synchronously inside ``data_received``. Every other frame (ping, pong,
close, continuation, reserved bits, oversized) is fed, whole and in order, to the sans-I/O
``ClientProtocol``, which sits at a frame boundary between frames, so its state stays exact.

No message ever waits for the consumer: the callback runs in the transport callback, so pings
are answered as soon as their bytes arrive, whatever the consumer's downstream is doing.
Reads are at most ``READ_SIZE`` bytes (``asyncio.BufferedProtocol``), so one event-loop turn
handles a bounded number of frames and the other tasks (the Kafka client) are not starved.
Messages that arrive before a consumer is attached (while subscribing) are held; past
``HOLD_MAX`` reading pauses until ``attach``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import BINARY, CONT, PONG, TEXT, CloseCode, Frame
from websockets.protocol import OPEN, Event

log = logging.getLogger(__name__)

Consumer = Callable[[list[str]], None]

READ_SIZE = 65_536  # bytes per socket read: ~200 small frames, a few ms of work at most
HOLD_MAX = 10_000  # messages held before a consumer is attached, then reading pauses
HANDSHAKE_MAX = 65_536  # bytes of handshake response before handing everything to websockets
_FIN_DATA = frozenset({0x81, 0x82})  # FIN + text / binary, no reserved bits


class ChunkConnection(ClientConnection, asyncio.BufferedProtocol):
    """``ClientConnection`` whose data messages go to ``attach``-ed consumer per read chunk.

    Use it with ``websockets.asyncio.client.connect(..., create_connection=ChunkConnection)``;
    ``send``, ``ping``, ``close``, ``wait_closed``, ``close_code`` work as usual. Do not call
    ``recv`` or iterate it: messages are delivered to the consumer only.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._consumer: Consumer | None = None
        self._held: list[str] = []
        self._buf = bytearray()
        self._fast = False  # True once the handshake is done and no extension is active
        self._head_fed = False  # the HTTP response head went to websockets
        self._fragments: list[bytes] = []
        self._out: list[str] = []
        self._paused = False
        self.consumer_error: BaseException | None = None
        self.chunks = 0  # reads that delivered messages (for tests and benchmarks)
        self._read_view = memoryview(bytearray(READ_SIZE))

    # -- reading: at most READ_SIZE per event-loop turn ------------------------------------
    def get_buffer(self, sizehint: int) -> memoryview:
        """asyncio reads into this (``BufferedProtocol``): bounding each read bounds the work per
        event-loop turn, so the Kafka client's tasks get their turns often (asyncio's own
        default is 256 KiB, about 800 frames)."""
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._read_view[:nbytes].tobytes())

    # -- consumer side ------------------------------------------------------------------------
    def attach(self, consumer: Consumer) -> None:
        """Deliver held and future messages to ``consumer``."""
        self._consumer = consumer
        held, self._held = self._held, []
        if held:
            self._deliver(held)
        if self._paused:
            self._paused = False
            self.transport.resume_reading()

    def held(self) -> list[str]:
        """Messages received before a consumer was attached (e.g. while subscribing)."""
        return list(self._held)

    def _deliver(self, messages: list[str]) -> None:
        consumer = self._consumer
        if consumer is None:
            self._held.extend(messages)
            if len(self._held) >= HOLD_MAX and not self._paused:
                self._paused = True
                self.transport.pause_reading()
            return
        self.chunks += 1
        try:
            consumer(messages)
        except Exception as exc:  # a consumer bug must not go unnoticed: drop the connection
            log.exception("message consumer failed; dropping the connection")
            if self.consumer_error is None:
                self.consumer_error = exc
            self._consumer = None
            self.transport.abort()

    # -- protocol side ------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._fast:
            self._receive_frames(data)
        elif not self._head_fed:
            self._receive_handshake(data)
        else:
            super().data_received(data)
        if self._out:
            out, self._out = self._out, []
            self._deliver(out)

    def _receive_handshake(self, data: bytes) -> None:
        """Give websockets exactly the HTTP response, so its frame parser starts clean."""
        buf = self._buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > HANDSHAKE_MAX:
                rest = bytes(buf)
                buf.clear()
                self._head_fed = True
                super().data_received(rest)
            return
        head, rest = bytes(buf[: end + 4]), bytes(buf[end + 4 :])
        buf.clear()
        self._head_fed = True  # from now on websockets gets everything unless _fast
        super().data_received(head)
        if self.protocol.state is OPEN and not self.protocol.extensions:
            self._fast = True
            if rest:
                self._receive_frames(rest)
        elif rest:
            super().data_received(rest)

    def _receive_frames(self, data: bytes) -> None:
        buf = self._buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        out = self._out
        size = len(view)
        max_size = self.protocol.max_message_size
        pos = 0
        try:
            while size - pos >= 2:
                b0 = view[pos]
                length = view[pos + 1]
                if length & 0x80:  # masked: not allowed from a server, websockets fails it
                    self._to_protocol(view[pos:])
                    self._fast = False  # from now on websockets parses everything
                    pos = size
                    break
                if length < 126:
                    start = pos + 2
                elif length == 126:
                    if size - pos < 4:
                        break
                    length = (view[pos + 2] << 8) | view[pos + 3]
                    start = pos + 4
                else:
                    if size - pos < 10:
                        break
                    length = int.from_bytes(view[pos + 2 : pos + 10], "big")
                    start = pos + 10
                if max_size is not None and length > max_size:
                    self._to_protocol(view[pos:])  # websockets fails it (1009)
                    self._fast = False
                    pos = size
                    break
                end = start + length
                if end > size:
                    break
                if b0 in _FIN_DATA and not self._fragments:
                    out.append(view[start:end].decode())
                else:
                    self._to_protocol(view[pos:end])
                    if not self._fast:  # closing, or failed: websockets takes the rest
                        pos = end
                        if pos < size:
                            super().data_received(bytes(view[pos:]))
                        pos = size
                        break
                pos = end
        except UnicodeDecodeError as exc:
            self._fast = False
            self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            self.send_data()
            buf.clear()
            return
        if pos == size:
            buf.clear()
        elif view is buf:
            del buf[:pos]
        else:
            buf += view[pos:]

    def _to_protocol(self, frame_bytes: bytes | bytearray) -> None:
        """Let websockets handle one whole non-data frame (ping, pong, close, fragment...)."""
        self._fast = False
        super().data_received(bytes(frame_bytes))
        self._fast = self.protocol.state is OPEN

    def process_event(self, event: Event) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)
            return
        opcode = event.opcode
        if opcode is TEXT or opcode is BINARY or opcode is CONT:
            if opcode is not CONT:
                self._fragments = []
            self._fragments.append(bytes(event.data))
            if event.fin:
                data, self._fragments = b"".join(self._fragments), []
                try:
                    self._out.append(data.decode())
                except UnicodeDecodeError as exc:
                    self.protocol.fail(
                        CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}"
                    )
                    self.send_data()
        elif opcode is PONG:
            self.acknowledge_pings(bytes(event.data))
