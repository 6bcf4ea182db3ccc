"""Forge bundle throughput against the standard tools, on the same data in one run.

    .venv/bin/python bench/forge.py [--size-mb 1024] [--keep DIR]

Generates SIZE MiB in a temporary directory (3/4 random bytes like compressed image layers, 1/4
base64 text like manifests and charts; 64 MiB files), warms the page cache, then measures:

- build:  ``edgeplane.forge.build_bundle``    vs ``tar --zstd -cf``  (both zstd level 3)
- verify: ``edgeplane.forge.verify_bundle``   vs ``sha256sum`` of the files
  (verify decompresses, parses the tar stream and hashes every artifact)

MB/s = input MiB / wall seconds. Target: forge >= 0.8x the standard tool. Cleans up afterwards.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeplane.forge import build_bundle, make_artifact, verify_bundle  # noqa: E402

FILE_MB = 64


def generate(root: Path, size_mb: int) -> int:
    root.mkdir(parents=True)
    total = 0
    for index in range(max(1, size_mb // FILE_MB)):
        path = root / f"layer-{index:03d}.bin"
        if index % 4 == 3:
            data = base64.b64encode(os.urandom(FILE_MB * 3 // 4 << 20))[: FILE_MB << 20]
        else:
            data = os.urandom(FILE_MB << 20)
        path.write_bytes(data)
        total += len(data)
    return total


def timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def warm(*paths: Path) -> None:
    """Read inputs once so every contender starts from the page cache."""
    for path in paths:
        for file in ([path] if path.is_file() else sorted(path.iterdir())):
            with open(file, "rb") as handle:
                while handle.read(8 << 20):
                    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    for tool in ("tar", "zstd", "sha256sum"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="forge-bench-"))
    try:
        data = work / "data"
        total = generate(data, args.size_mb)
        mib = total / (1 << 20)
        files = sorted(data.iterdir())
        warm(data)
        results = {}
        results["forge build"] = timed(lambda: build_bundle(work / "forge.tar.zst", [make_artifact("file", data)], name="bench"))
        warm(data)
        results["tar --zstd -c"] = timed(lambda: subprocess.run(["tar", "--zstd", "-cf", str(work / "tar.tar.zst"), "-C", str(data), "."], check=True))
        warm(work / "forge.tar.zst")
        results["forge verify"] = timed(lambda: verify_bundle(work / "forge.tar.zst"))
        warm(data)
        results["sha256sum"] = timed(lambda: subprocess.run(["sha256sum", *map(str, files)], check=True, stdout=subprocess.DEVNULL))
        rate = {name: mib / seconds for name, seconds in results.items()}
        print(f"# forge bench {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, {os.cpu_count()} CPUs, "
              f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, {mib:.0f} MiB")
        print("| operation | seconds | MiB/s |")
        print("|---|---|---|")
        for name, seconds in results.items():
            print(f"| {name} | {seconds:.2f} | {rate[name]:.0f} |")
        print(f"\nbuild  ratio forge/tar --zstd: {rate['forge build'] / rate['tar --zstd -c']:.2f}x (target >= 0.8)")
        print(f"verify ratio forge/sha256sum:  {rate['forge verify'] / rate['sha256sum']:.2f}x (target >= 0.8)")
        print(f"sizes: forge {(work / 'forge.tar.zst').stat().st_size >> 20} MiB, "
              f"tar --zstd {(work / 'tar.tar.zst').stat().st_size >> 20} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
