"""Errors that become HTTP answers naming the field and the reason (FastAPI's ``detail`` shape)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refused request: ``loc`` names the field (e.g. ("body", "pools", "control_plane"))."""

    def __init__(self, status: int, loc: tuple[Any, ...] | list[Any], msg: str, kind: str = "value_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.loc = list(loc)
        self.msg = msg
        self.kind = kind
        self.headers = headers

    def body(self) -> dict:
        return {"detail": [{"loc": self.loc, "msg": self.msg, "type": self.kind}]}


def invalid(loc: tuple[Any, ...] | list[Any], msg: str) -> ApiError:
    return ApiError(422, loc, msg)


def not_found(loc: tuple[Any, ...] | list[Any], what: str) -> ApiError:
    return ApiError(404, loc, f"{what} not found", "not_found")


def conflict(loc: tuple[Any, ...] | list[Any], msg: str) -> ApiError:
    return ApiError(409, loc, msg, "conflict")


def unauthorized(msg: str, loc: tuple[Any, ...] = ("header", "authorization")) -> ApiError:
    return ApiError(401, loc, msg, "unauthorized", {"WWW-Authenticate": "Bearer"})


def forbidden(msg: str, loc: tuple[Any, ...] = ("header", "authorization")) -> ApiError:
    return ApiError(403, loc, msg, "forbidden")
