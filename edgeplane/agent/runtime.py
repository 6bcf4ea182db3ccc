"""The agent process: prepare the host, register, then heartbeat and converge to the desired spec.

Two threads share one console client. The main thread long-polls for the desired spec and applies
it through the journal; the heartbeat thread reports liveness and flushes what waited during a
disconnection (events from an on-disk outbox, the last status). Every console failure is retried
with exponential backoff and jitter; the node keeps running what it last applied meanwhile, and a
restart resumes the last received spec from disk. A third thread applies offline upgrade capsules
(``capsule.py``) dropped into the agent's inbox or a watched directory, console or not; applying a
console spec and applying a capsule never overlap.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeplane.agent import capsule as capsules
from edgeplane.agent.artifacts import ArtifactError, ArtifactStore, LocalContent, open_content_bundle
from edgeplane.agent.backoff import Backoff
from edgeplane.agent.cahash import cluster_ca_hash
from edgeplane.agent.client import ConsoleClient, ConsoleError
from edgeplane.agent.hardware import Inventory, check_minimums, failures, read_inventory
from edgeplane.agent.hostcmd import CommandFailed
from edgeplane.agent.hostid import derive_host_id
from edgeplane.agent.hostinfo import inventory_payload, node_ip, primary_nic
from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.installer import PROVIDER_IMAGE, Installer, UpgradeRolledBack
from edgeplane.agent.oem import keep_original_user_data
from edgeplane.agent.registration import CREDENTIAL, load_credential, register
from edgeplane.agent.schema import UserData
from edgeplane.agent.slots import Slots, image_health_check
from edgeplane.agent.spec import NodeSpec
from edgeplane.agent.stages import RECONCILE_EVERY_S, RECONCILE_FIRST_S, run_stage
from edgeplane.agent.tags import collect_tags
from edgeplane.agent.userdata import load_user_data

log = logging.getLogger(__name__)
SPEC = "spec.json"
APPLIED = "applied.json"
STATUS = "status.json"
OUTBOX = "outbox.jsonl"
LONG_POLL = 30
INSTALLER_ATTEMPTS = 3
CAPSULE_POLL = 2.0  # seconds between looks into the capsule inbox and watched directories


class CredentialRejected(RuntimeError):
    """The console no longer accepts this host's credential (host deleted, credential revoked)."""


class LocalModeNotBuilt(RuntimeError):
    """managementMode local needs the Local UI part, which is not built yet."""


@dataclass
class Prepared:
    user_data: UserData
    host_id: str
    how: str
    inventory: Inventory
    hardware_failures: list[str]
    node_ip: str


class Agent:
    def __init__(self, root: HostRoot, user_data: Path, site_user_data: Path | None = None,
                 content_bundle: Path | None = None, say: Callable[[str], None] = print,
                 capsule_dirs: Sequence[Path] = ()) -> None:
        self.root = root
        self.user_data_path = user_data
        self.site_path = site_user_data
        self.content_bundle = content_bundle
        self.capsule_dirs = list(capsule_dirs)
        self.say = say
        self.apply_lock = threading.Lock()  # one plan at a time: a console spec or a capsule
        self.outbox_lock = threading.Lock()
        self.status_lock = threading.Lock()  # the status file is written by one thread, sent by both
        self.stop = threading.Event()
        self.interval = 30
        self.client: ConsoleClient | None = None
        self.host_id: str | None = None

    # -------------------------------------------------------------- preparing
    def prepare(self) -> Prepared:
        builtin, site = keep_original_user_data(self.root, self.user_data_path, self.site_path, self.say)
        user_data = load_user_data(builtin, site, builtin_source=str(self.user_data_path),
                                   site_source=str(self.site_path or "site-user-data"))
        if user_data.edgeplane.debug or user_data.edgeplane.trace:
            logging.getLogger("edgeplane").setLevel(logging.DEBUG)
        host_id, how = derive_host_id(user_data.edgeplane.site, self.root)
        inventory = read_inventory(self.root)
        findings = check_minimums(inventory)
        failed = [str(f) for f in failures(findings)]
        for finding in findings:
            self.say(f"hardware: {finding}")
        ip = node_ip(user_data, user_data.edgeplane.site.console_url())
        self.say(f"host ID {host_id} ({how}), node IP {ip}")
        return Prepared(user_data, host_id, how, inventory, failed, ip)

    def installer(self, prepared: Prepared, local: LocalContent | None = None) -> Installer:
        """The installer; artifacts come from ``local`` (a capsule), else the content bundle and the console."""
        console = None
        if local is None:
            local = open_content_bundle(self.root, self.content_bundle) if self.content_bundle else None
            console = self.client.fetch_artifact if self.client else None
        return Installer(self.root, prepared.user_data, prepared.host_id, prepared.node_ip,
                         ArtifactStore(self.root, local, console), Slots(self.root, self.event), self.event)

    # ----------------------------------------------------------------- events
    def event(self, kind: str, severity: str, message: str) -> None:
        """Queue an event on disk (sent by the heartbeat thread, kept through disconnections)."""
        log.info("event %s [%s] %s", kind, severity, message)
        record = {"kind": kind, "severity": severity, "message": message[:2000],
                  "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with self.outbox_lock:
            path = self.root.state(OUTBOX)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def _flush_events(self, host_id: str) -> None:
        assert self.client is not None
        with self.outbox_lock:
            path = self.root.state(OUTBOX)
            if not path.exists():
                return
            events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if events:
                self.client.events(host_id, events)
            path.unlink()

    # ---------------------------------------------------------------- running
    def run(self) -> None:
        prepared = self.prepare()
        agent = prepared.user_data.edgeplane
        if agent.managementMode == "local":
            raise LocalModeNotBuilt("managementMode local: the Local UI / local API (edgeplane/local) is not built "
                                    "yet, so a locally managed host has no way to receive a cluster")
        url = agent.site.console_url()
        if url is None:
            raise ValueError("edgeplane.site.consoleEndpoint is required in central management mode")
        self.client = ConsoleClient(url, agent.site)
        self.host_id = prepared.host_id
        installer = self.installer(prepared)
        installer.slots.resume(image_health_check(self.root))
        if prepared.hardware_failures:
            self.event("hardware.below-minimum", "error", "; ".join(prepared.hardware_failures))
        payload = inventory_payload(prepared.inventory, primary_nic(prepared.user_data, prepared.node_ip))
        beat = threading.Thread(target=self._heartbeat_loop, args=(prepared, payload), daemon=True,
                                name="heartbeat")
        threading.Thread(target=self._reconcile_loop, args=(prepared,), daemon=True, name="reconcile").start()
        threading.Thread(target=self._capsule_loop, args=(prepared,), daemon=True, name="capsules").start()
        try:
            while True:
                self.client.credential = self._credential(prepared, payload)
                if not beat.is_alive():
                    beat.start()
                try:
                    self._spec_loop(prepared, installer)
                    return
                except CredentialRejected as exc:
                    # deleted in the console (e.g. before a re-install) or revoked: register again
                    self.say(f"console refused the host credential ({exc}); registering again")
                    self.root.state(CREDENTIAL).unlink(missing_ok=True)
        finally:
            self.stop.set()

    def _credential(self, prepared: Prepared, payload: dict[str, Any]) -> str:
        assert self.client is not None
        credential = load_credential(self.root)
        if credential is None:
            site = prepared.user_data.edgeplane.site
            registered = register(self.client, self.root, site, prepared.host_id, payload, self.say,
                                  tags=collect_tags(site, self.root))
            credential, self.interval = registered.credential, registered.heartbeat_interval
        return credential

    def _reconcile_loop(self, prepared: Prepared) -> None:
        """The ``reconcile`` stage: five minutes after start, then every hour."""
        delay = RECONCILE_FIRST_S
        while not self.stop.wait(delay):
            run_stage("reconcile", prepared.user_data, self.root, self.event)
            delay = RECONCILE_EVERY_S

    def _retry_cap(self) -> float:
        """Reconnect attempts never wait longer than two heartbeats (at most a minute)."""
        return float(min(60, max(2, 2 * self.interval)))

    def _heartbeat_loop(self, prepared: Prepared, payload: dict[str, Any]) -> None:
        assert self.client is not None
        backoff = Backoff(base=1.0, cap=self._retry_cap())
        send_inventory = True
        offline_since: float | None = None
        while not self.stop.is_set():
            applied = self._applied()
            body: dict[str, Any] = {
                "health": "unhealthy" if prepared.hardware_failures or applied.get("phase") == "failed" else "healthy",
                "message": "; ".join(prepared.hardware_failures)[:500] or applied.get("message", "")[:500],
            }
            # observed_generation travels in status reports only: the console's heartbeat schema
            # rejects it although docs/agent-protocol.md §2 lists it (reported to the console's owner)
            if send_inventory:
                body["inventory"] = payload
            try:
                answer = self.client.heartbeat(prepared.host_id, body)
            except Exception as exc:  # noqa: BLE001 - keep beating through any outage
                if offline_since is None:
                    offline_since = time.time()
                    self.event("console.disconnected", "warning", f"console unreachable: {exc}")
                backoff.cap = self._retry_cap()
                delay = backoff.next_delay()
                log.warning("heartbeat failed (%s); retrying in %.1f s", exc, delay)
            else:
                send_inventory = False
                self.interval = int(answer.get("heartbeat_interval", self.interval))
                if offline_since is not None:
                    self.event("console.reconnected", "info",
                               f"console reachable again after {time.time() - offline_since:.0f} s offline")
                    offline_since = None
                delay = float(self.interval)
                backoff.reset()
                try:
                    self._flush_events(prepared.host_id)
                    self._flush_status()
                except Exception as exc:  # noqa: BLE001 - kept on disk, sent with the next heartbeat
                    log.warning("could not deliver queued events/status: %s", exc)
            self.stop.wait(delay)

    def _spec_loop(self, prepared: Prepared, installer: Installer) -> None:
        assert self.client is not None
        backoff = Backoff(base=1.0, cap=self._retry_cap())
        last = self._saved_spec()
        if last is not None and self._applied().get("generation") != last.generation:
            last = self._converge(prepared, installer, last)  # resume what a restart interrupted
        while not self.stop.is_set():
            after = last.generation if last else 0
            try:
                spec = self.client.spec(prepared.host_id, after, LONG_POLL)
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 - disconnected: keep the node as it is, retry
                if isinstance(exc, ConsoleError) and exc.status == 401:
                    raise CredentialRejected(str(exc)) from None
                delay = backoff.next_delay()
                log.warning("spec poll failed (%s); retrying in %.1f s", exc, delay)
                self.stop.wait(delay)
                continue
            if spec is not None:
                last = self._converge(prepared, installer, spec)

    def _converge(self, prepared: Prepared, installer: Installer, spec: NodeSpec) -> NodeSpec:
        """Apply ``spec``, and any newer one that arrives while it is being retried; return the last."""
        pending: NodeSpec | None = spec
        with self.apply_lock:
            while pending is not None:
                self.root.write_text(f"/var/lib/edgeplane/agent/{SPEC}", pending.model_dump_json())
                spec, pending = pending, self._apply(prepared, installer, pending)
        return spec

    # --------------------------------------------------------------- capsules
    def _capsule_loop(self, prepared: Prepared) -> None:
        """Apply each capsule that appears in the inbox or a watched directory, once."""
        hashes: dict[tuple[str, int, int], str] = {}
        while not self.stop.is_set():
            try:
                for path, sha in capsules.pending(self.root, self.capsule_dirs, hashes):
                    self._apply_capsule(prepared, path, sha)
            except Exception as exc:  # noqa: BLE001 - a broken inbox must not stop the agent
                log.warning("capsule inbox: %s", exc)
            self.stop.wait(CAPSULE_POLL)

    def _apply_capsule(self, prepared: Prepared, path: Path, sha: str) -> None:
        """Verify, upgrade through the journal and A/B slots, record the result; health-gated like
        an online upgrade, and a rolled-back image leaves the node on the spec it ran before."""
        with self.apply_lock:
            interrupted = capsules.read_result(self.root.root, sha) or {}
            # resuming after a stop or crash: spec.json already holds the capsule's spec
            current = (NodeSpec.model_validate(interrupted["previous_spec"]) if "previous_spec" in interrupted
                       else self._saved_spec())
            capsules.write_result(self.root, sha, "verifying", f"received {path.name}", host_id=self.host_id,
                                  **{k: v for k, v in interrupted.items() if k == "previous_spec"})
            try:
                capsule = capsules.prepare(self.root, path, sha, current)
            except capsules.CapsuleRefused as exc:
                return self._capsule_done(path, sha, "refused", f"{path.name}: {exc}")
            except Exception as exc:  # noqa: BLE001 - recorded once, not retried every poll
                return self._capsule_done(path, sha, "failed", f"{path.name}: {type(exc).__name__}: {exc}")
            assert current is not None and capsule.spec.cluster is not None
            what = f"capsule {capsule.profile} {capsule.version}"
            capsules.write_result(self.root, sha, "applying", f"applying {what}", host_id=self.host_id,
                                  previous_spec=current.model_dump(mode="json"))
            self.event("capsule.applying", "info", f"{what} ({path.name}) on generation {current.generation}")
            self.root.write_text(f"/var/lib/edgeplane/agent/{SPEC}", capsule.spec.model_dump_json())
            installer = self.installer(prepared, capsule.content)
            newer = self._apply(prepared, installer, capsule.spec)
            if self.stop.is_set():
                return None  # no result: the inbox still holds it, so the next start resumes it
            if newer is not None:  # the console is back and sent a newer spec: the spec loop applies it
                return self._capsule_done(path, sha, "failed", f"{what}: superseded by console generation "
                                                               f"{newer.generation} while retrying")
            applied = self._applied()  # _apply finished this spec: ready or failed
            if applied.get("phase") == "ready":
                return self._capsule_done(path, sha, "committed", f"{what} installed and healthy",
                                          kubernetes_version=capsule.spec.cluster.kubernetes_version)
            if _image_refused(installer, capsule.spec):
                # the new image failed its health check before anything else changed: the node
                # still runs the previous spec, so that is what it reports (healthy)
                self.root.write_text(f"/var/lib/edgeplane/agent/{SPEC}", current.model_dump_json())
                self._set_applied(current.generation, "ready", f"{what} rolled back: {applied.get('message', '')}",
                                  kubernetes=_installed(current, self.root))
                return self._capsule_done(path, sha, "rolled-back", f"{what}: {applied.get('message', '')}")
            return self._capsule_done(path, sha, "failed", f"{what}: {applied.get('message', '')}")

    def _capsule_done(self, path: Path, sha: str, state: str, message: str, **extra: Any) -> None:
        shutil.rmtree(capsules.unpacked(self.root, sha), ignore_errors=True)  # its artifacts are in the cache
        capsules.write_result(self.root, sha, state, message, host_id=self.host_id, **extra)
        self.event(f"capsule.{state}", "info" if state == "committed" else "error", message)
        self.say(f"capsule {sha[:12]}: {state}: {message}")
        if path.parent == self.root.path(capsules.INBOX):
            path.unlink(missing_ok=True)  # the result is recorded; a watched directory is left as it is

    def _apply(self, prepared: Prepared, installer: Installer, spec: NodeSpec) -> NodeSpec | None:
        """Run the plan for ``spec``; return a newer spec that superseded it while retrying, if any."""
        if spec.action == "apply" and prepared.hardware_failures:
            self._set_applied(spec.generation, "failed", "hardware below minimum: " + "; ".join(prepared.hardware_failures))
            return None
        self._set_applied(spec.generation, "applying", f"applying generation {spec.generation}", final=False)
        backoff = Backoff(base=2.0, cap=60.0)
        attempt = 0
        while not self.stop.is_set():
            attempt += 1
            try:
                installer.apply(spec)
                self._set_applied(spec.generation, "ready", "node converged" if spec.action != "none" else "no cluster",
                                  kubernetes=_installed(spec, self.root))
                return None
            except UpgradeRolledBack as exc:  # the console rolls the cluster back
                self._set_applied(spec.generation, "failed", str(exc))
                return None
            except (ArtifactError, ConsoleError, OSError, CommandFailed) as exc:
                # transient (network, console, disk) or an installer that may succeed on a retry
                if isinstance(exc, CommandFailed) and attempt >= INSTALLER_ATTEMPTS:
                    self._set_applied(spec.generation, "failed", f"after {attempt} attempts: {exc}")
                    return None
                delay = backoff.next_delay()
                self.event("install.retry", "warning", f"generation {spec.generation}: {exc}; retry in {delay:.0f} s")
                self.stop.wait(delay)
                newer = self._newer_spec(spec)
                if newer is not None:
                    self.event("install.superseded", "info", f"generation {spec.generation} replaced by "
                                                             f"{newer.generation} while retrying")
                    return newer
            except Exception as exc:  # noqa: BLE001 - anything else fails this generation, reported
                self._set_applied(spec.generation, "failed", f"{type(exc).__name__}: {exc}")
                return None
        return None

    def _newer_spec(self, spec: NodeSpec) -> NodeSpec | None:
        assert self.client is not None and self.host_id is not None
        try:
            return self.client.spec(self.host_id, spec.generation, 0)
        except Exception:  # noqa: BLE001 - still offline: keep retrying the current one
            return None

    # ------------------------------------------------------- applied state
    def _saved_spec(self) -> NodeSpec | None:
        text = self.root.read_text(f"/var/lib/edgeplane/agent/{SPEC}")
        return NodeSpec.model_validate_json(text) if text else None

    def _applied(self) -> dict[str, Any]:
        """The last generation finished (ready or failed), what the heartbeat reports."""
        return json.loads(self.root.read_text(f"/var/lib/edgeplane/agent/{APPLIED}") or "{}")

    def _set_applied(self, generation: int, phase: str, message: str, final: bool = True,
                     kubernetes: dict[str, Any] | None = None) -> None:
        with self.status_lock:
            if final:
                self.root.write_text(f"/var/lib/edgeplane/agent/{APPLIED}",
                                     json.dumps({"generation": generation, "phase": phase, "message": message}))
            body: dict[str, Any] = {"observed_generation": generation, "phase": phase, "message": message[:2000]}
            if kubernetes:
                body["kubernetes"] = kubernetes
            self.root.write_text(f"/var/lib/edgeplane/agent/{STATUS}", json.dumps({"sent": False, "body": body}))
        self.event(f"install.{phase}", "error" if phase == "failed" else "info", message)
        self.say(f"generation {generation}: {phase}: {message}")
        try:
            self._flush_status()
            self._flush_events(self.host_id or "")
        except Exception as exc:  # noqa: BLE001 - the heartbeat thread sends it later
            log.warning("status report deferred: %s", exc)

    def _flush_status(self) -> None:
        """Send the latest status if it has not been acknowledged yet."""
        assert self.client is not None and self.host_id is not None
        with self.status_lock:
            record = json.loads(self.root.read_text(f"/var/lib/edgeplane/agent/{STATUS}") or "{}")
            if record and not record["sent"]:
                self.client.status(self.host_id, record["body"])
                record["sent"] = True
                self.root.write_text(f"/var/lib/edgeplane/agent/{STATUS}", json.dumps(record))


def _image_refused(installer: Installer, spec: NodeSpec) -> bool:
    """True when ``spec`` carries a provider image that is not the one running (rolled back)."""
    image = next((a for a in spec.artifacts if a.name == PROVIDER_IMAGE), None)
    state = installer.slots.load()
    running = state.slots[state.active]
    return image is not None and (running is None or running.digest != image.digest)


def _installed(spec: NodeSpec, root: HostRoot) -> dict[str, Any] | None:
    """What the finished plan installed, and on the bootstrap node the cluster CA hash when the
    CA exists (node readiness is not known: no Kubernetes API check yet)."""
    if spec.action != "apply" or spec.cluster is None:
        return None
    out: dict[str, Any] = {"version": spec.cluster.kubernetes_version, "role": spec.cluster.role,
                           "distribution": spec.cluster.distribution}
    if spec.cluster.bootstrap and (ca_hash := cluster_ca_hash(root, spec.cluster.distribution)):
        out["ca_hash"] = ca_hash
    return out
