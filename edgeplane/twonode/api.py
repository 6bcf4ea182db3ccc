"""The agent's small HTTP API: status (peers and operators), pushed peer status, pause/resume.

Every call needs the pair's shared bearer token (``token_file`` in node.yaml).
"""

from __future__ import annotations

import hmac
import threading
from typing import TYPE_CHECKING

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException

from edgeplane.common.netaddr import parse_host_port

if TYPE_CHECKING:
    from .agent import NodeAgent


def create_app(agent: "NodeAgent") -> FastAPI:
    def authorized(authorization: str = Header(default="")) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), agent.token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    app = FastAPI(title="edgeplane two-node agent", dependencies=[Depends(authorized)])

    @app.get("/v1/status")
    def status() -> dict:
        return agent.status()

    @app.post("/v1/peer-status")
    def peer_status(body: dict) -> dict:
        try:
            agent.receive_peer(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise HTTPException(status_code=422, detail=f"peer status: {exc}") from None
        return {"ok": True}

    def _set(paused: bool, pair: bool) -> dict:
        agent.set_paused(paused)
        result = {"name": agent.config.name, "paused": paused}
        if pair:
            # Pausing must reach the follower too: it is the one that would promote.
            answer = agent.link.post("/v1/pause" if paused else "/v1/resume", {"pair": "false"})
            result["peer"] = {"name": agent.config.peer.name, "paused": answer.get("paused") if answer else None}
        return result

    @app.post("/v1/pause")
    def pause(pair: bool = True) -> dict:
        return _set(True, pair)

    @app.post("/v1/resume")
    def resume(pair: bool = True) -> dict:
        return _set(False, pair)

    return app


class ApiServer:
    """uvicorn in a background thread."""

    def __init__(self, agent: "NodeAgent", listen: str) -> None:
        host, port = parse_host_port(listen, option="listen")
        config = uvicorn.Config(create_app(agent), host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="agent-api", daemon=True)

    def start(self, timeout: float = 10) -> None:
        self.thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout * 20)):
            if self.server.started:
                return
            if not self.thread.is_alive():
                break
            deadline.wait(0.05)
        raise RuntimeError(f"listen: the agent API did not start on {self.server.config.host}:{self.server.config.port}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
