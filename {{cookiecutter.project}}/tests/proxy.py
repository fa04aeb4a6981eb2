"""A TCP proxy a test can cut, to take the broker away without stopping it."""

from __future__ import annotations

import asyncio
import contextlib

from yarl import URL


class Proxy:
    """Forwards 127.0.0.1:``port`` to ``target``. ``cut`` drops every connection and stops
    listening, so new ones are refused as by a stopped broker, until ``restore``; ``freeze``
    keeps connections open but silently drops their traffic, as a dead network path does, until
    ``restore``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._frozen = False
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self, amqp_url: str) -> str:
        """``amqp_url`` leading through this proxy instead of straight to the broker."""
        return str(URL(amqp_url).with_host("127.0.0.1").with_port(self.port))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def freeze(self) -> None:
        self._frozen = True

    async def restore(self) -> None:
        self._frozen = False
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if self._frozen:
                    continue  # no RST, no FIN: only heartbeats can tell the link is dead
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
