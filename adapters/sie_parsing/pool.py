"""A pool of parser processes: ``SieParsers`` for the service.

Parsing a SIE file is pure CPU work. In the service's own process it shares one interpreter
with downloading, sending and every other call; in a worker process it runs on a core of its
own while the service streams the same bytes on. The pool keeps at most ``size`` workers,
hands an idle one to each year's file and lets further files wait their turn. A worker whose
file did not end cleanly (the import was cancelled, or the worker died) is not reused.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from adapters.sie_parsing.frames import HEADER, Kind, frame, read_parsed, read_released
from core.errors import SieParserFailed
from core.sie_parse import Parsed, ParseOptions, YearParsed

_log = logging.getLogger(__name__)

_FAILED = "The SIE parser process stopped before the end of the file."


class _Worker:
    """One parser process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout

    @classmethod
    async def start(cls, encoder: str) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.sie_parsing.worker", *([encoder] if encoder else []),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def send(self, kind: Kind, payload: bytes) -> None:
        """Writes a frame; waits while the pipe holds more than the worker has read."""
        try:
            self._stdin.write(frame(kind, payload))
            await self._stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise SieParserFailed(_FAILED) from exc

    async def receive(self) -> tuple[Kind, bytes]:
        """Reads a frame."""
        try:
            size, kind = HEADER.unpack(await self._stdout.readexactly(HEADER.size))
            return Kind(kind), await self._stdout.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            raise SieParserFailed(_FAILED) from exc

    async def stop(self) -> None:
        """Ends the process (it may be mid-file) and reaps it."""
        if self.alive:
            self.process.kill()
        await self.process.wait()


class _YearParsing:
    """``YearParsing`` over a worker: chunks go out while answers come back."""

    def __init__(self, worker: _Worker) -> None:
        self._worker = worker
        self._parsed: list[Parsed] = []
        self._released = asyncio.Event()  # a piece of the held records came
        self._more = False  # and more are held
        self._answers = asyncio.ensure_future(self._receive())
        self.ended = False

    async def feed(self, chunk: bytes) -> list[Parsed]:
        self._raise_if_failed()
        await self._worker.send(Kind.DATA, chunk)
        parsed, self._parsed = self._parsed, []
        return parsed

    async def counts(self, document_counts: Mapping[tuple[str, int], int] | None
                     ) -> AsyncIterator[list[Parsed]]:
        self._raise_if_failed()
        await self._worker.send(Kind.COUNTS, pickle.dumps(
            None if document_counts is None else dict(document_counts), 5))
        while True:  # a piece at a time: the next is asked for once this one is taken
            released = asyncio.ensure_future(self._released.wait())
            try:
                await asyncio.wait({released, self._answers},
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                released.cancel()
            if not self._released.is_set():
                self._raise_if_failed()
            self._released.clear()
            parsed, self._parsed = self._parsed, []
            yield parsed
            if not self._more:
                return
            await self._worker.send(Kind.MORE, b"")

    async def close(self) -> tuple[list[Parsed], YearParsed]:
        self._raise_if_failed()
        await self._worker.send(Kind.CLOSE, b"")
        last, year = await self._answers
        self.ended = True
        return [*self._parsed, last], year

    async def abandon(self) -> None:
        """Stops listening; whatever ended the answers is not raised over the caller's error."""
        self._answers.cancel()
        await asyncio.wait({self._answers})
        if not self._answers.cancelled():
            self._answers.exception()  # retrieved, so asyncio does not log it as lost

    def _raise_if_failed(self) -> None:
        if self._answers.done():
            self._answers.result()  # raises what ended the worker
            raise SieParserFailed(_FAILED)  # an answer before CLOSE breaks the protocol

    async def _receive(self) -> tuple[Parsed, YearParsed]:
        while True:
            kind, payload = await self._worker.receive()
            if kind == Kind.PARSED:
                self._parsed.append(read_parsed(payload))
            elif kind == Kind.RELEASED:
                piece, self._more = read_released(payload)
                self._parsed.append(piece)
                self._released.set()
            elif kind == Kind.DONE:
                done: tuple[Parsed, YearParsed] = pickle.loads(payload)
                return done
            else:
                _log.error("the SIE parser process failed",
                           extra={"traceback": payload.decode(errors="replace")})
                raise SieParserFailed(_FAILED)


class ProcessParsers:
    """At most ``size`` parser processes, started when first needed and then reused; with
    ``encoder`` (``module:name``, a ``RecordEncoder``) they encode record batches."""

    def __init__(self, size: int, encoder: str = "") -> None:
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []
        self._encoder = encoder

    @asynccontextmanager
    async def parse(self, options: ParseOptions) -> AsyncIterator[_YearParsing]:
        """A worker parsing one year's file for as long as the context lasts."""
        async with self._slots:
            worker = await self._take()
            parsing: _YearParsing | None = None
            try:
                await worker.send(Kind.OPEN, pickle.dumps(options, 5))
                parsing = _YearParsing(worker)
                yield parsing
            finally:
                if parsing is not None and parsing.ended and worker.alive:
                    self._idle.append(worker)
                else:
                    if parsing is not None:
                        await parsing.abandon()
                    await worker.stop()

    def busy(self) -> bool:
        """Whether every slot is taken."""
        return self._slots.locked()

    async def warm(self) -> None:
        """Starts a worker ahead of the first import, so that import does not wait for it."""
        async with self._slots:
            self._idle.append(await self._take())

    async def aclose(self) -> None:
        """Stops the idle workers (busy ones stop with their imports)."""
        idle, self._idle = self._idle, []
        for worker in idle:
            await worker.stop()

    async def _take(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive:
                return worker
            await worker.stop()
        _log.debug("starting a SIE parser process")
        return await _Worker.start(self._encoder)
