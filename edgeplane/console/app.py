"""The FastAPI application: operator API and agent API under /v1, OpenAPI at /openapi.json."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from edgeplane.console import artifacts, auth, clusters, hosts, packstore, registration, schemas, tenancy
from edgeplane.console.batching import HeartbeatWriter
from edgeplane.console.db import POSTGRESQL, Database, Tx
from edgeplane.console.deadlines import UpgradeDeadlines
from edgeplane.console.errors import ApiError, not_found
from edgeplane.console.fastpath import HeartbeatFastPath
from edgeplane.console.hostids import DEFAULT_PREFIX
from edgeplane.console.notify import PostgresListener, SpecWaiters

T = TypeVar("T")
MAX_WAIT_S = 60


@dataclass
class ConsoleConfig:
    db_url: str
    host_id_prefix: str = DEFAULT_PREFIX
    heartbeat_interval_s: int = 30
    public_url: str | None = None
    pool_size: int = 10
    upgrade_step_timeout_s: int = clusters.DEFAULT_STEP_TIMEOUT_S
    timing: hosts.Timing = field(init=False)

    def __post_init__(self) -> None:
        self.timing = hosts.Timing(heartbeat_interval_s=self.heartbeat_interval_s)
        check_step_timeout(self.upgrade_step_timeout_s, "upgrade_step_timeout_s")


class ConfigError(ValueError):
    """A console setting out of range; the message names the setting (field or CLI option)."""


def check_step_timeout(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= clusters.MAX_STEP_TIMEOUT_S:
        raise ConfigError(f"{name}: must be whole seconds from 1 to {clusters.MAX_STEP_TIMEOUT_S} (got {value!r})")


class Console:
    """Per-process state: the database handle, long-poll waiters and the auth failure brake."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.db = Database(config.db_url, pool_size=config.pool_size)
        self.waiters = SpecWaiters()
        self.db.after_commit.append(self.waiters.wake)
        self.limiter = auth.FailureLimiter()
        self.listener: PostgresListener | None = None
        self.closing = False
        self.heartbeats = HeartbeatWriter(self.db)
        self.deadlines = UpgradeDeadlines(self.db, config.upgrade_step_timeout_s)

    def begin_shutdown(self) -> None:
        """Held long-polls answer 204 now instead of holding shutdown up; agents simply re-poll."""
        self.closing = True
        self.waiters.wake_all()

    def source(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def guarded(self, source: str, fn: Callable[[], T]) -> T:
        self.limiter.check(source)
        try:
            return fn()
        except ApiError as exc:
            if exc.status == 401:
                self.limiter.failed(source)
            raise

    async def heartbeat(self, source: str, host_id: str, credential: str, body: dict[str, Any]) -> dict[str, int]:
        """One heartbeat, group-committed (shared by the FastAPI route and the fast path)."""
        self.limiter.check(source)
        try:
            generation = await self.heartbeats.submit(host_id, credential, body)
        except ApiError as exc:
            if exc.status == 401:
                self.limiter.failed(source)
            raise
        return {"spec_generation": generation, "heartbeat_interval": self.config.timing.heartbeat_interval_s}

    def as_operator(self, request: Request, role: str, fn: Callable[[Tx, auth.Operator], T]) -> T:
        """Authenticate the API key, check the role and run fn in one transaction."""
        source = self.source(request)

        def call() -> T:
            key = auth.bearer(request.headers.get("authorization"))
            with self.db.transaction(write=role != "viewer") as tx:
                op = auth.operator_from_key(tx, key, source)
                op.require(role)
                return fn(tx, op)
        return self.guarded(source, call)

    def as_host(self, request: Request, host_id: str, fn: Callable[[Tx, auth.Host], T], *, write: bool = True) -> T:
        source = self.source(request)

        def call() -> T:
            credential = auth.bearer(request.headers.get("authorization"))
            with self.db.transaction(write=write) as tx:
                return fn(tx, auth.host_from_credential(tx, credential, host_id, source))
        return self.guarded(source, call)


async def _credential_present(request: Request) -> None:
    """Refuse a call without credentials before its body is even validated."""
    auth.bearer(request.headers.get("authorization"))


def create_app(config: ConsoleConfig) -> FastAPI:
    console = Console(config)
    console.db.migrate()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        console.waiters.bind(asyncio.get_running_loop())
        console.heartbeats.start()
        console.deadlines.start()
        if console.db.dialect == POSTGRESQL:
            console.listener = PostgresListener(console.db.dsn, console.waiters)
            console.listener.start()
        try:
            yield
        finally:
            console.begin_shutdown()  # normally done already by ConsoleServer.shutdown
            if console.listener:
                console.listener.stop()
            console.deadlines.stop()
            console.heartbeats.stop()
            console.db.close()

    app = FastAPI(title="edgeplane console", version="1", lifespan=lifespan,
                  description="Packs, cluster profiles, registration, edge hosts and clusters. "
                              "Operators authenticate with `Authorization: Bearer <API key>`, "
                              "agents with their host credential (see docs/agent-protocol.md).")
    app.state.console = console

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def _integrity(request: Request, exc: Exception) -> JSONResponse:
        # Two requests racing to create the same name or host ID: the loser's transaction was
        # rolled back by the unique constraint; tell it so instead of answering 500.
        return JSONResponse(ApiError(409, ["body"], "conflicts with a concurrent change; retry", "conflict").body(),
                            status_code=409)

    app.add_exception_handler(sqlite3.IntegrityError, _integrity)
    if console.db.dialect == POSTGRESQL:
        import psycopg

        app.add_exception_handler(psycopg.IntegrityError, _integrity)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    _agent_routes(app, console)  # first: the hot paths match after fewer routes
    _operator_routes(app, console)
    app.add_middleware(HeartbeatFastPath, console=console)
    return app


def _operator_routes(app: FastAPI, c: Console) -> None:  # noqa: C901 - a flat list of small routes
    timing = c.config.timing
    prefix = c.config.host_id_prefix
    router = APIRouter(dependencies=[Depends(_credential_present)])

    @router.get("/v1/whoami", tags=["tenancy"])
    def whoami(request: Request) -> dict[str, Any]:
        return c.as_operator(request, "viewer", lambda tx, op: {"user": op.name, "role": op.role,
                                                                  "tenant_id": op.tenant_id})

    @router.get("/v1/projects", tags=["tenancy"])
    def projects(request: Request) -> list[dict[str, Any]]:
        return c.as_operator(request, "viewer", lambda tx, op: tx.all(
            "SELECT id, name, created_at FROM projects WHERE tenant_id = ? ORDER BY name", (op.tenant_id,)))

    @router.post("/v1/projects", status_code=201, tags=["tenancy"])
    def create_project(body: schemas.ProjectIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "admin", lambda tx, op: tenancy.create_project(tx, op, body.name))

    @router.get("/v1/users", tags=["tenancy"])
    def users(request: Request) -> list[dict[str, Any]]:
        return c.as_operator(request, "admin", lambda tx, op: tx.all(
            "SELECT id, name, role, created_at FROM users WHERE tenant_id = ? ORDER BY name", (op.tenant_id,)))

    @router.post("/v1/users", status_code=201, tags=["tenancy"])
    def create_user(body: schemas.UserIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "admin", lambda tx, op: tenancy.create_user(
            tx, op.tenant_id, body.name, body.role, actor=op.actor, source=op.source))

    @router.post("/v1/users/{user_id}/api-keys", status_code=201, tags=["tenancy"])
    def create_key(user_id: str, body: schemas.ApiKeyIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "admin", lambda tx, op: tenancy.create_api_key(
            tx, op.tenant_id, user_id, body.name, actor=op.actor, source=op.source))

    @router.delete("/v1/api-keys/{key_id}", status_code=204, tags=["tenancy"])
    def revoke_key(key_id: str, request: Request) -> Response:
        c.as_operator(request, "admin", lambda tx, op: tenancy.revoke_api_key(tx, op, key_id))
        return Response(status_code=204)

    @router.get("/v1/audit", tags=["tenancy"])
    def audit_log(request: Request, limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, Any]]:
        def run(tx: Tx, op: auth.Operator) -> list[dict[str, Any]]:
            rows = tx.all("SELECT id, actor, action, object_type, object_id, detail, source, at FROM audit_log"
                          " WHERE tenant_id = ? ORDER BY id DESC LIMIT ?", (op.tenant_id, limit))
            return [{**r, "detail": json.loads(r["detail"])} for r in rows]
        return c.as_operator(request, "admin", run)

    @router.get("/v1/packs", tags=["packs"])
    def packs(request: Request, layer: schemas.LayerKind | None = None) -> list[dict[str, Any]]:
        return c.as_operator(request, "viewer", lambda tx, op: packstore.list_packs(tx, op.tenant_id, layer))

    @router.post("/v1/packs", status_code=201, tags=["packs"])
    def create_pack(body: schemas.PackIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator", lambda tx, op: packstore.create_pack(tx, op, body.model_dump()))

    @router.get("/v1/profiles", tags=["profiles"])
    def profiles(request: Request) -> list[dict[str, Any]]:
        return c.as_operator(request, "viewer", lambda tx, op: packstore.list_profiles(tx, op.tenant_id))

    @router.post("/v1/profiles", status_code=201, tags=["profiles"])
    def create_profile(body: schemas.ProfileIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator", lambda tx, op: packstore.create_profile(tx, op, body.model_dump()))

    @router.post("/v1/profiles/{name}/versions", status_code=201, tags=["profiles"])
    def create_profile_version(name: str, body: schemas.ProfileVersionIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator",
                             lambda tx, op: packstore.create_profile(tx, op, body.model_dump(), name=name))

    @router.get("/v1/profiles/{profile_id}", tags=["profiles"])
    def profile(profile_id: str, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "viewer", lambda tx, op: packstore.get_profile(tx, op.tenant_id, profile_id))

    @router.get("/v1/registration-tokens", tags=["registration"])
    def tokens(request: Request) -> list[dict[str, Any]]:
        return c.as_operator(request, "admin", lambda tx, op: registration.list_tokens(tx, op.tenant_id))

    @router.post("/v1/registration-tokens", status_code=201, tags=["registration"])
    def create_token(body: schemas.TokenIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "admin", lambda tx, op: registration.create_token(tx, op, body.model_dump()))

    @router.delete("/v1/registration-tokens/{token_id}", status_code=204, tags=["registration"])
    def revoke_token(token_id: str, request: Request) -> Response:
        c.as_operator(request, "admin", lambda tx, op: registration.revoke_token(tx, op, token_id))
        return Response(status_code=204)

    @router.get("/v1/hosts", tags=["hosts"])
    def host_list(request: Request, limit: int = Query(1000, ge=1, le=10000),
                  offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
        return c.as_operator(request, "viewer", lambda tx, op: [
            hosts.view(r, timing) for r in hosts.list_rows(tx, op.tenant_id, limit, offset)])

    @router.post("/v1/hosts", status_code=201, tags=["hosts"])
    def pre_enter(body: schemas.HostsIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator", lambda tx, op: {
            "host_ids": registration.pre_enter(tx, op, body.model_dump(), prefix)})

    @router.get("/v1/hosts/{host_id}", tags=["hosts"])
    def host(host_id: str, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "viewer",
                             lambda tx, op: hosts.view(hosts.get_row(tx, op.tenant_id, host_id), timing))

    @router.patch("/v1/hosts/{host_id}", tags=["hosts"])
    def patch_host(host_id: str, body: schemas.HostPatch, request: Request) -> dict[str, Any]:
        def run(tx: Tx, op: auth.Operator) -> dict[str, Any]:
            hosts.set_tags(tx, op, host_id, body.tags)
            return hosts.view(hosts.get_row(tx, op.tenant_id, host_id), timing)
        return c.as_operator(request, "operator", run)

    @router.post("/v1/hosts/{host_id}/approve", tags=["hosts"])
    def approve(host_id: str, request: Request) -> dict[str, Any]:
        def run(tx: Tx, op: auth.Operator) -> dict[str, Any]:
            registration.approve(tx, op, host_id)
            return hosts.view(hosts.get_row(tx, op.tenant_id, host_id), timing)
        return c.as_operator(request, "operator", run)

    @router.delete("/v1/hosts/{host_id}", status_code=204, tags=["hosts"])
    def delete_host(host_id: str, request: Request) -> Response:
        c.as_operator(request, "operator", lambda tx, op: hosts.delete(tx, op, host_id))
        return Response(status_code=204)

    @router.get("/v1/hosts/{host_id}/events", tags=["hosts"])
    def host_events(host_id: str, request: Request) -> list[dict[str, Any]]:
        def run(tx: Tx, op: auth.Operator) -> list[dict[str, Any]]:
            hosts.get_row(tx, op.tenant_id, host_id)
            return hosts.events(tx, op.tenant_id, host_id=host_id)
        return c.as_operator(request, "viewer", run)

    @router.get("/v1/qr-approvals/{host_id}", tags=["registration"])
    def qr_request(host_id: str, request: Request, code: str = Query(...)) -> dict[str, Any]:
        return c.as_operator(request, "operator", lambda tx, op: registration.qr_request(tx, host_id, code))

    @router.post("/v1/qr-approvals/{host_id}", tags=["registration"])
    def qr_approve(host_id: str, body: schemas.QrApproveIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator",
                             lambda tx, op: registration.qr_approve(tx, op, host_id, body.model_dump()))

    @router.get("/v1/clusters", tags=["clusters"])
    def cluster_list(request: Request) -> list[dict[str, Any]]:
        return c.as_operator(request, "viewer", lambda tx, op: clusters.list_all(tx, op.tenant_id, timing))

    @router.post("/v1/clusters", status_code=201, tags=["clusters"])
    def create_cluster(body: schemas.ClusterIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator", lambda tx, op: clusters.create(
            tx, op, body.model_dump(mode="json", exclude_none=True), timing))

    @router.get("/v1/clusters/{cluster_id}", tags=["clusters"])
    def cluster(cluster_id: str, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "viewer", lambda tx, op: clusters.get(tx, op.tenant_id, cluster_id, timing))

    @router.patch("/v1/clusters/{cluster_id}", tags=["clusters"])
    def reconfigure(cluster_id: str, body: schemas.ClusterSettings, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator", lambda tx, op: clusters.reconfigure(
            tx, op, cluster_id, body.model_dump(mode="json", exclude_none=True), timing))

    @router.put("/v1/clusters/{cluster_id}/pools", tags=["clusters"])
    def scale(cluster_id: str, body: schemas.PoolsIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator",
                             lambda tx, op: clusters.scale(tx, op, cluster_id, body.model_dump(), timing))

    @router.post("/v1/clusters/{cluster_id}/upgrade", tags=["clusters"])
    def upgrade(cluster_id: str, body: schemas.UpgradeIn, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator",
                             lambda tx, op: clusters.upgrade(tx, op, cluster_id, body.profile_id, timing,
                                                             c.config.upgrade_step_timeout_s))

    @router.post("/v1/clusters/{cluster_id}/upgrade/cancel", tags=["clusters"])
    def cancel(cluster_id: str, request: Request) -> dict[str, Any]:
        return c.as_operator(request, "operator", lambda tx, op: clusters.cancel_upgrade(tx, op, cluster_id, timing))

    @router.delete("/v1/clusters/{cluster_id}", tags=["clusters"], responses={202: {}, 204: {}})
    def delete_cluster(cluster_id: str, request: Request, force: bool = False) -> Response:
        result = c.as_operator(request, "operator",
                               lambda tx, op: clusters.delete(tx, op, cluster_id, force=force, timing=timing))
        return Response(status_code=204) if result is None else JSONResponse(result, status_code=202)

    @router.get("/v1/clusters/{cluster_id}/events", tags=["clusters"])
    def cluster_events(cluster_id: str, request: Request) -> list[dict[str, Any]]:
        def run(tx: Tx, op: auth.Operator) -> list[dict[str, Any]]:
            if not tx.one("SELECT 1 AS x FROM clusters WHERE id = ? AND tenant_id = ?", (cluster_id, op.tenant_id)) \
                    and not tx.one("SELECT 1 AS x FROM events WHERE cluster_id = ? AND tenant_id = ?",
                                   (cluster_id, op.tenant_id)):
                raise not_found(("path", "cluster_id"), "cluster")
            return hosts.events(tx, op.tenant_id, cluster_id=cluster_id)
        return c.as_operator(request, "viewer", run)

    @router.get("/v1/artifacts", tags=["artifacts"])
    def artifact_list(request: Request) -> list[dict[str, Any]]:
        return c.as_operator(request, "viewer", lambda tx, op: artifacts.list_all(tx, op.tenant_id))

    @router.post("/v1/artifacts", status_code=201, tags=["artifacts"])
    async def upload(request: Request, name: str = Query(..., min_length=1, max_length=200)) -> dict[str, Any]:
        # Spool to disk first so no database transaction waits on the network.
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            async for block in request.stream():
                spool.write(block)
            return await run_in_threadpool(
                c.as_operator, request, "operator", lambda tx, op: artifacts.store(tx, op, name, spool))

    app.include_router(router)


def _agent_routes(app: FastAPI, c: Console) -> None:
    timing = c.config.timing
    router = APIRouter(dependencies=[Depends(_credential_present)])

    @app.post("/v1/agent/register", tags=["agent"], status_code=201, responses={202: {}})
    def register(body: schemas.RegisterIn, request: Request) -> JSONResponse:
        source = c.source(request)

        def call() -> registration.Outcome:
            with c.db.transaction() as tx:
                return registration.register(
                    tx, body.model_dump(mode="json", exclude_none=True), source=source,
                    prefix=c.config.host_id_prefix, base_url=c.config.public_url or str(request.base_url),
                    timing=timing)
        outcome = c.guarded(source, call)
        return JSONResponse(outcome.body, status_code=outcome.status_code)

    @router.post("/v1/agent/hosts/{host_id}/heartbeat", tags=["agent"])
    async def heartbeat(host_id: str, body: schemas.HeartbeatIn, request: Request) -> dict[str, int]:
        return await c.heartbeat(c.source(request), host_id, auth.bearer(request.headers.get("authorization")),
                                 body.model_dump(mode="json", exclude_none=True))

    @router.get("/v1/agent/hosts/{host_id}/spec", tags=["agent"], responses={204: {}})
    async def spec(host_id: str, request: Request, after: int = Query(0, ge=0),
                   wait: int = Query(0, ge=0, le=MAX_WAIT_S)) -> Response:
        def read(tx: Tx, host: auth.Host) -> tuple[int, dict[str, Any]]:
            return hosts.spec_of(tx, host.host_id)
        deadline = asyncio.get_running_loop().time() + wait
        recheck = 1.0 if c.db.dialect != POSTGRESQL else 5.0
        while True:
            # Register before reading so a change committed in between still wakes us.
            event = c.waiters.add(host_id)
            try:
                generation, document = await run_in_threadpool(c.as_host, request, host_id, read, write=False)
                if generation > after:
                    return JSONResponse(document)
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or c.closing:
                    return Response(status_code=204, headers={"X-Edgeplane-Generation": str(generation)})
                try:
                    await asyncio.wait_for(event.wait(), timeout=min(remaining, recheck))
                except asyncio.TimeoutError:
                    pass
            finally:
                c.waiters.remove(host_id, event)

    @router.post("/v1/agent/hosts/{host_id}/status", tags=["agent"])
    def status(host_id: str, body: schemas.StatusIn, request: Request) -> dict[str, int]:
        def run(tx: Tx, host: auth.Host) -> dict[str, int]:
            row = hosts.record_status(tx, host, body.model_dump(mode="json"))
            if row["cluster_id"]:
                clusters.on_host_report(tx, row, timing)
            return {"spec_generation": hosts.spec_of(tx, host_id)[0]}
        return c.as_host(request, host_id, run)

    @router.post("/v1/agent/hosts/{host_id}/events", tags=["agent"])
    def events(host_id: str, body: schemas.EventsIn, request: Request) -> dict[str, int]:
        return c.as_host(request, host_id, lambda tx, host: {
            "accepted": hosts.record_events(tx, host, body.model_dump()["events"])})

    @router.get("/v1/agent/artifacts/{digest}", tags=["agent"])
    def download(digest: str, request: Request) -> StreamingResponse:
        artifacts.check_digest(digest, ("path", "digest"))
        source = c.source(request)

        def call() -> int:
            credential = auth.bearer(request.headers.get("authorization"))
            with c.db.transaction(write=False) as tx:
                host = auth.host_from_credential(tx, credential, None, source)
                return artifacts.size_of(tx, host.tenant_id, digest)
        size = c.guarded(source, call)
        return StreamingResponse(artifacts.chunks(c.db, digest), media_type="application/octet-stream",
                                 headers={"Content-Length": str(size), "X-Content-SHA256": digest.split(":", 1)[1]})

    app.include_router(router)
