"""Journal resume, and artifacts: sha256 verification and HTTP Range resume against a real
loopback HTTP server that breaks the first download half way."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeplane.agent.artifacts import ArtifactError, ArtifactStore, LocalContent, download
from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.journal import Journal, Step
from edgeplane.agent.spec import Artifact

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def test_journal_skips_done_steps_after_restart(tmp_path: Path) -> None:
    calls: list[str] = []

    def step(name: str, fail: bool = False) -> Step:
        def run() -> None:
            calls.append(name)
            if fail:
                raise RuntimeError(f"{name} broke")
        return Step(name, run)

    journal = Journal(tmp_path / "journal.jsonl")
    with pytest.raises(RuntimeError, match="two broke"):
        journal.run("plan-1", [step("one"), step("two", fail=True), step("three")])
    # a new process reads the same journal: "one" is done, "two" is retried
    again = Journal(tmp_path / "journal.jsonl")
    assert again.run("plan-1", [step("one"), step("two"), step("three")]) == 2
    assert calls == ["one", "two", "two", "three"]
    assert Journal(tmp_path / "journal.jsonl").run("plan-1", [step("one"), step("two"), step("three")]) == 0
    assert Journal(tmp_path / "journal.jsonl").run("plan-2", [step("one")]) == 1  # a new plan runs again


def test_journal_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).record("p", "a", "done")
    with open(path, "a") as handle:
        handle.write('{"plan": "p", "step": "b", "sta')
    assert Journal(path).is_done("p", "a") and not Journal(path).is_done("p", "b")


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD with Range support; the first full GET is cut after half the bytes."""

    cut_first = True
    seen_ranges: list[str | None] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        range_header = self.headers.get("Range")
        type(self).seen_ranges.append(range_header)
        start = int(range_header.split("=")[1].rstrip("-")) if range_header else 0
        body = PAYLOAD[start:]
        self.send_response(206 if range_header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cut_first and not range_header:
            type(self).cut_first = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-transfer
            return
        self.wfile.write(body)


@pytest.fixture()
def server() -> Iterator[str]:
    RangeHandler.cut_first, RangeHandler.seen_ranges = True, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/artifact"
    httpd.shutdown()
    httpd.server_close()


def test_download_resumes_with_range_and_verifies(tmp_path: Path, server: str) -> None:
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    target = tmp_path / sha
    with httpx.Client() as client:
        with pytest.raises(httpx.HTTPError):
            download(client, server, target, sha)
        part = target.with_name(sha + ".part")
        assert 0 < part.stat().st_size < len(PAYLOAD)
        download(client, server, target, sha)
    assert target.read_bytes() == PAYLOAD and not part.exists()
    assert RangeHandler.seen_ranges == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_download_with_wrong_digest_leaves_nothing(tmp_path: Path, server: str) -> None:
    RangeHandler.cut_first = False
    target = tmp_path / "x"
    with httpx.Client() as client, pytest.raises(ArtifactError, match="does not match"):
        download(client, server, target, "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_store_prefers_local_content_and_caches(tmp_path: Path) -> None:
    content = tmp_path / "bundle"
    content.mkdir()
    (content / "image.tar").write_bytes(PAYLOAD)
    art = Artifact(name="provider-image", digest="sha256:" + hashlib.sha256(PAYLOAD).hexdigest())
    store = ArtifactStore(HostRoot(tmp_path / "root"), local=LocalContent(content))
    path = store.ensure(art)
    assert path.read_bytes() == PAYLOAD
    path.write_bytes(b"damaged")
    assert store.ensure(art).read_bytes() == PAYLOAD  # a damaged cache entry is replaced
    missing = Artifact(name="other", digest="sha256:" + "1" * 64)
    with pytest.raises(ArtifactError, match="not in the local content and there is no console"):
        store.ensure(missing)
