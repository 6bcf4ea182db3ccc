"""Host tags sent at registration: ``site.tags``, then ``tagsFromFile``, then ``tagsFromScript``
(later sources win on the same key, as more specific ones)."""

from __future__ import annotations

import json
import subprocess

from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.schema import Site


class TagsError(ValueError):
    """A tags file or script that cannot be used; the message names the user-data field."""


def collect_tags(site: Site, root: HostRoot) -> dict[str, str]:
    tags = dict(site.tags)
    if site.tagsFromFile:
        tags.update(_from_file(site, root))
    if site.tagsFromScript:
        tags.update(_from_script(site, root))
    return tags


def _from_file(site: Site, root: HostRoot) -> dict[str, str]:
    spec = site.tagsFromFile
    assert spec is not None
    text = root.read_text(spec.fileName)
    if text is None:
        raise TagsError(f"edgeplane.site.tagsFromFile.fileName: cannot read {spec.fileName}")
    tags = {}
    for entry in filter(None, (part.strip() for part in text.split(spec.delimiter))):
        key, sep, value = entry.partition(spec.separator)
        if not sep or not key.strip():
            raise TagsError(f"edgeplane.site.tagsFromFile: entry {entry!r} in {spec.fileName} has no "
                            f"'{spec.separator}' separating key and value")
        tags[key.strip()] = value.strip()
    return tags


def _from_script(site: Site, root: HostRoot) -> dict[str, str]:
    spec = site.tagsFromScript
    assert spec is not None
    script = root.path(spec.scriptName)
    try:
        proc = subprocess.run([str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=spec.timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TagsError(f"edgeplane.site.tagsFromScript: {spec.scriptName} ran longer than {spec.timeout} s") from None
    except OSError as exc:
        raise TagsError(f"edgeplane.site.tagsFromScript.scriptName: cannot run {spec.scriptName}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise TagsError(f"edgeplane.site.tagsFromScript: {spec.scriptName} exited {proc.returncode}: "
                        f"{proc.stderr.strip()[-200:]}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise TagsError(f"edgeplane.site.tagsFromScript: {spec.scriptName} did not print a JSON object") from None
    if not isinstance(data, dict):
        raise TagsError(f"edgeplane.site.tagsFromScript: {spec.scriptName} printed JSON that is not an object")
    return {str(k): str(v) for k, v in data.items()}
