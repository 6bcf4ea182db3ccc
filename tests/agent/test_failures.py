"""Install failures against a real console process: an installer that keeps failing is retried,
then the generation is reported failed with the installer's own message. The installer is a
fixture script (the real one downloads binaries and needs root)."""

from __future__ import annotations

from tests.agent.support import Site
from tests.support.waiting import wait_for

K3S = [{"layer": "os", "pack": "ubuntu", "version": "22.04"},
       {"layer": "kubernetes", "pack": "k3s", "version": "1.30.14"},
       {"layer": "network", "pack": "calico", "version": "3.28.2"}]


def test_failing_installer_is_retried_then_reported(site: Site) -> None:
    token = site.ok("POST", "/v1/registration-tokens", {"name": "t", "expires_at": "2099-01-01T00:00:00Z"})["token"]
    agent = site.agent("broken", f"    registrationToken: {token}\n    name: edge-broken\n")
    (agent.root / "opt/edgeplane/installers/k3s-install.sh").write_text(
        "#!/bin/sh\necho \"$*\" >> \"$EDGEPLANE_ROOT/attempts\"\necho 'disk full' >&2\nexit 1\n")
    wait_for("registered", lambda: site.host("edge-broken").get("status") == "ready")
    profile = site.ok("POST", "/v1/profiles", {"name": "retail", "layers": K3S})
    site.ok("POST", "/v1/clusters", {"name": "store", "profile_id": profile["id"], "control_plane": ["edge-broken"],
                                     "endpoint": {"vip": "10.10.0.250"}})
    host = wait_for("generation failed", lambda: (lambda h: h if h.get("phase") == "failed" else None)(
        site.host("edge-broken")), timeout=60)
    assert host["phase_message"].startswith("after 3 attempts: /opt/edgeplane/installers/k3s-install.sh --k3s-version")
    assert host["phase_message"].endswith("exited 1: disk full")
    assert len((agent.root / "attempts").read_text().splitlines()) == 3
    # events follow the status report: wait for them rather than race them
    wait_for("both retry events", lambda: [e["kind"] for e in site.ok("GET", "/v1/hosts/edge-broken/events")
                                           ].count("install.retry") == 2)
