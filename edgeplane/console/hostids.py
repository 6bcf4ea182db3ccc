"""Edge host ID rules: the configured prefix, at most 128 characters, no forbidden characters."""

from __future__ import annotations

MAX_LENGTH = 128
DEFAULT_PREFIX = "edge-"
# The reference platform's disallowed characters, plus backslash; whitespace and control
# characters are refused separately.
FORBIDDEN = set("/?#&+%,$~!@*(){}|=;:<>'.^\"\\")


def host_id_problem(host_id: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    """Why host_id is not acceptable, or None when it is."""
    if not host_id:
        return "must not be empty"
    if len(host_id) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters (got {len(host_id)})"
    if not host_id.startswith(prefix):
        return f"must start with the prefix {prefix!r}"
    for ch in host_id:
        if ch in FORBIDDEN:
            return f"must not contain {ch!r}"
        if ch.isspace() or not ch.isprintable():
            return f"must not contain whitespace or control characters ({ch!r})"
    return None
