"""Errors raised by forge; every message names the file, field or artifact at fault."""

from __future__ import annotations


class ForgeError(Exception):
    """Base class: a forge input or output that cannot be used, with the reason."""


class BundleError(ForgeError):
    """A content bundle or capsule that is malformed, corrupt or does not match its manifest."""


class SignatureError(BundleError):
    """A signature that is missing, malformed or made with another key."""


class ProfileError(ForgeError):
    """A cluster profile file that is malformed, or a set of profiles that breaks a rule."""


class UserDataError(ForgeError):
    """User-data that is not valid ``#cloud-config`` YAML with an ``edgeplane:`` mapping."""

    def __init__(self, source: str, field: str, reason: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {field}: {reason}")
        self.source, self.field, self.reason, self.line = source, field, reason, line


class IsoError(ForgeError):
    """An ISO image that cannot be built from the given inputs."""


class DefinitionError(ForgeError):
    """A cluster definition archive that is malformed or breaks a rule."""


class NotBuiltYet(ForgeError):
    """A feature that needs a part of edgeplane that does not exist yet (named in the message)."""
