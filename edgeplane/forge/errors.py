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
    """User-data that is not valid ``#cloud-config`` YAML for edgeplane; the message names
    ``source:line: field: reason`` for every problem found."""

    def __init__(self, message: str, field: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.field, self.line = field, line


class IsoError(ForgeError):
    """An ISO image that cannot be built from the given inputs."""


class DefinitionError(ForgeError):
    """A cluster definition archive that is malformed or breaks a rule."""
