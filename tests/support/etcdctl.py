"""Run the real etcdctl (Debian etcd-client) against an endpoint."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

ENV = {**os.environ, "ETCDCTL_API": "3"}


def etcdctl(endpoint: str, *args: str, input: str | None = None, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    result = subprocess.run(["etcdctl", "--endpoints", endpoint, "--command-timeout=10s", *args], input=input,
                            capture_output=True, text=True, env=ENV, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def etcdctl_json(endpoint: str, *args: str) -> Any:
    return json.loads(etcdctl(endpoint, *args, "-w", "json").stdout)


def b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    import base64

    return base64.b64decode(text).decode()
