"""gRPC's wire protocol as an ASGI application: routing, message framing and status trailers.

Envoy (embedded through pyvoy, see ``frontend.py``) terminates HTTP/2 and TLS in C++ and hands
each gRPC call to this app as one ASGI HTTP request. The handlers are the same coroutine and
async-generator servicer methods grpc.aio uses (``services.py`` does not know which server runs
it); this module only turns HTTP/2 request bodies into messages and results into frames and the
``grpc-status`` / ``grpc-message`` trailers (https://grpc.io/docs/guides/wire/ in gRPC's repo:
doc/PROTOCOL-HTTP2.md).

Why not grpcio's server: its asyncio server costs ~280 µs of CPU per call on a 2-core edge box,
3x what Envoy plus this module cost, and one Python process cannot go past that (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_PREFIX = struct.Struct(">BI")  # compressed flag, message length
_RESPONSE_HEADERS = [(b"content-type", b"application/grpc")]
_OK_TRAILERS = [(b"grpc-status", b"0")]


class AbortError(Exception):
    """Raised by ``ServicerContext.abort``: ends the call with this status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class ServicerContext:
    """The part of ``grpc.aio.ServicerContext`` the servicers use."""

    __slots__ = ()

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        raise AbortError(code, details)


@dataclass(frozen=True)
class Method:
    handler: Callable[..., Any]
    request_type: type[Message]
    client_streaming: bool
    server_streaming: bool


def service_methods(file: FileDescriptor, service: str, servicer: object) -> dict[str, Method]:
    """The servicer's methods keyed by HTTP/2 path (``/package.Service/Method``)."""
    descriptor = file.services_by_name[service]
    return {
        f"/{descriptor.full_name}/{method.name}": Method(
            getattr(servicer, method.name), GetMessageClass(method.input_type),
            method.client_streaming, method.server_streaming)
        for method in descriptor.methods
    }


def _grpc_message(text: str) -> bytes:
    """Percent-encode as the protocol asks: printable ASCII except '%' goes as is."""
    return "".join(ch if " " <= ch <= "~" and ch != "%" else "".join(f"%{b:02X}" for b in ch.encode())
                   for ch in text).encode("ascii")


def _status_trailers(code: grpc.StatusCode, details: str) -> list[tuple[bytes, bytes]]:
    return [(b"grpc-status", str(code.value[0]).encode()), (b"grpc-message", _grpc_message(details))]


def _unexpected(method: Method, exc: Exception) -> list[tuple[bytes, bytes]]:
    """A bug, not a client error: logged with its traceback, UNKNOWN to the client (as grpcio)."""
    log.exception("unexpected error in %s", method.handler.__qualname__)
    return _status_trailers(grpc.StatusCode.UNKNOWN, f"Unexpected {exc.__class__.__name__}: {exc}")


def _frame(message: Message) -> bytes:
    payload = message.SerializeToString()
    return _PREFIX.pack(0, len(payload)) + payload


class _Deframer:
    """Splits a request body into messages; a message may span any number of DATA frames."""

    def __init__(self, request_type: type[Message], max_bytes: int) -> None:
        self.request_type = request_type
        self.max_bytes = max_bytes
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> list[Message]:
        self.buffer += chunk
        messages = []
        while len(self.buffer) >= 5:
            compressed, length = _PREFIX.unpack_from(self.buffer)
            if compressed:
                raise AbortError(grpc.StatusCode.UNIMPLEMENTED, "edgeplane datastore: compressed messages are not supported")
            if length > self.max_bytes:
                raise AbortError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                 f"grpc: received message larger than max ({length} vs. {self.max_bytes})")
            if len(self.buffer) < 5 + length:
                break
            try:
                messages.append(self.request_type.FromString(bytes(self.buffer[5:5 + length])))
            except DecodeError:
                raise AbortError(grpc.StatusCode.INTERNAL, "grpc: error unmarshalling request") from None
            del self.buffer[:5 + length]
        return messages

    def finish(self) -> None:
        if self.buffer:
            raise AbortError(grpc.StatusCode.INTERNAL, "grpc: request ended inside a message")


class _Disconnected(Exception):
    """The client went away (reset the stream or closed the connection)."""


class GrpcApp:
    """An ASGI app serving gRPC methods; lifespan events run ``startup`` and ``shutdown``."""

    def __init__(self, startup: Callable[[], Awaitable[dict[str, Method]]], shutdown: Callable[[], Awaitable[None]],
                 max_receive_bytes: int) -> None:
        self.startup = startup
        self.shutdown = shutdown
        self.max_receive_bytes = max_receive_bytes
        self.methods: dict[str, Method] = {}
        self.context = ServicerContext()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._call(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # --- lifespan ------------------------------------------------------------------------------
    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.methods = await self.startup()
                except Exception as exc:  # the server must not listen: say why, Envoy exits non-zero
                    log.error("startup failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    # --- calls ---------------------------------------------------------------------------------
    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_grpc(scope):
            await send({"type": "http.response.start", "status": 415,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"gRPC only (content-type application/grpc)\n"})
            return
        method = self.methods.get(scope["path"])
        if method is None:
            await self._end(send, _status_trailers(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {scope['path']}"),
                            started=False)
            return
        try:
            if method.client_streaming or method.server_streaming:
                await self._streaming(method, receive, send)
            else:
                await self._unary(method, receive, send)
        except _Disconnected:
            return

    async def _unary(self, method: Method, receive: Receive, send: Send) -> None:
        try:
            request = await self._single_request(method, receive)
            response = await method.handler(request, self.context)
        except AbortError as exc:
            await self._end(send, _status_trailers(exc.code, exc.details), started=False)
            return
        except _Disconnected:
            raise
        except Exception as exc:
            await self._end(send, _unexpected(method, exc), started=False)
            return
        await send({"type": "http.response.start", "status": 200, "headers": _RESPONSE_HEADERS, "trailers": True})
        await send({"type": "http.response.body", "body": _frame(response), "more_body": False})
        await send({"type": "http.response.trailers", "headers": _OK_TRAILERS, "more_trailers": False})

    async def _single_request(self, method: Method, receive: Receive) -> Message:
        deframer = _Deframer(method.request_type, self.max_receive_bytes)
        messages: list[Message] = []
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                raise _Disconnected
            messages += deframer.feed(event.get("body", b""))
            if not event.get("more_body"):
                break
        deframer.finish()
        if len(messages) != 1:
            raise AbortError(grpc.StatusCode.UNIMPLEMENTED, f"expected one request message, got {len(messages)}")
        return messages[0]

    async def _streaming(self, method: Method, receive: Receive, send: Send) -> None:
        """Responses go out as the handler yields them; requests are read concurrently.

        The response loop runs as its own task so that a client that resets the stream (read as
        ``http.disconnect``) cancels the handler, as grpc.aio does.
        """
        failure: list[AbortError] = []
        responder: asyncio.Task | None = None

        async def requests() -> AsyncIterator[Message]:
            deframer = _Deframer(method.request_type, self.max_receive_bytes)
            while True:
                event = await receive()
                if event["type"] == "http.disconnect":
                    if responder is not None:
                        responder.cancel()
                    return
                try:
                    for message in deframer.feed(event.get("body", b"")):
                        yield message
                    if not event.get("more_body"):
                        deframer.finish()
                        return  # half-close: the handler may go on sending
                except AbortError as exc:
                    failure.append(exc)
                    if responder is not None:
                        responder.cancel()
                    return

        async def respond() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": _RESPONSE_HEADERS, "trailers": True})
            if method.client_streaming:
                stream = method.handler(requests(), self.context)
            else:
                stream = method.handler(await self._single_request(method, receive), self.context)
            async for response in stream:
                await send({"type": "http.response.body", "body": _frame(response), "more_body": True})

        responder = asyncio.ensure_future(respond())
        try:
            await responder
            trailers = _OK_TRAILERS
        except asyncio.CancelledError:
            if not failure:  # the client left: nobody to tell
                if responder.cancelled() and asyncio.current_task().cancelling() == 0:
                    return
                raise
            trailers = _status_trailers(failure[0].code, failure[0].details)
        except AbortError as exc:
            trailers = _status_trailers(exc.code, exc.details)
        except _Disconnected:
            return
        except Exception as exc:
            trailers = _unexpected(method, exc)
        await self._end(send, trailers, started=True)

    @staticmethod
    async def _end(send: Send, trailers: list[tuple[bytes, bytes]], started: bool) -> None:
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": _RESPONSE_HEADERS, "trailers": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})


def _is_grpc(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.startswith(b"application/grpc")
    return False
