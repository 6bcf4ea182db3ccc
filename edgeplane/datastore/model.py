"""The datastore's own value types, independent of protobuf and of SQL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class KeyValue:
    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int


@dataclass(slots=True, frozen=True)
class Event:
    """One change: a put (kv is the new value) or a delete (kv carries the key and the delete revision)."""

    revision: int
    deleted: bool
    kv: KeyValue
    prev_kv: KeyValue | None


@dataclass(slots=True, frozen=True)
class KeyRange:
    """etcd's [key, range_end) selector: empty end = one key; end == b"\\0" = every key >= key."""

    key: bytes
    range_end: bytes = b""

    @property
    def single(self) -> bool:
        return not self.range_end

    @property
    def open_ended(self) -> bool:
        return self.range_end == b"\x00"

    def contains(self, key: bytes) -> bool:
        if self.single:
            return key == self.key
        if self.open_ended:
            return key >= self.key
        return self.key <= key < self.range_end

    def overlaps(self, other: "KeyRange") -> bool:
        """Whether two selectors share at least one key (used for txn duplicate-key checks)."""
        if self.single:
            return other.contains(self.key)
        if other.single:
            return self.contains(other.key)
        self_end = None if self.open_ended else self.range_end
        other_end = None if other.open_ended else other.range_end
        starts_before_other_ends = other_end is None or self.key < other_end
        other_starts_before_self_ends = self_end is None or other.key < self_end
        return starts_before_other_ends and other_starts_before_self_ends


@dataclass(slots=True, frozen=True)
class Header:
    cluster_id: int
    member_id: int
    revision: int
    raft_term: int
