"""Who is calling: operators with API keys (roles admin, operator, viewer) and hosts with credentials."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from edgeplane.console import keys
from edgeplane.console.db import Tx
from edgeplane.console.errors import ApiError, forbidden, unauthorized

ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class Operator:
    user_id: str
    name: str
    tenant_id: str
    role: str
    source: str

    @property
    def actor(self) -> str:
        return f"user:{self.name}"

    def require(self, role: str) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise forbidden(f"role {self.role!r} may not do this; it needs {role!r}")


@dataclass(frozen=True)
class Host:
    host_id: str
    tenant_id: str
    source: str

    @property
    def actor(self) -> str:
        return f"host:{self.host_id}"


def bearer(header: str | None) -> str:
    if not header:
        raise unauthorized("missing Authorization header (Bearer API key or host credential)")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("Authorization must be 'Bearer <key>'")
    return value.strip()


def operator_from_key(tx: Tx, key: str, source: str) -> Operator:
    if not key.startswith(keys.API_KEY_PREFIX):
        raise unauthorized("not an API key")
    row = tx.one(
        "SELECT k.revoked_at, u.id, u.name, u.tenant_id, u.role FROM api_keys k JOIN users u ON u.id = k.user_id"
        " WHERE k.key_hash = ?", (keys.digest(key),))
    if row is None:
        raise unauthorized("unknown API key")
    if row["revoked_at"] is not None:
        raise unauthorized("API key revoked")
    return Operator(row["id"], row["name"], row["tenant_id"], row["role"], source)


def host_from_credential(tx: Tx, credential: str, host_id: str | None, source: str) -> Host:
    """The host owning the credential; with host_id, refuse a credential of any other host."""
    if not credential.startswith(keys.CREDENTIAL_PREFIX):
        raise unauthorized("not a host credential")
    row = tx.one("SELECT id, tenant_id FROM hosts WHERE credential_hash = ?", (keys.digest(credential),))
    if row is None:
        raise unauthorized("unknown host credential")
    if host_id is not None and row["id"] != host_id:
        raise forbidden("this credential belongs to another host")
    return Host(row["id"], row["tenant_id"], source)


class FailureLimiter:
    """Slow down credential guessing: too many failed authentications from one address get 429.

    Kept per process on purpose: it is a brake, not state anyone needs to see; N console processes
    allow N times the budget, which is still far below guessing a 256-bit key.
    """

    def __init__(self, max_failures: int = 30, window_s: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, source: str) -> None:
        with self._lock:
            recent = self._recent(source)
            if len(recent) >= self.max_failures:
                retry = int(recent[0] + self.window_s - time.monotonic()) + 1
                raise ApiError(429, ("header", "authorization"), "too many failed authentications; retry later",
                               "rate_limited", {"Retry-After": str(max(retry, 1))})

    def failed(self, source: str) -> None:
        with self._lock:
            self._recent(source).append(time.monotonic())

    def _recent(self, source: str) -> list[float]:
        cutoff = time.monotonic() - self.window_s
        recent = [t for t in self._failures.get(source, []) if t > cutoff]
        self._failures[source] = recent
        return recent
