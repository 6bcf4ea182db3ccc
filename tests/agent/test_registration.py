"""Registration and on-device diagnostics against real servers on loopback: the console (in this
process), a closed port, an unresolvable name, a TLS server with a self-signed certificate, and an
HTTP server whose clock is an hour off."""

from __future__ import annotations

import datetime
import http.server
import re
import ssl
import threading
from collections.abc import Iterator
from email.utils import format_datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgeplane.agent.backoff import Backoff
from edgeplane.agent.client import ConsoleClient, bypasses_proxy
from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.registration import RegistrationImpossible, register, registration_mode
from edgeplane.agent.schema import Site
from edgeplane.console import ConsoleConfig, ThreadedConsole, create_admin_key
from tests.support.ports import free_port


def attempt(url: str, site: Site, tmp_path: Path, host_id: str = "edge-test") -> str:
    """One registration attempt; return the diagnosis the device shows (or 'registered')."""
    said: list[str] = []
    client = ConsoleClient(url, site, timeout=3)
    try:
        register(client, HostRoot(tmp_path), site, host_id, {}, said.append, sleep=lambda _: None, give_up_after=0)
    except TimeoutError as exc:
        return str(exc)
    finally:
        client.close()
    return "registered"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    db = f"sqlite:///{tmp_path_factory.mktemp('console') / 'c.db'}"
    key = create_admin_key(db)
    server = ThreadedConsole(ConsoleConfig(db_url=db)).start()
    yield server.url, key
    server.stop()


def token(console: tuple[str, str], **extra: object) -> tuple[str, str]:
    import httpx
    url, key = console
    body = {"name": f"t{free_port()}", "expires_at": "2099-01-01T00:00:00Z", **extra}
    made = httpx.post(f"{url}/v1/registration-tokens", json=body, headers={"Authorization": f"Bearer {key}"}).json()
    return made["token"], made["id"]


def test_modes_follow_the_user_data() -> None:
    assert registration_mode(Site(registrationToken="t")) == "auto"
    assert registration_mode(Site(registrationToken="t", disableAutoRegister=True)) == "manual"
    assert registration_mode(Site(registrationURL="https://console/qr")) == "qr"
    with pytest.raises(RegistrationImpossible, match="registrationToken .* or edgeplane.site.registrationURL"):
        registration_mode(Site())


def test_auto_registration_stores_the_credential(console: tuple[str, str], tmp_path: Path) -> None:
    value, _ = token(console)
    assert attempt(console[0], Site(registrationToken=value), tmp_path, "edge-auto-1") == "registered"
    credential = (tmp_path / "var/lib/edgeplane/agent/credential")
    assert credential.read_text().startswith("ephc_") and oct(credential.stat().st_mode & 0o777) == "0o600"


def test_token_problems_are_named(console: tuple[str, str], tmp_path: Path) -> None:
    import httpx
    assert attempt(console[0], Site(registrationToken="eprt_nonsense"), tmp_path).startswith(
        "not registered: [token-invalid] registration refused:")
    value, token_id = token(console)
    httpx.delete(f"{console[0]}/v1/registration-tokens/{token_id}", headers={"Authorization": f"Bearer {console[1]}"})
    assert attempt(console[0], Site(registrationToken=value), tmp_path).startswith(
        "not registered: [token-revoked] registration token revoked")


def test_manual_registration_waits_for_an_operator(console: tuple[str, str], tmp_path: Path) -> None:
    value, _ = token(console)
    shown = attempt(console[0], Site(registrationToken=value, disableAutoRegister=True), tmp_path, "edge-manual-1")
    assert shown.startswith("not registered: [pending-approval] waiting for an operator to add or approve host ID "
                            "edge-manual-1")
    assert '"code": "pending-approval"' in (tmp_path / "var/lib/edgeplane/agent/registration-status.json").read_text()


def test_unreachable_and_dns(tmp_path: Path) -> None:
    site = Site(registrationToken="t")
    assert attempt(f"http://127.0.0.1:{free_port()}", site, tmp_path).startswith(
        "not registered: [unreachable] cannot reach the console at 127.0.0.1:")
    assert attempt("http://console.invalid", site, tmp_path).startswith(
        "not registered: [dns] cannot resolve console.invalid")


class OldClock(http.server.BaseHTTPRequestHandler):
    """Answers every request 401 with a Date header one hour in the past."""

    def log_message(self, *args: object) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        return format_datetime(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1), usegmt=True)

    def do_POST(self) -> None:  # noqa: N802
        body = b'{"detail": [{"loc": ["body", "token"], "msg": "registration token expired"}]}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler: type[http.server.BaseHTTPRequestHandler], context: ssl.SSLContext | None = None) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"{'https' if context else 'http'}://localhost:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_clock_skew_is_named_before_the_token(tmp_path: Path) -> None:
    for url in serve(OldClock):  # the Date header has whole seconds: the skew reads 3600 or 3601
        assert re.match(r"not registered: \[clock\] local clock is \+360[01] s off the console's",
                        attempt(url, Site(registrationToken="t"), tmp_path))


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (tmp_path / "cert.pem").write_text(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context, pem


def test_tls_untrusted_then_trusted_through_ca_certs(tmp_path: Path) -> None:
    context, pem = self_signed(tmp_path)
    for url in serve(OldClock, context):
        assert attempt(url, Site(registrationToken="t"), tmp_path).startswith(
            "not registered: [tls] TLS certificate of localhost is not trusted")
        # with the CA in caCerts the TLS handshake succeeds and the next problem is shown
        assert attempt(url, Site(registrationToken="t", caCerts=[pem]), tmp_path).startswith("not registered: [clock]")


class ForwardProxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy that records the absolute URIs it is asked for and answers 401 itself."""

    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        type(self).seen.append(self.path)
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_proxy_settings_are_honoured(tmp_path: Path) -> None:
    ForwardProxy.seen = []
    for proxy in serve(ForwardProxy):
        site = Site.model_validate({"registrationToken": "t", "network": {"httpProxy": proxy}})
        assert "[token-invalid]" in attempt("http://console.example:8080", site, tmp_path)
        assert ForwardProxy.seen == ["http://console.example:8080/v1/agent/register"]
        bypass = Site.model_validate({"registrationToken": "t", "network": {"httpProxy": proxy,
                                                                             "noProxy": "127.0.0.0/8"}})
        assert "[unreachable]" in attempt(f"http://127.0.0.1:{free_port()}", bypass, tmp_path)
        assert len(ForwardProxy.seen) == 1
    assert bypasses_proxy("api.example.com", ".example.com") and bypasses_proxy("example.com", "example.com")
    assert bypasses_proxy("10.1.2.3", "10.0.0.0/8") and not bypasses_proxy("11.0.0.1", "10.0.0.0/8,foo")


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8]):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == 6  # jitter: no two hosts (or attempts) wait the same
    backoff.reset()
    assert backoff.next_delay() <= 1.0
