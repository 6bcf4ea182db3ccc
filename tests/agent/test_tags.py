"""Tags from user-data, a tags file and a tags script (a real executable under the host root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.schema import Site
from edgeplane.agent.tags import TagsError, collect_tags


def site(**fields: object) -> Site:
    return Site.model_validate({"tags": {"city": "chicago", "floor": "1"}, **fields})


def test_file_and_script_add_and_override(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    root.write_text("/etc/tags", "floor=2;aisle = 7;")
    root.write_text("/opt/tags.sh", "#!/bin/sh\necho '{\"aisle\": 9, \"store\": \"042\"}'\n", 0o755)
    tags = collect_tags(site(tagsFromFile={"fileName": "/etc/tags", "delimiter": ";", "separator": "="},
                             tagsFromScript={"scriptName": "/opt/tags.sh"}), root)
    assert tags == {"city": "chicago", "floor": "2", "aisle": "9", "store": "042"}


@pytest.mark.parametrize(("files", "fields", "message"), [
    ({}, {"tagsFromFile": {"fileName": "/etc/none"}}, "tagsFromFile.fileName: cannot read /etc/none"),
    ({"/etc/tags": "novalue\n"}, {"tagsFromFile": {"fileName": "/etc/tags"}}, "entry 'novalue' in /etc/tags has no ':'"),
    ({"/t.sh": "#!/bin/sh\necho nope\n"}, {"tagsFromScript": {"scriptName": "/t.sh"}}, "did not print a JSON object"),
    ({"/t.sh": "#!/bin/sh\nexit 3\n"}, {"tagsFromScript": {"scriptName": "/t.sh"}}, "/t.sh exited 3"),
    ({"/t.sh": "#!/bin/sh\nsleep 5\n"}, {"tagsFromScript": {"scriptName": "/t.sh", "timeout": 1}},
     "ran longer than 1 s"),
])
def test_problems_name_the_field(tmp_path: Path, files: dict[str, str], fields: dict, message: str) -> None:
    root = HostRoot(tmp_path)
    for path, content in files.items():
        root.write_text(path, content, 0o755)
    with pytest.raises(TagsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        collect_tags(site(**fields), root)
