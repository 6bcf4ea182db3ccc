"""A fast path for heartbeats, the request every host sends every interval.

This ASGI middleware answers a well-formed, authenticated heartbeat without FastAPI's routing and
dependency machinery, which cost more CPU than the heartbeat itself. It applies the same schema
(``HeartbeatIn``) and the same ``Console.heartbeat`` as the FastAPI route. Anything it does not
fully handle (another path, a malformed body, a missing or blocked credential) goes on to the
FastAPI app with the body replayed, so every error still comes from the one documented route.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from edgeplane.console.errors import ApiError
from edgeplane.console.schemas import HeartbeatIn

_PATH = re.compile(r"/v1/agent/hosts/([^/]+)/heartbeat")


class HeartbeatFastPath:
    def __init__(self, app: Any, console: Any) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match = _PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        answer = await self._answer(scope, match.group(1), body)
        if answer is None:
            return await self.app(scope, _replay(body, receive), send)
        status, document = answer
        payload = json.dumps(document, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, scope: dict, host_id: str, body: bytes) -> tuple[int, dict] | None:
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, credential = header.partition(" ")
        source = scope["client"][0] if scope.get("client") else "unknown"
        if scheme.lower() != "bearer" or not credential.strip():
            return None
        try:
            self.console.limiter.check(source)
            parsed = HeartbeatIn.model_validate_json(body)
        except (ApiError, ValidationError):
            return None
        try:
            return 200, await self.console.heartbeat(source, host_id, credential.strip(),
                                                     parsed.model_dump(mode="json", exclude_none=True))
        except ApiError as exc:
            return exc.status, exc.body()


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed
