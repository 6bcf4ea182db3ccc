"""Registration with the console: auto (token), manual (token, waits for an operator to enter the
ID) or QR (no token: the host shows the console's approval URL as a QR code in the terminal and
as a PNG). While it is stuck the device writes and prints why (see ``diagnose``)."""

from __future__ import annotations

import io
import json
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import segno

from edgeplane.agent.backoff import Backoff
from edgeplane.agent.client import ConsoleClient
from edgeplane.agent.diagnose import Diagnosis, diagnose_exception, pending
from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.schema import Site

Mode = Literal["auto", "manual", "qr"]
CREDENTIAL = "credential"
QR_STATE = "qr.json"
QR_PNG = "registration-qr.png"
DIAGNOSIS = "registration-status.json"


class RegistrationImpossible(RuntimeError):
    """The user-data gives no way to register (central mode without token or registration URL)."""


def registration_mode(site: Site) -> Mode:
    if site.registrationToken:
        return "manual" if site.disableAutoRegister else "auto"
    if site.registrationURL:
        return "qr"
    raise RegistrationImpossible("central management mode needs edgeplane.site.registrationToken (auto or "
                                 "manual registration) or edgeplane.site.registrationURL (QR registration)")


@dataclass(frozen=True)
class Registered:
    credential: str
    heartbeat_interval: int
    project: str | None


def load_credential(root: HostRoot) -> str | None:
    text = (root.read_text(f"/var/lib/edgeplane/agent/{CREDENTIAL}") or "").strip()
    return text or None


def render_qr(root: HostRoot, url: str) -> str:
    """Write the PNG under the agent state and return the terminal rendering."""
    qr = segno.make(url, error="m")
    png = root.state(QR_PNG)
    png.parent.mkdir(parents=True, exist_ok=True)
    qr.save(str(png), scale=6, border=4)
    buffer = io.StringIO()
    qr.terminal(out=buffer, compact=True)
    return buffer.getvalue()


def _qr_secrets(root: HostRoot, fresh: bool = False) -> dict[str, str]:
    path = root.state(QR_STATE)
    if not fresh and path.exists():
        return json.loads(path.read_text())
    alphabet = string.ascii_uppercase + string.digits
    data = {"qr_code": "".join(secrets.choice(alphabet) for _ in range(8)), "secret": secrets.token_urlsafe(48)}
    root.write_text(f"/var/lib/edgeplane/agent/{QR_STATE}", json.dumps(data), 0o600)
    return data


def register(client: ConsoleClient, root: HostRoot, site: Site, host_id: str, inventory: dict[str, Any],
             say: Callable[[str], None], sleep: Callable[[float], None] = time.sleep,
             give_up_after: float | None = None, tags: dict[str, str] | None = None) -> Registered:
    """Register until it succeeds (or ``give_up_after`` seconds pass), telling the device why it waits."""
    mode = registration_mode(site)
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    backoff = Backoff(base=1.0, cap=30.0)
    shown_qr = None
    last: Diagnosis | None = None
    say(f"host ID: {host_id}  (registration: {mode})")
    while True:
        body: dict[str, Any] = {"host_id": host_id, "mode": mode, "inventory": inventory}
        if site.registrationToken:
            body["token"] = site.registrationToken
        if site.projectName:
            body["project"] = site.projectName
        if tags:
            body["tags"] = tags
        if mode == "qr":
            body.update(_qr_secrets(root))
        try:
            status, data, _ = client.register(body)
        except Exception as exc:  # noqa: BLE001 - every failure is diagnosed and retried
            diagnosis = diagnose_exception(exc, client.host, client.port, client.proxy)
            if mode == "qr" and diagnosis.code == "qr-expired":
                _qr_secrets(root, fresh=True)  # the one-time code expired: start again with a new one
                shown_qr = None
            delay = backoff.next_delay()
        else:
            if status == 201:
                root.write_text(f"/var/lib/edgeplane/agent/{CREDENTIAL}", data["credential"] + "\n", 0o600)
                _write_diagnosis(root, Diagnosis("registered", f"registered as {host_id}", "none"))
                say(f"registered as {host_id} in project {data.get('project')}")
                return Registered(data["credential"], int(data.get("heartbeat_interval", 30)), data.get("project"))
            url = data.get("approval_url")
            if url and url != shown_qr:
                say(f"scan to approve this host: {url}\n{render_qr(root, url)}")
                shown_qr = url
            diagnosis = pending(data.get("waiting_for", "operator"), host_id, url)
            backoff.reset()
            delay = float(data.get("retry_after", 10))
        if diagnosis != last:
            _write_diagnosis(root, diagnosis)
            say(f"registration waiting: {diagnosis}")
            last = diagnosis
        if deadline is not None and time.monotonic() + delay > deadline:
            raise TimeoutError(f"not registered: {diagnosis}")
        sleep(delay)


def _write_diagnosis(root: HostRoot, diagnosis: Diagnosis) -> None:
    root.write_text(f"/var/lib/edgeplane/agent/{DIAGNOSIS}", json.dumps(
        {"code": diagnosis.code, "message": diagnosis.message, "fix": diagnosis.fix, "time": time.time()}) + "\n")
