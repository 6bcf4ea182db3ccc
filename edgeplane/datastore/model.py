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


EVENT_OVERHEAD_BYTES = 64  # what an event costs beyond its key and values, roughly


@dataclass(slots=True, frozen=True)
class Event:
    """One change: a put (kv is the new value) or a delete (kv carries the key and the delete revision)."""

    revision: int
    deleted: bool
    kv: KeyValue
    prev_kv: KeyValue | None

    def approx_bytes(self) -> int:
        """Roughly what the event costs in memory and on the wire (for the watch byte limits)."""
        prev = len(self.prev_kv.value) if self.prev_kv else 0
        return EVENT_OVERHEAD_BYTES + len(self.kv.key) + len(self.kv.value) + prev


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
