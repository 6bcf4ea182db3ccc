"""On-device diagnostics: when registration is stuck, say why in words a technician can act on.

Each failure of a console call is classified (DNS, unreachable, TLS, clock skew, token expired or
unknown, pending approval, already registered) with the concrete fix.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from edgeplane.agent.client import ConsoleError, describe_detail

MAX_SKEW_SECONDS = 300


@dataclass(frozen=True)
class Diagnosis:
    code: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.message} - {self.fix}"


def clock_skew(date_header: str | None, now: float | None = None) -> float | None:
    """Seconds the local clock is ahead (+) or behind (-) the console's ``Date`` header."""
    if not date_header:
        return None
    try:
        console = parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return None
    return (now if now is not None else time.time()) - console


def diagnose_exception(exc: BaseException, host: str, port: int, proxy: str | None) -> Diagnosis:
    if isinstance(exc, ConsoleError):
        return diagnose_answer(exc.status, exc.detail, exc.date)
    chain = _chain(exc)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        reason = next((str(e) for e in chain if isinstance(e, ssl.SSLCertVerificationError)), str(exc))
        if "not yet valid" in reason or "expired" in reason:
            return Diagnosis("clock", f"TLS certificate of {host} looks expired or not yet valid: {reason}",
                             "check this host's clock (set edgeplane.site.ntpServers)")
        return Diagnosis("tls", f"TLS certificate of {host} is not trusted: {reason}",
                         "add the console's CA to edgeplane.site.caCerts (or insecureSkipVerify for a lab)")
    if isinstance(exc, ssl.SSLError) or any(isinstance(e, ssl.SSLError) for e in chain):
        return Diagnosis("tls", f"TLS handshake with {host}:{port} failed: {exc}",
                         "check that consoleEndpoint uses the right scheme and port")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError,
                        httpx.ProxyError, OSError)):
        if not proxy:
            try:
                socket.getaddrinfo(host, port)
            except socket.gaierror as dns:
                return Diagnosis("dns", f"cannot resolve {host}: {dns.strerror}",
                                 "check edgeplane.site.network.nameserver and the name in consoleEndpoint")
        via = f" through proxy {proxy}" if proxy else ""
        return Diagnosis("unreachable", f"cannot reach the console at {host}:{port}{via}: {exc or type(exc).__name__}",
                         "check cabling, routes, firewall and the proxy settings")
    return Diagnosis("error", f"{type(exc).__name__}: {exc}", "see the agent log")


def diagnose_answer(status: int, detail: object, date: str | None) -> Diagnosis:
    text = describe_detail(detail)
    skew = clock_skew(date)
    if skew is not None and abs(skew) > MAX_SKEW_SECONDS:
        return Diagnosis("clock", f"local clock is {skew:+.0f} s off the console's ({text})",
                         "set edgeplane.site.ntpServers or fix the clock")
    if status == 401 and "expired" in text.lower():
        return Diagnosis("token-expired", f"registration token expired: {text}", "ask for a new token")
    if status == 401 and "revoked" in text.lower():
        return Diagnosis("token-revoked", f"registration token revoked: {text}", "ask for a new token")
    if status == 401:
        return Diagnosis("token-invalid", f"registration refused: {text}", "check edgeplane.site.registrationToken")
    if status == 410:
        return Diagnosis("qr-expired", f"the QR code expired: {text}", "the host shows a new QR code")
    if status == 409:
        return Diagnosis("duplicate", f"this host ID is already registered: {text}",
                         "delete the host in the console first (as after a re-install)")
    if status == 422:
        return Diagnosis("rejected", f"registration request rejected: {text}", "check the user-data fields named")
    if status == 429:
        return Diagnosis("rate-limited", f"too many attempts: {text}", "the agent waits and retries")
    return Diagnosis("console-error", f"console answered HTTP {status}: {text}", "see the console's logs")


def pending(waiting_for: str, host_id: str, approval_url: str | None) -> Diagnosis:
    if approval_url:
        return Diagnosis("pending-approval", f"waiting for an operator to approve {host_id}",
                         f"scan the QR code or open {approval_url}")
    return Diagnosis("pending-approval", f"waiting for an {waiting_for} to add or approve host ID {host_id}",
                     "enter this ID in the console: Edge Hosts > Add")


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out
