"""etcd request semantics on top of the MVCC layer: Range, Put, DeleteRange, Txn.

Works with the protobuf messages directly (they are the API's data model); headers are set by the
server layer, which knows the cluster and member ids.
"""

from __future__ import annotations

from edgeplane.datastore import errors
from edgeplane.datastore.model import KeyRange, KeyValue
from edgeplane.datastore.mvcc import Reader, WriteTxn
from edgeplane.datastore.proto import etcd_api_pb2 as pb

SORT_KEY = pb.RangeRequest.KEY
SORT_NONE = pb.RangeRequest.NONE
SORT_ASCEND = pb.RangeRequest.ASCEND
SORT_DESCEND = pb.RangeRequest.DESCEND

# Column positions in the rows Reader.range_rows returns.
KEY, CREATE, MOD, VERSION, VALUE, LEASE = range(6)
_SORT_COLUMN = {
    pb.RangeRequest.KEY: KEY,
    pb.RangeRequest.VERSION: VERSION,
    pb.RangeRequest.CREATE: CREATE,
    pb.RangeRequest.MOD: MOD,
    pb.RangeRequest.VALUE: VALUE,
}


def to_pb(kv: KeyValue) -> pb.KeyValue:
    return pb.KeyValue(key=kv.key, create_revision=kv.create_revision, mod_revision=kv.mod_revision,
                       version=kv.version, value=kv.value, lease=kv.lease)


# --- static checks (before a request is queued) -------------------------------------------------

def check_range(req: pb.RangeRequest) -> None:
    if not req.key:
        raise errors.empty_key()


def check_put(req: pb.PutRequest) -> None:
    if not req.key:
        raise errors.empty_key()
    if req.ignore_value and req.value:
        raise errors.value_provided()
    if req.ignore_lease and req.lease:
        raise errors.lease_provided()


def check_delete(req: pb.DeleteRangeRequest) -> None:
    if not req.key:
        raise errors.empty_key()


def check_txn(req: pb.TxnRequest, max_ops: int) -> None:
    """etcd's checks: op count per branch, each op's own checks, no key written twice."""
    if len(req.compare) > max_ops or len(req.success) > max_ops or len(req.failure) > max_ops:
        raise errors.too_many_ops()
    for compare in req.compare:
        if not compare.key:
            raise errors.empty_key()
    for op in (*req.success, *req.failure):
        kind = op.WhichOneof("request")
        if kind == "request_range":
            check_range(op.request_range)
        elif kind == "request_put":
            check_put(op.request_put)
        elif kind == "request_delete_range":
            check_delete(op.request_delete_range)
        elif kind == "request_txn":
            check_txn(op.request_txn, max_ops)
    _written_keys(req.success)
    _written_keys(req.failure)


def _written_keys(ops) -> tuple[set[bytes], list[KeyRange]]:
    """Keys put and ranges deleted by one branch; a key written twice is a duplicate-key error.

    The two branches of a nested txn exclude each other, so the same key put in both is fine.
    """
    deletes = [KeyRange(op.request_delete_range.key, op.request_delete_range.range_end)
               for op in ops if op.WhichOneof("request") == "request_delete_range"]
    puts: set[bytes] = set()

    def claim(key: bytes, allowed_again: set[bytes] = frozenset()) -> None:  # type: ignore[assignment]
        if (key in puts and key not in allowed_again) or any(d.contains(key) for d in deletes):
            raise errors.duplicate_key()
        puts.add(key)

    for op in ops:
        if op.WhichOneof("request") != "request_txn":
            continue
        then_puts, then_deletes = _written_keys(op.request_txn.success)
        else_puts, else_deletes = _written_keys(op.request_txn.failure)
        for key in then_puts:
            claim(key)
        for key in else_puts:
            claim(key, allowed_again=then_puts)
        deletes.extend(then_deletes + else_deletes)
    for op in ops:
        if op.WhichOneof("request") == "request_put":
            claim(op.request_put.key)
    return puts, deletes


# --- reads ---------------------------------------------------------------------------------------

def do_range(reader: Reader, req: pb.RangeRequest, current: int, compacted: int) -> pb.RangeResponse:
    if req.revision > current:
        raise errors.future_revision()
    if 0 < req.revision < compacted:
        raise errors.compacted()
    at = req.revision if req.revision > 0 else current
    key_range = KeyRange(req.key, req.range_end)
    if key_range.range_end and not key_range.open_ended and key_range.range_end <= key_range.key:
        return pb.RangeResponse(count=0)

    sort_order = req.sort_order
    if req.sort_target != SORT_KEY and sort_order == SORT_NONE:
        sort_order = SORT_ASCEND  # etcd sorts ascending by default for non-key targets
    if req.sort_target == SORT_KEY and sort_order == SORT_ASCEND:
        sort_order = SORT_NONE  # rows already come in key order
    filtered = bool(req.min_mod_revision or req.max_mod_revision or req.min_create_revision or req.max_create_revision)

    if req.count_only and not filtered:
        return pb.RangeResponse(count=reader.count(key_range, at, current))

    fetch_limit = req.limit + 1 if req.limit > 0 and sort_order == SORT_NONE and not filtered else 0
    rows = reader.range_rows(key_range, at, current, fetch_limit)
    if fetch_limit and len(rows) == fetch_limit:
        count = reader.count(key_range, at, current)
    else:
        count = len(rows)
    if filtered:
        rows = [row for row in rows if _passes_filters(row, req)]
    if sort_order != SORT_NONE:
        column = _SORT_COLUMN[req.sort_target]
        rows.sort(key=lambda row: row[column], reverse=sort_order == SORT_DESCEND)
    if req.count_only:
        return pb.RangeResponse(count=count)
    response = pb.RangeResponse(count=count)
    if req.limit > 0 and len(rows) > req.limit:
        rows = rows[: req.limit]
        response.more = True
    add = response.kvs.add  # building in place avoids a copy per key (matters for 10k-key lists)
    if req.keys_only:
        for key, create, mod, version, _, lease in rows:
            add(key=key, create_revision=create, mod_revision=mod, version=version, lease=lease)
    else:
        for key, create, mod, version, value, lease in rows:
            add(key=key, create_revision=create, mod_revision=mod, version=version, value=value, lease=lease)
    return response


def _passes_filters(row: tuple, req: pb.RangeRequest) -> bool:
    if req.min_mod_revision and row[MOD] < req.min_mod_revision:
        return False
    if req.max_mod_revision and row[MOD] > req.max_mod_revision:
        return False
    if req.min_create_revision and row[CREATE] < req.min_create_revision:
        return False
    if req.max_create_revision and row[CREATE] > req.max_create_revision:
        return False
    return True


# --- writes --------------------------------------------------------------------------------------

def apply_put(w: WriteTxn, req: pb.PutRequest) -> pb.PutResponse:
    prev = w.get(req.key)
    value, lease = req.value, req.lease
    if req.ignore_value or req.ignore_lease:
        if prev is None:
            raise errors.key_not_found()
        if req.ignore_value:
            value = prev.value
        if req.ignore_lease:
            lease = prev.lease
    if lease and not req.ignore_lease and w.lease(lease) is None:
        raise errors.lease_not_found()
    w.put(req.key, value, lease, prev)
    response = pb.PutResponse()
    if req.prev_kv and prev is not None:
        response.prev_kv.CopyFrom(to_pb(prev))
    return response


def apply_delete(w: WriteTxn, req: pb.DeleteRangeRequest) -> pb.DeleteRangeResponse:
    key_range = KeyRange(req.key, req.range_end)
    if key_range.range_end and not key_range.open_ended and key_range.range_end <= key_range.key:
        return pb.DeleteRangeResponse(deleted=0)
    doomed = w.delete_range(key_range)
    response = pb.DeleteRangeResponse(deleted=len(doomed))
    if req.prev_kv:
        response.prev_kvs.extend(to_pb(kv) for kv in doomed)
    return response


def apply_txn(w: WriteTxn, req: pb.TxnRequest) -> pb.TxnResponse:
    succeeded = all(_compare_holds(w, c) for c in req.compare)
    response = pb.TxnResponse(succeeded=succeeded)
    for op in req.success if succeeded else req.failure:
        response.responses.append(_apply_op(w, op))
    for op_response in response.responses:  # every inner response reports the txn's revision
        getattr(op_response, op_response.WhichOneof("response")).header.revision = w.visible_revision
    return response


def _apply_op(w: WriteTxn, op: pb.RequestOp) -> pb.ResponseOp:
    kind = op.WhichOneof("request")
    if kind == "request_range":
        return pb.ResponseOp(response_range=do_range(w, op.request_range, w.visible_revision, w.compact_revision))
    if kind == "request_put":
        return pb.ResponseOp(response_put=apply_put(w, op.request_put))
    if kind == "request_delete_range":
        return pb.ResponseOp(response_delete_range=apply_delete(w, op.request_delete_range))
    if kind == "request_txn":
        return pb.ResponseOp(response_txn=apply_txn(w, op.request_txn))
    return pb.ResponseOp(response_range=pb.RangeResponse())  # an empty op, as etcd treats it


_ZERO = KeyValue(b"", 0, 0, 0, b"", 0)


def _compare_holds(w: WriteTxn, compare: pb.Compare) -> bool:
    if compare.range_end:
        kvs = w.range(KeyRange(compare.key, compare.range_end), w.visible_revision, w.visible_revision)
    else:
        found = w.get(compare.key)
        kvs = [found] if found else []
    if not kvs:
        if compare.target == pb.Compare.VALUE:
            return False
        kvs = [_ZERO]
    return all(_compare_kv(compare, kv) for kv in kvs)


def _compare_kv(compare: pb.Compare, kv: KeyValue) -> bool:
    target = compare.target
    if target == pb.Compare.VALUE:
        ours, theirs = kv.value, compare.value
    elif target == pb.Compare.CREATE:
        ours, theirs = kv.create_revision, compare.create_revision
    elif target == pb.Compare.MOD:
        ours, theirs = kv.mod_revision, compare.mod_revision
    elif target == pb.Compare.VERSION:
        ours, theirs = kv.version, compare.version
    else:
        ours, theirs = kv.lease, compare.lease
    result = compare.result
    if result == pb.Compare.EQUAL:
        return ours == theirs
    if result == pb.Compare.NOT_EQUAL:
        return ours != theirs
    if result == pb.Compare.GREATER:
        return ours > theirs
    return ours < theirs
