"""etcd's client-visible errors: the gRPC status code and the exact message etcd sends.

Clients (clientv3, kube-apiserver) match these messages, so they must be byte-for-byte etcd's.
"""

from __future__ import annotations

import grpc


class EtcdError(Exception):
    """An error returned to the client as a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def compacted() -> EtcdError:
    return EtcdError(grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")


def future_revision() -> EtcdError:
    return EtcdError(grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")


def empty_key() -> EtcdError:
    return EtcdError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")


def key_not_found() -> EtcdError:
    return EtcdError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key not found")


def value_provided() -> EtcdError:
    return EtcdError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: value is provided")


def lease_provided() -> EtcdError:
    return EtcdError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: lease is provided")


def too_many_ops() -> EtcdError:
    return EtcdError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")


def duplicate_key() -> EtcdError:
    return EtcdError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")


def request_too_large() -> EtcdError:
    return EtcdError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large")


def lease_not_found() -> EtcdError:
    return EtcdError(grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")


def lease_exists() -> EtcdError:
    return EtcdError(grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: lease already exists")


def lease_ttl_too_large() -> EtcdError:
    return EtcdError(grpc.StatusCode.OUT_OF_RANGE, "etcdserver: too large lease TTL")


def not_capable(what: str) -> EtcdError:
    """A feature etcd has and we deliberately do not serve (listed in docs/datastore.md)."""
    return EtcdError(grpc.StatusCode.UNIMPLEMENTED, f"edgeplane datastore: {what} is not supported")


def unavailable(reason: str) -> EtcdError:
    """The SQL database cannot be reached; clients retry on UNAVAILABLE."""
    return EtcdError(grpc.StatusCode.UNAVAILABLE, f"etcdserver: {reason}")
