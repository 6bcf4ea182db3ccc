"""Parsing of ``host:port`` listen and peer addresses with errors that name the option."""

from __future__ import annotations


class AddressError(ValueError):
    """A listen or peer address that cannot be used."""


def parse_host_port(value: str, *, option: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6); raise AddressError naming ``option``."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise AddressError(f"{option}: expected HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise AddressError(f"{option}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise AddressError(f"{option}: port {port} is outside 0-65535")
    return host, port
