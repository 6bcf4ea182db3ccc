"""Host ID: documented priority, sanitising, 128-character cut, stable across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeplane.agent import HostIdError, HostRoot, derive_host_id, sanitise
from edgeplane.agent.schema import DeviceUIDPath, Site


def test_explicit_name_wins_and_is_sanitised(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    root.write_text("/sys/class/dmi/id/product_uuid", "4c4c4544-0042\n")
    assert derive_host_id(Site(name="store #42: front/till (A)"), root) == ("store-42-fronttill-A", "name")


def test_device_uid_path_with_prefix(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    root.write_text("/sys/class/dmi/id/product_uuid", "4C4C4544-0042-3510\n")
    assert derive_host_id(Site(prefix="shop"), root) == ("shop-4C4C4544-0042-3510", "device-uid")


def test_regex_picks_the_group_and_first_readable_path_wins(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    root.write_text("/sys/class/dmi/id/board_serial", "Serial: SN-ABC123 rev 2\n")
    site = Site(deviceUIDPaths=[
        DeviceUIDPath(name="/sys/class/dmi/id/missing"),
        DeviceUIDPath(name="/sys/class/dmi/id/board_serial", regex=r"SN-(\w+)"),
    ])
    assert derive_host_id(site, root) == ("edge-ABC123", "device-uid")


def test_random_when_nothing_readable_and_stable_across_restarts(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    first, how = derive_host_id(Site(), root)
    assert how == "random" and first.startswith("edge-") and len(first) == len("edge-") + 32
    # a restart (same root) keeps the ID even though a UID file appeared since
    root.write_text("/sys/class/dmi/id/product_uuid", "late-uuid\n")
    assert derive_host_id(Site(), root) == (first, "persisted")
    # a different host gets a different random ID
    assert derive_host_id(Site(), HostRoot(tmp_path / "other"))[0] != first


def test_dollar_random_forces_random(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    root.write_text("/sys/class/dmi/id/product_uuid", "uuid\n")
    site = Site(deviceUIDPaths=[DeviceUIDPath(name="$random"), DeviceUIDPath(name="/sys/class/dmi/id/product_uuid")])
    assert derive_host_id(site, root)[1] == "random"


def test_truncated_to_128_and_forbidden_characters_removed() -> None:
    assert len(sanitise("x" * 300)) == 128
    assert sanitise("a/b?c#d&e+f%g,h$i~j!k@l*m(n)o{p}q|r=s;t:u<v>w'x.y^z\"") == "abcdefghijklmnopqrstuvwxyz"


def test_name_of_only_forbidden_characters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HostIdError, match="only forbidden characters"):
        derive_host_id(Site(name="%%%"), HostRoot(tmp_path))
